//! The auth service's configuration (`auth.*` on top of the shared http/database/telemetry
//! sections; `AURUM_AUTH__ISSUER=...` etc.).

use std::path::PathBuf;

use aurum_config::{
    ConfigError, ConfigProblem, DatabaseSettings, HttpSettings, Profile, TelemetrySettings,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

/// Shortest key-encryption key accepted.
const MIN_KEY_BYTES: usize = 32;

/// Audiences a token may be issued for.
pub const KNOWN_AUDIENCES: [&str; 4] = [
    "aurumai-api",
    "aurumai-ingestion",
    "aurumai-prediction",
    "aurumai-auth",
];

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthConfig {
    pub profile: Profile,
    pub http: HttpSettings,
    pub database: DatabaseSettings,
    pub telemetry: TelemetrySettings,
    pub auth: AuthSettings,
    /// Device provisioning on the MQTT broker; without it `/v1/devices` answers 503.
    #[serde(default)]
    pub devices: Option<DeviceSettings>,
}

/// The broker administration account (Mosquitto dynamic-security admin role) and the CA that
/// signs device client certificates.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DeviceSettings {
    pub broker: aurum_config::MqttSettings,
    /// Time limit of one broker administration command.
    #[serde(default = "default_broker_timeout_ms")]
    pub broker_timeout_ms: u64,
    /// Device CA certificate and key (PEM); both or neither. Without them device
    /// certificates are not issued (password logins still work).
    #[serde(default)]
    pub ca_cert_file: Option<std::path::PathBuf>,
    #[serde(default)]
    pub ca_key_file: Option<std::path::PathBuf>,
    #[serde(default = "default_cert_validity_days")]
    pub cert_validity_days: u32,
}

fn default_broker_timeout_ms() -> u64 {
    5_000
}

fn default_cert_validity_days() -> u32 {
    365
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthSettings {
    /// The issuer URL (`iss` of every token; discovery lives under it).
    pub issuer: String,
    pub access_token_ttl_s: u64,
    pub id_token_ttl_s: u64,
    pub refresh_token_ttl_s: u64,
    /// Authorization codes live this long (RFC 6749 recommends at most 10 minutes).
    pub auth_code_ttl_s: u64,
    /// How long a login form stays valid.
    pub login_form_ttl_s: u64,
    /// Clock skew accepted when verifying tokens (exp, nbf).
    pub leeway_s: u64,
    /// Shortest password accepted for users.
    pub min_password_len: usize,
    /// argon2 checks (about 19 MiB each) that requests may run at once; more wait.
    #[serde(default = "default_max_concurrent_hashes")]
    pub max_concurrent_hashes: usize,
    /// How long a request waits for a turn before it is answered 503 (busy).
    #[serde(default = "default_hash_wait_ms")]
    pub hash_wait_ms: u64,
    /// The proxies in front of auth (ingress controller, gateway): the client address is the
    /// rightmost `X-Forwarded-For` entry that is not one of them. Empty: the peer.
    #[serde(default)]
    pub trusted_proxies: aurum_http::TrustedProxies,
    /// Encrypts signing keys at rest (AES-256-GCM) when set; at least 32 bytes.
    #[serde(default, serialize_with = "ser_secret")]
    pub key_encryption_key: Option<SecretString>,
    pub brute_force: BruteForceSettings,
    #[serde(default)]
    pub bootstrap_admin: Option<BootstrapAdmin>,
    /// Upstream identity providers users may sign in with.
    #[serde(default)]
    pub federation: crate::federation::FederationSettings,
    /// OAuth clients created (or updated) at every start.
    #[serde(default)]
    pub clients: Vec<SeedClient>,
}

/// Failed sign-ins per account and per address: after `*_max_failures` failures within
/// `window_s`, sign-in is locked for `lockout_s`, doubling with every further failure up to
/// `max_lockout_s`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BruteForceSettings {
    pub user_max_failures: u32,
    pub ip_max_failures: u32,
    pub window_s: u64,
    pub lockout_s: u64,
    pub max_lockout_s: u64,
}

