//! Tokens verified recently, by their exact text: a client's repeated calls with the same
//! access token cost a hash lookup instead of an RSA signature check (the gateway's largest
//! per-request cost). Sound because a JWT's content is fixed by its signature: text that
//! verified once verifies again until it expires, and expiry is checked on every hit with the
//! verifier's leeway. Entries are dropped whenever the key set changes, so a key taken out of
//! the JWKS takes its tokens with it. Bounded: when full, the cache starts again empty.

use std::collections::HashMap;
use std::sync::RwLock;

use chrono::{DateTime, TimeDelta, Utc};

use crate::Principal;

/// At most this many tokens are remembered (about 1 KB each).
pub(crate) const MAX_VERIFIED: usize = 10_000;

#[derive(Debug)]
pub(crate) struct VerifiedTokens {
    entries: RwLock<HashMap<String, Principal>>,
    max: usize,
    leeway: TimeDelta,
}

impl VerifiedTokens {
    pub(crate) fn new(max: usize, leeway_s: u64) -> Self {
        Self {
            entries: RwLock::new(HashMap::new()),
            max,
            leeway: TimeDelta::seconds(i64::try_from(leeway_s).unwrap_or(i64::MAX / 1000)),
        }
    }

    /// The principal of `token` if it was verified before and has not expired at `now`.
    pub(crate) fn get(&self, token: &str, now: DateTime<Utc>) -> Option<Principal> {
        let entries = self
            .entries
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let principal = entries.get(token)?;
        // The same rule as the signature path: expired once `exp` is more than the leeway ago.
        let still_valid = principal
            .expires_at
            .checked_add_signed(self.leeway)
            .is_some_and(|until| until >= now);
        still_valid.then(|| principal.clone())
    }

    pub(crate) fn insert(&self, token: &str, principal: &Principal) {
        let mut entries = self
            .entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if entries.len() >= self.max {
            entries.clear();
        }
        entries.insert(token.to_owned(), principal.clone());
    }

    pub(crate) fn clear(&self) {
        self.entries
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clear();
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.read().map(|e| e.len()).unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(expires_at: DateTime<Utc>) -> Principal {
        Principal {
            subject: "user-1".into(),
            tenant: None,
            roles: vec![],
            client_id: "console".into(),
            audiences: vec!["aurumai-api".into()],
            scopes: vec![],
            token_id: "jti-1".into(),
            expires_at,
            issued_at: chrono::Utc::now(),
            session: None,
        }
    }

    #[test]
    fn a_verified_token_is_found_until_it_expires_plus_the_leeway() {
        let now = Utc::now();
        let cache = VerifiedTokens::new(10, 30);
        let p = principal(now + TimeDelta::seconds(60));
        cache.insert("a.b.c", &p);
        assert_eq!(cache.get("a.b.c", now), Some(p.clone()));
        assert_eq!(cache.get("a.b.c", now + TimeDelta::seconds(90)), Some(p));
        assert_eq!(cache.get("a.b.c", now + TimeDelta::seconds(91)), None);
        // Only the exact text: any other token goes through the signature check.
        assert_eq!(cache.get("a.b.d", now), None);
    }

    #[test]
    fn the_cache_is_bounded_and_can_be_emptied() {
        let now = Utc::now();
        let cache = VerifiedTokens::new(3, 0);
        let p = principal(now + TimeDelta::seconds(60));
        for t in ["t1", "t2", "t3", "t4"] {
            cache.insert(t, &p);
        }
        assert!(cache.len() <= 3);
        assert!(cache.get("t4", now).is_some());
        cache.clear();
        assert_eq!(cache.get("t4", now), None);
    }
}
