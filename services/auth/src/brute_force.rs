//! Brute-force protection: failed sign-ins are counted per account *and address* and per
//! address; past a threshold sign-in is locked for a while, the lock doubling with each further
//! failure (up to a ceiling). The state lives in the database so every replica sees it.
//!
//! The account lock is per address so that nobody can lock an administrator out by failing in
//! their name: the guesser locks only themselves. Guessing one account from many addresses is
//! bounded by each address's own lock (and the gateway's per-address limit).

use std::sync::Arc;

use aurum_ports::auth::LoginAttemptStore;
use aurum_ports::StoreError;
use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use crate::config::BruteForceSettings;
use crate::crypto;

#[derive(Debug, Clone)]
pub struct BruteForce {
    store: Arc<dyn LoginAttemptStore>,
    settings: BruteForceSettings,
}

/// Whose sign-in is attempted: a known account by its id (however its name was typed: case
/// folding in Rust and in PostgreSQL differ, the id does not), or a name no account has,
/// kept only as a digest (it may be a password typed in the wrong field).
#[derive(Debug, Clone, Copy)]
pub enum Account<'a> {
    Known(Uuid),
    Unknown(&'a str),
}

fn account_key(account: Account<'_>, ip: Option<&str>) -> String {
    let who = match account {
        Account::Known(id) => id.to_string(),
        Account::Unknown(typed) => format!("unknown:{}", crypto::sha256_hex(&typed.to_lowercase())),
    };
    format!("user:{who}@{}", ip.unwrap_or("-"))
}

fn ip_key(ip: &str) -> String {
    format!("ip:{ip}")
}

impl BruteForce {
    pub fn new(store: Arc<dyn LoginAttemptStore>, settings: BruteForceSettings) -> Self {
        Self { store, settings }
    }

    /// Until when sign-in is locked for this account from this address, or for the address,
    /// if it is now.
    pub async fn locked_until(
        &self,
        account: Account<'_>,
        ip: Option<&str>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let now = Utc::now();
        let mut until = None;
        let mut keys = vec![account_key(account, ip)];
        keys.extend(ip.map(ip_key));
        for key in keys {
            if let Some(state) = self.store.attempt_state(&key).await? {
                if let Some(l) = state.locked_until.filter(|l| *l > now) {
                    until = Some(until.map_or(l, |u: DateTime<Utc>| u.max(l)));
                }
            }
        }
        Ok(until)
    }

    fn lock_after(
        &self,
        threshold: u32,
        now: DateTime<Utc>,
    ) -> impl Fn(i32) -> Option<DateTime<Utc>> + Sync + '_ {
        move |failures: i32| {
            let over = i64::from(failures) - i64::from(threshold);
            if over < 0 {
                return None;
            }
            let factor = 1u64 << over.clamp(0, 20);
            let secs = self
                .settings
                .lockout_s
                .saturating_mul(factor)
                .min(self.settings.max_lockout_s);
            Some(now + Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 2)))
        }
    }

    /// Counts a failure; returns the lock it caused, if any.
    pub async fn failed(
        &self,
        account: Account<'_>,
        ip: Option<&str>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let now = Utc::now();
        let window_start =
            now - Duration::seconds(i64::try_from(self.settings.window_s).unwrap_or(0));
        let mut locked = None;
        let user_lock = self.lock_after(self.settings.user_max_failures, now);
        let s = self
            .store
            .record_failure(&account_key(account, ip), now, window_start, &user_lock)
            .await?;
        locked = locked.max(s.locked_until.filter(|l| *l > now));
        if let Some(ip) = ip {
            let ip_lock = self.lock_after(self.settings.ip_max_failures, now);
            let s = self
                .store
                .record_failure(&ip_key(ip), now, window_start, &ip_lock)
                .await?;
            locked = locked.max(s.locked_until.filter(|l| *l > now));
        }
        Ok(locked)
    }

    /// A successful sign-in clears the account's count from this address (not the address's:
    /// one good password must not reset an address that is guessing others).
    pub async fn succeeded(&self, user: Uuid, ip: Option<&str>) -> Result<(), StoreError> {
        self.store
            .clear_failures(&account_key(Account::Known(user), ip))
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::{account_key, Account};
    use uuid::Uuid;

    #[test]
    fn an_account_is_keyed_by_its_id_and_the_address_and_a_typed_name_never_verbatim() {
        let id = Uuid::new_v4();
        let here = account_key(Account::Known(id), Some("203.0.113.7"));
        assert_eq!(here, format!("user:{id}@203.0.113.7"));
        assert_ne!(here, account_key(Account::Known(id), Some("198.51.100.1")));
        let typed = account_key(Account::Unknown("Hunter2-Password"), Some("203.0.113.7"));
        assert!(!typed.to_lowercase().contains("hunter2"), "{typed}");
        assert_eq!(
            typed,
            account_key(Account::Unknown("hunter2-password"), Some("203.0.113.7"))
        );
    }
}
