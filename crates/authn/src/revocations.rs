//! The issuer's revocation feed, as a verifier follows it: access tokens revoked by `jti`,
//! every token of a subject (a user disabled or erased) or of a sign-in session (logged out)
//! issued up to an instant. The feed is public like the JWKS (a revocation list; it names
//! opaque ids only) and read incrementally (`?after=<seq>`).
//!
//! A verifier asks for what is new every `poll` interval from a task of its own (no request
//! waits for the feed), so a revocation reaches every resource server within about `poll`.
//! When the feed cannot be read the known list stays in force and the failure is logged once
//! until it recovers: an issuer outage must not stop the platform.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::RwLock;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde::Deserialize;
use url::Url;

use crate::Principal;

/// A feed page larger than this is refused.
const MAX_FEED_BYTES: usize = 4 * 1024 * 1024;

/// `{issuer}/revocations`, with or without a trailing slash on the issuer.
pub(crate) fn default_revocations_url(issuer: &Url) -> Url {
    let mut url = issuer.clone();
    let path = format!("{}/revocations", issuer.path().trim_end_matches('/'));
    url.set_path(&path);
    url
}

/// One entry of the feed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
struct FeedEntry {
    seq: i64,
    /// `token` (value: a `jti`), `subject` (a `sub`) or `session` (a `sid`).
    kind: String,
    value: String,
    /// Tokens issued at or before this instant are revoked (subjects and sessions).
    #[serde(default)]
    issued_before: Option<DateTime<Utc>>,
    /// After this the entry no longer matters (every token it covers has expired).
    expires_at: DateTime<Utc>,
}

#[derive(Debug, Deserialize)]
struct FeedPage {
    entries: Vec<FeedEntry>,
}

#[derive(Debug, Default)]
struct Known {
    tokens: HashMap<String, DateTime<Utc>>,
    subjects: HashMap<String, (DateTime<Utc>, DateTime<Utc>)>,
    sessions: HashMap<String, (DateTime<Utc>, DateTime<Utc>)>,
    after: i64,
}

impl Known {
    fn apply(&mut self, e: FeedEntry) {
        self.after = self.after.max(e.seq);
        let until = e.expires_at;
        let before = e.issued_before.unwrap_or(until);
        let later = |old: Option<&(DateTime<Utc>, DateTime<Utc>)>| match old {
            Some((b, u)) => ((*b).max(before), (*u).max(until)),
            None => (before, until),
        };
        match e.kind.as_str() {
            "token" => {
                self.tokens.insert(e.value, until);
            }
            "subject" => {
                let v = later(self.subjects.get(&e.value));
                self.subjects.insert(e.value, v);
            }
            "session" => {
                let v = later(self.sessions.get(&e.value));
                self.sessions.insert(e.value, v);
            }
            // A kind this verifier does not know yet: skipped, the cursor moves on.
            _ => {}
        }
    }

    fn forget_expired(&mut self, now: DateTime<Utc>) {
        self.tokens.retain(|_, until| *until > now);
        self.subjects.retain(|_, (_, until)| *until > now);
        self.sessions.retain(|_, (_, until)| *until > now);
    }

    fn revokes(&self, p: &Principal) -> bool {
        let issued_by = |m: &HashMap<String, (DateTime<Utc>, DateTime<Utc>)>, k: &str| {
            m.get(k).is_some_and(|(before, _)| p.issued_at <= *before)
        };
        self.tokens.contains_key(&p.token_id)
            || issued_by(&self.subjects, &p.subject)
            || p.session
                .as_deref()
                .is_some_and(|s| issued_by(&self.sessions, s))
    }
}

#[derive(Debug)]
pub(crate) struct RevocationList {
    url: Url,
    poll: Duration,
    known: RwLock<Known>,
    /// When the feed was last asked; held while it is being asked.
    asked: tokio::sync::Mutex<Option<Instant>>,
    /// The last attempt failed (logged once, until the feed answers again).
    failing: AtomicBool,
}

