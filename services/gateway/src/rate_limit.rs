//! Rate limits per principal (token subject), per tenant, and per client IP for calls
//! without a valid token and for the OpenID Connect passthrough (GCRA via governor). Answers carry the IETF draft `RateLimit-Limit`,
//! `RateLimit-Remaining` and `RateLimit-Reset` headers; refusals are 429 with `Retry-After`.

use std::num::NonZeroU32;
use std::time::Duration;

use actix_web::http::header::{HeaderName, HeaderValue, RETRY_AFTER};
use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use aurum_http::{Problem, RequestId};
use governor::clock::{Clock, DefaultClock};
use governor::middleware::StateInformationMiddleware;
use governor::{Quota, RateLimiter};

use crate::config::{Limit, RateLimitSettings};
use crate::metrics::GatewayMetrics;

type Keyed = RateLimiter<
    String,
    governor::state::keyed::DefaultKeyedStateStore<String>,
    DefaultClock,
    StateInformationMiddleware,
>;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Principal,
    Tenant,
    Ip,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Principal => "principal",
            Scope::Tenant => "tenant",
            Scope::Ip => "ip",
        }
    }
}

/// What the headers say after an allowed request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    pub limit: u32,
    pub remaining: u32,
    /// Seconds until the allowance is full again.
    pub reset_s: u64,
}

/// A refused request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limited {
    pub scope: Scope,
    pub limit: u32,
    pub retry_after: Duration,
}

struct Limiter {
    limit: Limit,
    limiter: Keyed,
}

impl Limiter {
    fn new(limit: Limit) -> Self {
        let requests = NonZeroU32::new(limit.requests.max(1)).unwrap_or(NonZeroU32::MIN);
        let period = Duration::from_secs(limit.per_s.max(1)) / requests.get();
        let quota = Quota::with_period(period.max(Duration::from_nanos(1)))
            .unwrap_or_else(|| Quota::per_second(requests))
            .allow_burst(requests);
        Self {
            limit,
            limiter: RateLimiter::keyed(quota).with_middleware::<StateInformationMiddleware>(),
        }
    }

    fn check(&self, key: &str, scope: Scope) -> Result<Allowance, Limited> {
        let key = key.to_owned();
        match self.limiter.check_key(&key) {
            Ok(snapshot) => {
                let remaining = snapshot.remaining_burst_capacity();
                let used = self.limit.requests.saturating_sub(remaining);
                let per_cell = self.limit.per_s as f64 / f64::from(self.limit.requests.max(1));
                Ok(Allowance {
                    limit: self.limit.requests,
                    remaining,
                    reset_s: (f64::from(used) * per_cell).ceil() as u64,
                })
            }
            Err(not_until) => Err(Limited {
                scope,
                limit: self.limit.requests,
                retry_after: not_until.wait_time_from(DefaultClock::default().now()),
            }),
        }
    }
}

/// All the gateway's limiters.
pub struct RateLimits {
    principal: Limiter,
    tenant: Limiter,
    ip: Limiter,
    trusted_proxies: aurum_http::TrustedProxies,
    metrics: GatewayMetrics,
}

impl std::fmt::Debug for RateLimits {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RateLimits")
            .field("principal", &self.principal.limit)
            .field("tenant", &self.tenant.limit)
            .field("ip", &self.ip.limit)
            .field("trusted_proxies", &self.trusted_proxies)
            .finish()
    }
}

impl RateLimits {
    pub fn new(settings: &RateLimitSettings, metrics: GatewayMetrics) -> Self {
        Self {
            principal: Limiter::new(settings.per_principal),
            tenant: Limiter::new(settings.per_tenant),
            ip: Limiter::new(settings.per_ip_anonymous),
            trusted_proxies: settings.trusted_proxies.clone(),
            metrics,
        }
    }

    /// An authenticated call: the subject's and the tenant's allowances. The headers report
    /// the tighter one.
    pub fn check_principal(
        &self,
        subject: &str,
        tenant: Option<&str>,
    ) -> Result<Allowance, Limited> {
        let p = self
            .principal
            .check(subject, Scope::Principal)
            .inspect_err(|l| self.count(l))?;
        let Some(t) = tenant else { return Ok(p) };
        let t = self
            .tenant
            .check(t, Scope::Tenant)
            .inspect_err(|l| self.count(l))?;
        Ok(if t.remaining < p.remaining { t } else { p })
    }

    /// A call without a valid token, or to the OpenID Connect endpoints, from `req`'s client.
    pub fn check_ip(&self, req: &HttpRequest) -> Result<Allowance, Limited> {
        self.ip
            .check(
                &aurum_http::client_ip(req, &self.trusted_proxies)
                    .map(|ip| ip.to_string())
                    .unwrap_or_default(),
                Scope::Ip,
            )
            .inspect_err(|l| self.count(l))
    }

    fn count(&self, l: &Limited) {
        self.metrics
            .rate_limited
            .with_label_values(&[l.scope.as_str()])
            .inc();
    }

    /// Forgets idle keys (run periodically).
    pub fn prune(&self) {
        self.principal.limiter.retain_recent();
        self.tenant.limiter.retain_recent();
        self.ip.limiter.retain_recent();
    }
}

pub const LIMIT: &str = "ratelimit-limit";
pub const REMAINING: &str = "ratelimit-remaining";
pub const RESET: &str = "ratelimit-reset";

pub fn add_headers(res: &mut HttpResponse, a: &Allowance) {
    let h = res.headers_mut();
    h.insert(HeaderName::from_static(LIMIT), HeaderValue::from(a.limit));
    h.insert(
        HeaderName::from_static(REMAINING),
        HeaderValue::from(a.remaining),
    );
    h.insert(HeaderName::from_static(RESET), HeaderValue::from(a.reset_s));
}

/// 429 with `Retry-After` (whole seconds, at least 1) and the rate-limit headers.
pub fn too_many(l: &Limited) -> HttpResponse {
    let secs = l.retry_after.as_secs_f64().ceil().max(1.0) as u64;
    let mut problem = Problem::new(
        StatusCode::TOO_MANY_REQUESTS,
        "rate-limited",
        "Too many requests",
    )
    .detail(format!(
        "the {} limit is {} requests; retry in {secs} s",
        l.scope.as_str(),
        l.limit
    ));
    problem.request_id = RequestId::current().map(|r| r.to_string());
    let mut res = HttpResponse::TooManyRequests()
        .content_type("application/problem+json")
        .json(problem);
    res.headers_mut()
        .insert(RETRY_AFTER, HeaderValue::from(secs));
    add_headers(
        &mut res,
        &Allowance {
            limit: l.limit,
            remaining: 0,
            reset_s: secs,
        },
    );
    res
}
