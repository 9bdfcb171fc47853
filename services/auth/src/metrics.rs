//! The auth service's Prometheus metrics.

use prometheus::{IntCounterVec, Opts, Registry};

#[derive(Debug, Clone)]
pub struct AuthMetrics {
    /// Security events by kind (login_failed, login_locked, token_reuse, ...).
    pub security_events: IntCounterVec,
    /// Tokens issued by grant type.
    pub tokens_issued: IntCounterVec,
}

impl AuthMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let security_events = IntCounterVec::new(
            Opts::new(
                "aurum_auth_security_events_total",
                "Security events (failed logins, lockouts, token reuse, bad client credentials)",
            ),
            &["event"],
        )?;
        let tokens_issued = IntCounterVec::new(
            Opts::new(
                "aurum_auth_tokens_issued_total",
                "Token responses by grant type",
            ),
            &["grant_type"],
        )?;
        registry.register(Box::new(security_events.clone()))?;
        registry.register(Box::new(tokens_issued.clone()))?;
        Ok(Self {
            security_events,
            tokens_issued,
        })
    }
}