/// The first administrator of a tenant, created when that tenant has no user yet.
#[derive(Clone, Serialize, Deserialize)]
pub struct BootstrapAdmin {
    pub tenant: String,
    pub username: String,
    #[serde(serialize_with = "ser_secret_req")]
    pub password: SecretString,
    /// Also the platform operator (`platform_admin`: models, emission factors, signing keys
    /// for every tenant), not only its tenant's admin. Off unless set.
    #[serde(default)]
    pub platform_admin: bool,
}

impl std::fmt::Debug for BootstrapAdmin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BootstrapAdmin")
            .field("tenant", &self.tenant)
            .field("username", &self.username)
            .field("password", &"[REDACTED]")
            .field("platform_admin", &self.platform_admin)
            .finish()
    }
}

/// A client from configuration, e.g. the demo's web client and the services' own clients.
#[derive(Clone, Serialize, Deserialize)]
pub struct SeedClient {
    pub client_id: String,
    /// The secret; absent (with no `secret_file`) for a public client.
    #[serde(default, serialize_with = "ser_secret")]
    pub secret: Option<SecretString>,
    /// A file holding the secret (Kubernetes secrets).
    #[serde(default)]
    pub secret_file: Option<PathBuf>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    #[serde(default)]
    pub audiences: Vec<String>,
    /// `None` for a platform service client.
    #[serde(default)]
    pub tenant: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
}

impl std::fmt::Debug for SeedClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeedClient")
            .field("client_id", &self.client_id)
            .field("secret", &self.secret.as_ref().map(|_| "[REDACTED]"))
            .field("secret_file", &self.secret_file)
            .field("redirect_uris", &self.redirect_uris)
            .field("grant_types", &self.grant_types)
            .field("audiences", &self.audiences)
            .field("tenant", &self.tenant)
            .field("roles", &self.roles)
            .finish()
    }
}

impl SeedClient {
    /// The secret from `secret` or `secret_file`.
    pub fn resolve_secret(&self) -> Result<Option<SecretString>, std::io::Error> {
        if let Some(s) = &self.secret {
            return Ok(Some(s.clone()));
        }
        match &self.secret_file {
            Some(path) => {
                let text = std::fs::read_to_string(path)?;
                Ok(Some(SecretString::from(
                    text.trim_end_matches(['\n', '\r']).to_owned(),
                )))
            }
            None => Ok(None),
        }
    }
}

impl Default for AuthConfig {
    fn default() -> Self {
        Self {
            profile: Profile::Dev,
            http: HttpSettings::with_port(8083),
            database: DatabaseSettings::local("aurumai", "aurumai_auth"),
            telemetry: TelemetrySettings::default(),
            auth: AuthSettings {
                issuer: "http://127.0.0.1:8083".into(),
                access_token_ttl_s: 300,
                id_token_ttl_s: 300,
                refresh_token_ttl_s: 30 * 86_400,
                auth_code_ttl_s: 60,
                login_form_ttl_s: 600,
                leeway_s: 30,
                min_password_len: 12,
                max_concurrent_hashes: default_max_concurrent_hashes(),
                hash_wait_ms: default_hash_wait_ms(),
                trusted_proxies: Default::default(),
                key_encryption_key: None,
                brute_force: BruteForceSettings {
                    user_max_failures: 5,
                    ip_max_failures: 20,
                    window_s: 900,
                    lockout_s: 60,
                    max_lockout_s: 3_600,
                },
                bootstrap_admin: None,
                clients: Vec::new(),
                federation: Default::default(),
            },
            devices: None,
        }
    }
}

