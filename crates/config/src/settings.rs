//! Settings shared by the services.

use std::fmt;
use std::path::PathBuf;

use secrecy::SecretString;
use serde::{Deserialize, Serialize};

/// `dev` allows local conveniences (plaintext MQTT, no database TLS); `production` refuses them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Profile {
    #[default]
    Dev,
    Production,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct HttpSettings {
    pub host: String,
    pub port: u16,
    /// Largest request body accepted; larger ones get 413.
    pub body_limit_bytes: usize,
    /// Seconds in-flight requests get to finish on SIGTERM.
    pub shutdown_timeout_s: u64,
    /// Serve `/metrics` on a port of its own (0: any free one) instead of the API port, so
    /// that the monitoring network may reach it and nothing else.
    #[serde(default)]
    pub metrics_port: Option<u16>,
}

impl HttpSettings {
    pub fn with_port(port: u16) -> Self {
        Self {
            host: "127.0.0.1".into(),
            port,
            body_limit_bytes: 1024 * 1024,
            shutdown_timeout_s: 20,
            metrics_port: None,
        }
    }
}

/// libpq's `sslmode`, restricted to the modes the adapter implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SslMode {
    Disable,
    Prefer,
    Require,
    VerifyCa,
    VerifyFull,
}

#[derive(Clone, Serialize, Deserialize)]
pub struct DatabaseSettings {
    pub host: String,
    pub port: u16,
    pub name: String,
    /// The service's own least-privilege role.
    pub user: String,
    #[serde(default, serialize_with = "ser_secret")]
    pub password: Option<SecretString>,
    /// A role allowed to create roles and schemas, used by `migrate` only. Defaults to `user`.
    #[serde(default)]
    pub admin_user: Option<String>,
    #[serde(default, serialize_with = "ser_secret")]
    pub admin_password: Option<SecretString>,
    pub sslmode: SslMode,
    /// CA certificate (PEM) for `verify-ca` / `verify-full`.
    #[serde(default)]
    pub sslrootcert: Option<PathBuf>,
    pub pool_max_size: u32,
    pub connect_timeout_ms: u64,
}

impl fmt::Debug for DatabaseSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("name", &self.name)
            .field("user", &self.user)
            .field("password", &redacted(&self.password))
            .field("admin_user", &self.admin_user)
            .field("admin_password", &redacted(&self.admin_password))
            .field("sslmode", &self.sslmode)
            .field("sslrootcert", &self.sslrootcert)
            .field("pool_max_size", &self.pool_max_size)
            .field("connect_timeout_ms", &self.connect_timeout_ms)
            .finish()
    }
}

impl DatabaseSettings {
    pub fn local(name: &str, user: &str) -> Self {
        Self {
            host: "127.0.0.1".into(),
            port: 5432,
            name: name.into(),
            user: user.into(),
            password: None,
            admin_user: None,
            admin_password: None,
            sslmode: SslMode::Prefer,
            sslrootcert: None,
            pool_max_size: 16,
            connect_timeout_ms: 5_000,
        }
    }
}

#[derive(Clone, Serialize, Deserialize)]
pub struct MqttSettings {
    /// `mqtt://host:1883` (plaintext) or `mqtts://host:8883` (TLS).
    pub url: String,
    pub client_id: String,
    #[serde(default)]
    pub username: Option<String>,
    #[serde(default, serialize_with = "ser_secret")]
    pub password: Option<SecretString>,
    /// CA bundle (PEM) that signed the broker's certificate.
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    /// Client certificate and key (PEM) for mutual TLS.
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
    pub keep_alive_s: u64,
    /// How long the broker keeps the session (subscriptions and queued QoS 1 messages) while
    /// the client is away.
    pub session_expiry_s: u32,
}

impl fmt::Debug for MqttSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MqttSettings")
            .field("url", &self.url)
            .field("client_id", &self.client_id)
            .field("username", &self.username)
            .field("password", &redacted(&self.password))
            .field("ca_file", &self.ca_file)
            .field("cert_file", &self.cert_file)
            .field("key_file", &self.key_file)
            .field("keep_alive_s", &self.keep_alive_s)
            .field("session_expiry_s", &self.session_expiry_s)
            .finish()
    }
}

