//! The gateway's configuration (`aurumai.toml` / `AURUM_*`), checked at start-up.

use std::time::Duration;

use aurum_config::{
    ConfigError, ConfigProblem, DatabaseSettings, HttpSettings, Profile, TelemetrySettings,
};
use serde::{Deserialize, Serialize};
use url::Url;

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GatewayConfig {
    pub profile: Profile,
    pub http: HttpSettings,
    pub database: DatabaseSettings,
    pub telemetry: TelemetrySettings,
    pub auth: AuthSettings,
    pub upstreams: Upstreams,
    pub rate_limit: RateLimitSettings,
    pub cors: CorsSettings,
    pub audit: AuditSettings,
}

/// Token verification (the platform's token contract).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthSettings {
    /// The issuer (`iss`), e.g. `http://127.0.0.1:8083`.
    pub issuer: String,
    /// Where its keys are; `{issuer}/jwks` when unset.
    pub jwks_url: Option<String>,
    /// Accepted audiences of access tokens.
    pub audiences: Vec<String>,
    pub leeway_s: u64,
    pub min_refetch_interval_ms: u64,
    pub jwks_timeout_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Upstream {
    pub url: String,
    /// Time limit of one attempt (connect + answer).
    pub timeout_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Upstreams {
    pub ingestion: Upstream,
    pub prediction: Upstream,
    pub auth: Upstream,
    /// Extra attempts for idempotent methods (GET, HEAD, PUT, DELETE) after a failed
    /// exchange (other than a timeout) or a 502/503.
    pub retries: u32,
    pub retry_backoff_ms: u64,
    /// Connections open at once to all upstreams, per worker thread (0: no limit); calls
    /// over it wait for a free one.
    pub max_connections: usize,
    /// An idle pooled connection is closed after this long. Below the services' own
    /// keep-alive (5 s), so the gateway never reuses one a service is closing.
    pub idle_timeout_ms: u64,
}

/// `requests` per `per_s` seconds, as a burst that refills evenly (GCRA).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
pub struct Limit {
    pub requests: u32,
    pub per_s: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RateLimitSettings {
    pub enabled: bool,
    /// Per token subject.
    pub per_principal: Limit,
    /// Per tenant, all its users together.
    pub per_tenant: Limit,
    /// Per client IP, for calls without a valid token and for the OpenID Connect endpoints
    /// passed through to the auth service (`/auth/...`).
    pub per_ip_anonymous: Limit,
    /// The proxies in front of the gateway (the ingress controller): the per-IP limit keys on
    /// the rightmost `X-Forwarded-For` entry that is not one of them, so a client cannot pick
    /// its own key by writing the header. Empty: the connection's peer.
    #[serde(default)]
    pub trusted_proxies: aurum_http::TrustedProxies,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CorsSettings {
    /// Origins allowed to call the API from a browser (exact `scheme://host[:port]`).
    pub allowed_origins: Vec<String>,
    pub max_age_s: usize,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuditSettings {
    pub enabled: bool,
    /// Entries older than this are deleted by `aurum-gateway audit-retention`, which runs as
    /// the migration role (an anchor keeps the chain verifiable).
    pub retention_days: u32,
    /// Entries waiting for the writer; past this they are dropped and counted.
    pub queue_capacity: usize,
    /// Entries written per transaction at most.
    pub batch_max: usize,
    /// How long the writer gathers entries into one transaction, in milliseconds.
    pub linger_ms: u64,
}

impl Default for GatewayConfig {
    fn default() -> Self {
        let up = |port: u16| Upstream {
            url: format!("http://127.0.0.1:{port}"),
            timeout_ms: 10_000,
        };
        Self {
            profile: Profile::Dev,
            http: HttpSettings {
                // Telemetry batches pass through: room for a full batch.
                body_limit_bytes: 4 * 1024 * 1024,
                ..HttpSettings::with_port(8080)
            },
            database: DatabaseSettings::local("aurumai", "aurumai_gateway"),
            telemetry: TelemetrySettings::default(),
            auth: AuthSettings {
                issuer: "http://127.0.0.1:8083".into(),
                jwks_url: None,
                audiences: vec![aurum_authn::API_AUDIENCE.into()],
                leeway_s: 30,
                min_refetch_interval_ms: 10_000,
                jwks_timeout_ms: 3_000,
            },
            upstreams: Upstreams {
                ingestion: up(8081),
                prediction: up(8082),
                auth: up(8083),
                retries: 2,
                retry_backoff_ms: 50,
                max_connections: 0,
                idle_timeout_ms: 4_000,
            },
            rate_limit: RateLimitSettings {
                enabled: true,
                per_principal: Limit {
                    requests: 600,
                    per_s: 60,
                },
                per_tenant: Limit {
                    requests: 6_000,
                    per_s: 60,
                },
                per_ip_anonymous: Limit {
                    requests: 60,
                    per_s: 60,
                },
                trusted_proxies: Default::default(),
            },
            cors: CorsSettings {
                allowed_origins: vec!["http://localhost:3000".into()],
                max_age_s: 600,
            },
            audit: AuditSettings {
                enabled: true,
                retention_days: 365,
                queue_capacity: 10_000,
                batch_max: 512,
                linger_ms: 100,
            },
        }
    }
}

impl Upstream {
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.max(1))
    }
}

impl GatewayConfig {
    pub fn load() -> Result<Self, ConfigError> {
        aurum_config::load_checked(&Self::default(), Self::problems)
    }

    pub fn problems(&self) -> Vec<ConfigProblem> {
        let mut p = self.database.problems(self.profile);
        let mut bad = |key: &str, problem: String| {
            p.push(ConfigProblem {
                key: key.into(),
                problem,
            })
        };
        if let Err(e) = Url::parse(&self.auth.issuer) {
            bad("auth.issuer", format!("not a URL: {e}"));
        }
        if let Some(j) = &self.auth.jwks_url {
            if let Err(e) = Url::parse(j) {
                bad("auth.jwks_url", format!("not a URL: {e}"));
            }
        }
        if self.auth.audiences.is_empty() {
            bad("auth.audiences", "at least one audience is needed".into());
        }
        for (key, u) in [
            ("upstreams.ingestion.url", &self.upstreams.ingestion),
            ("upstreams.prediction.url", &self.upstreams.prediction),
            ("upstreams.auth.url", &self.upstreams.auth),
        ] {
            if let Err(e) = Url::parse(&u.url) {
                bad(key, format!("not a URL: {e}"));
            }
        }
        for (key, l) in [
            ("rate_limit.per_principal", self.rate_limit.per_principal),
            ("rate_limit.per_tenant", self.rate_limit.per_tenant),
            (
                "rate_limit.per_ip_anonymous",
                self.rate_limit.per_ip_anonymous,
            ),
        ] {
            if l.requests == 0 || l.per_s == 0 {
                bad(key, "requests and per_s must be at least 1".into());
            }
        }
        for o in &self.cors.allowed_origins {
            if o == "*" || Url::parse(o).is_err() {
                bad(
                    "cors.allowed_origins",
                    format!("{o:?} is not an origin (no wildcards)"),
                );
            }
        }
        if self.audit.retention_days == 0 {
            bad("audit.retention_days", "must be at least 1".into());
        }
        if self.audit.queue_capacity == 0 || self.audit.batch_max == 0 {
            bad("audit.queue_capacity", "must be at least 1".into());
        }
        if self.profile == Profile::Production && self.auth.issuer.starts_with("http://") {
            bad("auth.issuer", "production needs an https issuer".into());
        }
        p
    }
}