/// True for `localhost`, `127.0.0.0/8` and `::1`.
pub fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl AuthConfig {
    pub fn load() -> Result<Self, ConfigError> {
        aurum_config::load_checked(&Self::default(), Self::problems)
    }

    pub fn problems(&self) -> Vec<ConfigProblem> {
        let mut p = self.database.problems(self.profile);
        if let Some(d) = &self.devices {
            p.extend(d.broker.problems(self.profile).into_iter().map(|mut c| {
                c.key = format!("devices.broker.{}", c.key.trim_start_matches("mqtt."));
                c
            }));
            if d.ca_cert_file.is_some() != d.ca_key_file.is_some() {
                p.push(ConfigProblem {
                    key: "devices.ca_cert_file".into(),
                    problem: "the device CA certificate and key must be given together".into(),
                });
            }
        }
        let production = self.profile == Profile::Production;
        let s = &self.auth;
        let mut bad = |key: &str, problem: String| {
            p.push(ConfigProblem {
                key: key.into(),
                problem,
            })
        };
        match url::Url::parse(&s.issuer) {
            Err(e) => bad("auth.issuer", format!("is not a URL: {e}")),
            Ok(u) => {
                if u.query().is_some() || u.fragment().is_some() {
                    bad("auth.issuer", "must not have a query or fragment".into());
                }
                // The path prefixes links and cookie paths (`https://host/auth` behind the
                // gateway): plain characters only.
                if !u
                    .path()
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-._~/%".contains(&b))
                {
                    bad(
                        "auth.issuer",
                        "its path may hold only letters, digits, - . _ ~ / and %-escapes".into(),
                    );
                }
                match u.scheme() {
                    "https" => {}
                    "http" => {
                        let loopback = u.host_str().is_some_and(is_loopback_host);
                        if production && !loopback {
                            bad(
                                "auth.issuer",
                                "must be https:// in production (http:// only on loopback)".into(),
                            );
                        }
                    }
                    other => bad("auth.issuer", format!("scheme {other} is not http(s)")),
                }
            }
        }
        if s.access_token_ttl_s == 0 || s.id_token_ttl_s == 0 || s.refresh_token_ttl_s == 0 {
            bad(
                "auth.access_token_ttl_s",
                "token lifetimes must be at least 1 s".into(),
            );
        }
        if s.auth_code_ttl_s == 0 || s.auth_code_ttl_s > 600 {
            bad("auth.auth_code_ttl_s", "must be 1 to 600 seconds".into());
        }
        if s.min_password_len < 8 {
            bad("auth.min_password_len", "must be at least 8".into());
        }
        let bf = &s.brute_force;
        if bf.user_max_failures == 0 || bf.ip_max_failures == 0 || bf.lockout_s == 0 {
            bad(
                "auth.brute_force",
                "failure thresholds and lockout must be at least 1".into(),
            );
        }
        if bf.max_lockout_s < bf.lockout_s {
            bad(
                "auth.brute_force.max_lockout_s",
                "must be at least lockout_s".into(),
            );
        }
        match &s.key_encryption_key {
            Some(k) if k.expose_secret().len() < MIN_KEY_BYTES => bad(
                "auth.key_encryption_key",
                format!("must be at least {} bytes", MIN_KEY_BYTES),
            ),
            // Signing keys would lie in the database in the clear.
            None if production => bad(
                "auth.key_encryption_key",
                "is required in production (signing keys are encrypted at rest)".into(),
            ),
            _ => {}
        }
        if let Some(a) = &s.bootstrap_admin {
            if aurum_domain::TenantId::parse(&a.tenant).is_err() {
                bad("auth.bootstrap_admin.tenant", "is not a tenant id".into());
            }
            let len = a.password.expose_secret().chars().count();
            let min = if production { 16 } else { s.min_password_len };
            if len < min {
                bad(
                    "auth.bootstrap_admin.password",
                    format!("must be at least {min} characters"),
                );
            }
        }
        for (i, c) in s.clients.iter().enumerate() {
            let key = format!("auth.clients[{i}]");
            for g in &c.grant_types {
                if !aurum_ports::auth::GRANT_TYPES.contains(&g.as_str()) {
                    bad(&key, format!("unknown grant type {g}"));
                }
            }
            for a in &c.audiences {
                if !KNOWN_AUDIENCES.contains(&a.as_str()) {
                    bad(&key, format!("unknown audience {a}"));
                }
            }
            for r in &c.roles {
                if r.parse::<aurum_domain::Role>().is_err() {
                    bad(&key, format!("unknown role {r}"));
                }
            }
            if let Some(t) = &c.tenant {
                if aurum_domain::TenantId::parse(t).is_err() {
                    bad(&key, format!("tenant {t} is not a tenant id"));
                }
            }
            for u in c.redirect_uris.iter().chain(&c.post_logout_redirect_uris) {
                if let Err(e) = crate::clients::check_redirect_uri(u, production) {
                    bad(&key, format!("redirect URI {u}: {e}"));
                }
            }
            match c.resolve_secret() {
                Err(e) => bad(&key, format!("cannot read secret_file: {e}")),
                Ok(None) if c.grant_types.iter().any(|g| g == "client_credentials") => bad(
                    &key,
                    "client_credentials needs a secret (confidential client)".into(),
                ),
                Ok(Some(secret)) => {
                    if let Some(problem) =
                        aurum_config::check_secret_key(&key, &secret, self.profile)
                    {
                        p_push(&mut bad, problem);
                    }
                }
                Ok(None) => {}
            }
        }
        p.extend(s.federation.problems(production));
        p
    }
}