impl RevocationList {
    pub(crate) fn new(url: Url, poll: Duration) -> Self {
        Self {
            url,
            poll,
            known: RwLock::new(Known::default()),
            asked: tokio::sync::Mutex::new(None),
            failing: AtomicBool::new(false),
        }
    }

    pub(crate) fn revokes(&self, p: &Principal) -> bool {
        self.known
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .revokes(p)
    }

    /// Reads what is new in the feed when it is due and nobody else is reading it.
    pub(crate) async fn follow(&self, http: &reqwest::Client) {
        let Ok(mut asked) = self.asked.try_lock() else {
            return;
        };
        if asked.is_some_and(|at| at.elapsed() < self.poll) {
            return;
        }
        *asked = Some(Instant::now());
        let after = self
            .known
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .after;
        match self.fetch(http, after).await {
            Ok(entries) => {
                let mut known = self
                    .known
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                for e in entries {
                    known.apply(e);
                }
                known.forget_expired(Utc::now());
                if self.failing.swap(false, Ordering::Relaxed) {
                    tracing::info!(url = %self.url, "revocation feed available again");
                }
            }
            Err(e) => {
                if !self.failing.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %e, url = %self.url, "revocation feed unavailable");
                }
            }
        }
    }

    async fn fetch(&self, http: &reqwest::Client, after: i64) -> Result<Vec<FeedEntry>, String> {
        let mut url = self.url.clone();
        url.query_pairs_mut()
            .append_pair("after", &after.to_string());
        let body = crate::verifier::get_json_bounded(
            http,
            url,
            MAX_FEED_BYTES,
            "the revocation feed page",
        )
        .await?;
        let page: FeedPage =
            serde_json::from_slice(&body).map_err(|e| format!("unreadable feed: {e}"))?;
        Ok(page.entries)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;

    fn principal(jti: &str, sub: &str, sid: Option<&str>, issued_at: DateTime<Utc>) -> Principal {
        Principal {
            subject: sub.into(),
            tenant: None,
            roles: vec![],
            client_id: "c".into(),
            audiences: vec![],
            scopes: vec![],
            token_id: jti.into(),
            expires_at: issued_at + TimeDelta::minutes(5),
            issued_at,
            session: sid.map(str::to_owned),
        }
    }

    fn entry(seq: i64, kind: &str, value: &str, before: Option<DateTime<Utc>>) -> FeedEntry {
        FeedEntry {
            seq,
            kind: kind.into(),
            value: value.into(),
            issued_before: before,
            expires_at: Utc::now() + TimeDelta::minutes(10),
        }
    }

    #[test]
    fn a_revocation_covers_its_token_or_what_was_issued_before_it() {
        let now = Utc::now();
        let earlier = now - TimeDelta::minutes(1);
        let mut k = Known::default();
        k.apply(entry(1, "token", "jti-1", None));
        k.apply(entry(2, "subject", "user-1", Some(now)));
        k.apply(entry(3, "session", "sid-1", Some(now)));
        k.apply(entry(4, "something-new", "x", None));
        assert_eq!(k.after, 4);

        assert!(k.revokes(&principal("jti-1", "user-9", None, earlier)));
        assert!(k.revokes(&principal("jti-2", "user-1", None, earlier)));
        assert!(k.revokes(&principal("jti-3", "user-9", Some("sid-1"), earlier)));
        // A new sign-in after the revocation is not affected.
        let later = now + TimeDelta::seconds(1);
        assert!(!k.revokes(&principal("jti-4", "user-1", None, later)));
        assert!(!k.revokes(&principal("jti-5", "user-9", Some("sid-1"), later)));
        assert!(!k.revokes(&principal("jti-6", "user-9", Some("sid-2"), earlier)));

        k.forget_expired(now + TimeDelta::hours(1));
        assert!(!k.revokes(&principal("jti-1", "user-1", Some("sid-1"), earlier)));
    }

    #[test]
    fn the_feed_url_sits_below_the_issuer() {
        let a = default_revocations_url(&Url::parse("https://gw.example/auth").unwrap());
        assert_eq!(a.as_str(), "https://gw.example/auth/revocations");
    }
}
