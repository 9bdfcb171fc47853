//! Brute-force protection: failed sign-ins are counted per account and per client address;
//! past a threshold sign-in is locked for a while, the lock doubling with each further failure
//! (up to a ceiling). The state lives in the database so every replica sees it.

use std::sync::Arc;

use aurum_ports::auth::LoginAttemptStore;
use aurum_ports::StoreError;
use chrono::{DateTime, Duration, Utc};

use crate::config::BruteForceSettings;

#[derive(Debug, Clone)]
pub struct BruteForce {
    store: Arc<dyn LoginAttemptStore>,
    settings: BruteForceSettings,
}

fn user_key(username: &str) -> String {
    format!("user:{}", username.to_lowercase())
}

fn ip_key(ip: &str) -> String {
    format!("ip:{ip}")
}

impl BruteForce {
    pub fn new(store: Arc<dyn LoginAttemptStore>, settings: BruteForceSettings) -> Self {
        Self { store, settings }
    }

    /// Until when sign-in is locked for this account or address, if it is now.
    pub async fn locked_until(
        &self,
        username: &str,
        ip: Option<&str>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let now = Utc::now();
        let mut until = None;
        let mut keys = vec![user_key(username)];
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
        username: &str,
        ip: Option<&str>,
    ) -> Result<Option<DateTime<Utc>>, StoreError> {
        let now = Utc::now();
        let window_start =
            now - Duration::seconds(i64::try_from(self.settings.window_s).unwrap_or(0));
        let mut locked = None;
        let user_lock = self.lock_after(self.settings.user_max_failures, now);
        let s = self
            .store
            .record_failure(&user_key(username), now, window_start, &user_lock)
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

    /// A successful sign-in clears the account's count (not the address's: one good password
    /// must not reset an address that is guessing others).
    pub async fn succeeded(&self, username: &str) -> Result<(), StoreError> {
        self.store.clear_failures(&user_key(username)).await
    }
}