fn p_push(bad: &mut impl FnMut(&str, String), problem: ConfigProblem) {
    bad(&format!("{}.secret", problem.key), problem.problem);
}

fn ser_secret<S: serde::Serializer>(_: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_none()
}

/// A required secret never leaves the process either: the defaults layer writes an empty one.
fn ser_secret_req<S: serde::Serializer>(_: &SecretString, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str("")
}

/// Twice the cores: the checks are CPU-bound, and 2 x 19 MiB per core stays small.
fn default_max_concurrent_hashes() -> usize {
    2 * std::thread::available_parallelism().map_or(2, usize::from)
}

fn default_hash_wait_ms() -> u64 {
    2_000
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn production_refuses_a_plain_http_issuer_that_is_not_loopback() {
        let mut c = AuthConfig {
            profile: Profile::Production,
            ..AuthConfig::default()
        };
        c.auth.issuer = "http://auth.example.com".into();
        assert!(c.problems().iter().any(|p| p.key == "auth.issuer"));
        c.auth.issuer = "http://127.0.0.1:8083".into();
        assert!(!c.problems().iter().any(|p| p.key == "auth.issuer"));
        c.auth.issuer = "https://auth.example.com".into();
        assert!(!c.problems().iter().any(|p| p.key == "auth.issuer"));
        c.profile = Profile::Dev;
        c.auth.issuer = "http://auth.example.com".into();
        assert!(!c.problems().iter().any(|p| p.key == "auth.issuer"));
    }

    #[test]
    fn production_requires_a_key_encryption_key_of_32_bytes() {
        let mut c = AuthConfig {
            profile: Profile::Production,
            ..AuthConfig::default()
        };
        let kek_problem = |c: &AuthConfig| {
            c.problems()
                .iter()
                .any(|p| p.key == "auth.key_encryption_key")
        };
        assert!(kek_problem(&c), "production without a key-encryption key");
        c.auth.key_encryption_key = Some(SecretString::from("short".to_owned()));
        assert!(kek_problem(&c));
        c.auth.key_encryption_key = Some(SecretString::from("k".repeat(32)));
        assert!(!kek_problem(&c));
        c.profile = Profile::Dev;
        c.auth.key_encryption_key = None;
        assert!(!kek_problem(&c), "development may keep keys in the clear");
    }

    #[test]
    fn an_issuer_may_have_a_plain_path() {
        let mut c = AuthConfig::default();
        for ok in [
            "https://api.example.com/auth",
            "https://api.example.com/a/b-c_d.e/",
        ] {
            c.auth.issuer = ok.into();
            assert!(!c.problems().iter().any(|p| p.key == "auth.issuer"), "{ok}");
        }
        for bad in ["https://api.example.com/a;b", "https://api.example.com/a,b"] {
            c.auth.issuer = bad.into();
            assert!(c.problems().iter().any(|p| p.key == "auth.issuer"), "{bad}");
        }
    }

    #[test]
    fn loopback_hosts() {
        assert!(is_loopback_host("localhost"));
        assert!(is_loopback_host("127.0.0.1"));
        assert!(is_loopback_host("[::1]"));
        assert!(!is_loopback_host("10.0.0.1"));
        assert!(!is_loopback_host("auth.example.com"));
    }
}
