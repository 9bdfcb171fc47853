//! The gateway's own metrics (besides the HTTP metrics every service has).

use prometheus::{IntCounter, IntCounterVec, IntGauge, Opts, Registry};

#[derive(Debug, Clone)]
pub struct GatewayMetrics {
    /// Requests refused with 429, by scope (principal, tenant, ip).
    pub rate_limited: IntCounterVec,
    /// Refused tokens, by reason.
    pub auth_failures: IntCounterVec,
    /// Authenticated requests refused for their role or tenant.
    pub forbidden: IntCounter,
    /// Upstream attempts repeated, by upstream.
    pub upstream_retries: IntCounterVec,
    /// Upstream calls that failed (no answer), by upstream and kind.
    pub upstream_failures: IntCounterVec,
    pub audit_written: IntCounter,
    /// Audit entries not written, by reason (queue_full, store).
    pub audit_dropped: IntCounterVec,
    pub audit_queue: IntGauge,
}

impl GatewayMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self {
            rate_limited: IntCounterVec::new(
                Opts::new(
                    "aurum_gateway_rate_limited_total",
                    "Requests refused with 429",
                ),
                &["scope"],
            )?,
            auth_failures: IntCounterVec::new(
                Opts::new(
                    "aurum_gateway_auth_failures_total",
                    "Requests with a missing or refused token",
                ),
                &["reason"],
            )?,
            forbidden: IntCounter::new(
                "aurum_gateway_forbidden_total",
                "Authenticated requests refused for their role or tenant",
            )?,
            upstream_retries: IntCounterVec::new(
                Opts::new(
                    "aurum_gateway_upstream_retries_total",
                    "Upstream attempts repeated",
                ),
                &["upstream"],
            )?,
            upstream_failures: IntCounterVec::new(
                Opts::new(
                    "aurum_gateway_upstream_failures_total",
                    "Upstream calls without an answer",
                ),
                &["upstream", "kind"],
            )?,
            audit_written: IntCounter::new(
                "aurum_gateway_audit_written_total",
                "Audit entries stored",
            )?,
            audit_dropped: IntCounterVec::new(
                Opts::new(
                    "aurum_gateway_audit_dropped_total",
                    "Audit entries that could not be stored",
                ),
                &["reason"],
            )?,
            audit_queue: IntGauge::new(
                "aurum_gateway_audit_queue",
                "Audit entries waiting for the writer",
            )?,
        };
        registry.register(Box::new(m.rate_limited.clone()))?;
        registry.register(Box::new(m.auth_failures.clone()))?;
        registry.register(Box::new(m.forbidden.clone()))?;
        registry.register(Box::new(m.upstream_retries.clone()))?;
        registry.register(Box::new(m.upstream_failures.clone()))?;
        registry.register(Box::new(m.audit_written.clone()))?;
        registry.register(Box::new(m.audit_dropped.clone()))?;
        registry.register(Box::new(m.audit_queue.clone()))?;
        Ok(m)
    }
}