impl MqttSettings {
    pub fn local(client_id: &str) -> Self {
        Self {
            url: "mqtt://127.0.0.1:1883".into(),
            client_id: client_id.into(),
            username: None,
            password: None,
            ca_file: None,
            cert_file: None,
            key_file: None,
            keep_alive_s: 30,
            session_expiry_s: 7 * 86_400,
        }
    }

    pub fn is_tls(&self) -> bool {
        self.url.starts_with("mqtts://") || self.url.starts_with("ssl://")
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    Json,
    Pretty,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum OtlpProtocol {
    #[serde(rename = "grpc")]
    Grpc,
    #[serde(rename = "http/protobuf")]
    HttpProtobuf,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TelemetrySettings {
    /// `tracing` filter directives, e.g. `info,aurum_ingestion=debug`.
    pub log_level: String,
    pub log_format: LogFormat,
    /// OTLP collector endpoint; traces are exported only when set (or when
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` is).
    #[serde(default)]
    pub otlp_endpoint: Option<String>,
    pub otlp_protocol: OtlpProtocol,
    /// Fraction of new traces sampled (parent decisions are followed).
    pub sampling_ratio: f64,
}

impl Default for TelemetrySettings {
    fn default() -> Self {
        Self {
            log_level: "info".into(),
            log_format: LogFormat::Json,
            otlp_endpoint: None,
            otlp_protocol: OtlpProtocol::Grpc,
            sampling_ratio: 1.0,
        }
    }
}

fn redacted(s: &Option<SecretString>) -> &'static str {
    if s.is_some() {
        "[REDACTED]"
    } else {
        "None"
    }
}

/// Secrets are written back out (defaults layer) only as "unset": they never leave the process.
fn ser_secret<S: serde::Serializer>(_: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_none()
}

/// How a service verifies the access tokens on its API (`auth.*`). Without it the service
/// trusts the `X-Aurum-Tenant` header: development only, the production profile refuses.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TokenSettings {
    /// The auth service's issuer URL (`iss` of its tokens).
    pub issuer: String,
    /// Where its signing keys are published; `{issuer}/jwks` when unset.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// Accepted `aud` values; the service's defaults when empty.
    #[serde(default)]
    pub audiences: Vec<String>,
    /// Clock skew allowed on `exp`/`nbf`, seconds.
    #[serde(default = "default_leeway_s")]
    pub leeway_s: u64,
}

fn default_leeway_s() -> u64 {
    30
}

/// A service's own OAuth client, for calling another service with an audience-bound token.
#[derive(Clone, Serialize, Deserialize)]
pub struct ServiceClientSettings {
    /// The auth service's token endpoint.
    pub token_url: String,
    pub client_id: String,
    #[serde(serialize_with = "ser_required_secret")]
    pub client_secret: SecretString,
}

impl fmt::Debug for ServiceClientSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceClientSettings")
            .field("token_url", &self.token_url)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[REDACTED]")
            .finish()
    }
}

fn ser_required_secret<S: serde::Serializer>(_: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_none()
}

/// The checks every service applies to its `auth` section.
pub fn token_problems(auth: Option<&TokenSettings>, profile: Profile) -> Vec<crate::ConfigProblem> {
    let problem = |key: &str, text: &str| crate::ConfigProblem {
        key: key.into(),
        problem: text.into(),
    };
    match auth {
        None if profile == Profile::Production => vec![problem(
            "auth.issuer",
            "is required in production: every API call must carry a verified access token",
        )],
        None => Vec::new(),
        Some(a) => {
            let mut out = Vec::new();
            // The issuer is the public URL that tokens name; the key set may be fetched
            // from inside the cluster (auth.jwks_url).
            for (key, url) in [
                ("auth.issuer", Some(&a.issuer)),
                ("auth.jwks_url", a.jwks_url.as_ref()),
            ] {
                if let Some(url) = url {
                    if !(url.starts_with("http://") || url.starts_with("https://")) {
                        out.push(problem(key, "must be an http:// or https:// URL"));
                    }
                }
            }
            let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"];
            if profile == Profile::Production
                && a.issuer.starts_with("http://")
                && !loopback.iter().any(|l| a.issuer.starts_with(l))
            {
                out.push(problem("auth.issuer", "must use https:// in production"));
            }
            out
        }
    }
}
