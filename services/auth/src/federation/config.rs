//! `auth.federation`: upstream OpenID Connect providers users may sign in with.

use std::path::PathBuf;

use aurum_config::ConfigProblem;
use aurum_domain::Role;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FederationSettings {
    #[serde(default)]
    pub providers: Vec<ProviderSettings>,
    /// How long a browser has to come back from the upstream provider.
    #[serde(default = "default_pending_ttl")]
    pub pending_ttl_s: u64,
    /// Time allowed for each request to an upstream provider.
    #[serde(default = "default_http_timeout")]
    pub http_timeout_s: u64,
}

impl Default for FederationSettings {
    fn default() -> Self {
        Self {
            providers: Vec::new(),
            pending_ttl_s: default_pending_ttl(),
            http_timeout_s: default_http_timeout(),
        }
    }
}

fn default_pending_ttl() -> u64 {
    600
}

fn default_http_timeout() -> u64 {
    10
}

/// How the platform authenticates to the upstream token endpoint.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenAuth {
    #[default]
    ClientSecretBasic,
    ClientSecretPost,
}

/// One upstream provider. Its redirect URI at the provider is
/// `{auth.issuer}/federation/{id}/callback`.
#[derive(Clone, Serialize, Deserialize)]
pub struct ProviderSettings {
    /// Short name in URLs and in the identity links: `[a-z0-9][a-z0-9_-]{0,63}`.
    pub id: String,
    /// Shown on the login page: "Log in with {display_name}".
    pub display_name: String,
    /// The upstream issuer; discovery at `{issuer}/.well-known/openid-configuration`.
    pub issuer: String,
    pub client_id: String,
    #[serde(default, serialize_with = "ser_secret")]
    pub client_secret: Option<SecretString>,
    /// A file holding the client secret (Kubernetes secrets).
    #[serde(default)]
    pub client_secret_file: Option<PathBuf>,
    #[serde(default)]
    pub token_auth: TokenAuth,
    #[serde(default = "default_scopes")]
    pub scopes: Vec<String>,
    /// The upstream claim that finds the platform user: `email` (must be verified upstream:
    /// matched against the users' email addresses) or another string claim such as `sub` or
    /// `preferred_username` (matched against usernames).
    #[serde(default = "default_claim")]
    pub claim: String,
    /// The tenant whose users this provider signs in.
    pub tenant: String,
    /// Link an upstream identity seen for the first time to the tenant's user the claim names.
    #[serde(default = "yes")]
    pub match_existing: bool,
    /// Create a user in `tenant` when no user matches.
    #[serde(default)]
    pub auto_provision: bool,
    /// The role of users created by `auto_provision` (viewer or operator, never admin).
    #[serde(default = "default_role")]
    pub provision_role: Role,
}

impl std::fmt::Debug for ProviderSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderSettings")
            .field("id", &self.id)
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"[REDACTED]")
            .field("claim", &self.claim)
            .field("tenant", &self.tenant)
            .field("match_existing", &self.match_existing)
            .field("auto_provision", &self.auto_provision)
            .finish_non_exhaustive()
    }
}

fn default_scopes() -> Vec<String> {
    vec!["openid".into(), "email".into(), "profile".into()]
}

fn default_claim() -> String {
    "email".into()
}

fn yes() -> bool {
    true
}

fn default_role() -> Role {
    Role::Viewer
}

fn ser_secret<S: serde::Serializer>(_: &Option<SecretString>, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_none()
}

pub fn is_provider_id(id: &str) -> bool {
    let b = id.as_bytes();
    !b.is_empty()
        && b.len() <= 64
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-')
}

impl ProviderSettings {
    /// The secret from `client_secret` or `client_secret_file`.
    pub fn resolve_secret(&self) -> Result<SecretString, String> {
        if let Some(s) = &self.client_secret {
            return Ok(s.clone());
        }
        match &self.client_secret_file {
            Some(path) => std::fs::read_to_string(path)
                .map(|t| SecretString::from(t.trim_end_matches(['\n', '\r']).to_owned()))
                .map_err(|e| format!("cannot read client_secret_file: {e}")),
            None => Err("client_secret (or client_secret_file) is required".into()),
        }
    }
}

/// An upstream URL is https, or http on loopback outside production.
pub fn check_upstream_url(u: &str, production: bool) -> Result<url::Url, String> {
    let url = url::Url::parse(u).map_err(|e| format!("{u} is not a URL: {e}"))?;
    match url.scheme() {
        "https" => Ok(url),
        "http" if !production && url.host_str().is_some_and(crate::config::is_loopback_host) => {
            Ok(url)
        }
        _ => Err(format!(
            "{u} must be https:// (http:// only on loopback, not in production)"
        )),
    }
}

impl FederationSettings {
    pub fn problems(&self, production: bool) -> Vec<ConfigProblem> {
        let mut p = Vec::new();
        let mut bad = |key: String, problem: String| p.push(ConfigProblem { key, problem });
        if !(60..=3600).contains(&self.pending_ttl_s) {
            bad(
                "auth.federation.pending_ttl_s".into(),
                "must be 60 to 3600 seconds".into(),
            );
        }
        if !(1..=120).contains(&self.http_timeout_s) {
            bad(
                "auth.federation.http_timeout_s".into(),
                "must be 1 to 120 seconds".into(),
            );
        }
        for (i, pr) in self.providers.iter().enumerate() {
            let key = format!("auth.federation.providers[{i}]");
            if !is_provider_id(&pr.id) {
                bad(key.clone(), "id must match [a-z0-9][a-z0-9_-]{0,63}".into());
            }
            if self.providers[..i].iter().any(|o| o.id == pr.id) {
                bad(key.clone(), format!("id {} is used twice", pr.id));
            }
            if let Err(e) = check_upstream_url(&pr.issuer, production) {
                bad(format!("{key}.issuer"), e);
            }
            if pr.client_id.is_empty() {
                bad(format!("{key}.client_id"), "is required".into());
            }
            match pr.resolve_secret() {
                Err(e) => bad(format!("{key}.client_secret"), e),
                Ok(s) if s.expose_secret().is_empty() => {
                    bad(format!("{key}.client_secret"), "is empty".into())
                }
                Ok(_) => {}
            }
            if !pr.scopes.iter().any(|s| s == "openid") {
                bad(format!("{key}.scopes"), "must include openid".into());
            }
            if pr.claim.is_empty() {
                bad(format!("{key}.claim"), "is required".into());
            }
            if aurum_domain::TenantId::parse(&pr.tenant).is_err() {
                bad(format!("{key}.tenant"), "is not a tenant id".into());
            }
            if pr.provision_role == Role::Admin {
                bad(
                    format!("{key}.provision_role"),
                    "users created by federation cannot be administrators".into(),
                );
            }
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider() -> ProviderSettings {
        serde_json::from_value(serde_json::json!({
            "id": "keycloak",
            "display_name": "Keycloak",
            "issuer": "https://kc.example.com/realms/acme",
            "client_id": "aurumai",
            "client_secret": "s3cret",
            "tenant": "acme",
        }))
        .unwrap()
    }

    fn keys(s: &FederationSettings, production: bool) -> Vec<String> {
        s.problems(production).into_iter().map(|p| p.key).collect()
    }

    #[test]
    fn defaults_are_email_matching_without_provisioning() {
        let p = provider();
        assert_eq!(p.claim, "email");
        assert!(p.match_existing && !p.auto_provision);
        assert_eq!(p.provision_role, Role::Viewer);
        assert_eq!(p.token_auth, TokenAuth::ClientSecretBasic);
        let s = FederationSettings {
            providers: vec![p],
            ..FederationSettings::default()
        };
        assert!(keys(&s, true).is_empty());
    }

    #[test]
    fn refuses_bad_providers() {
        let mut p = provider();
        p.id = "Bad Id".into();
        p.issuer = "http://kc.example.com".into();
        p.client_secret = None;
        p.scopes = vec!["email".into()];
        p.provision_role = Role::Admin;
        p.tenant = "no tenant".into();
        let s = FederationSettings {
            providers: vec![p, provider(), provider()],
            ..FederationSettings::default()
        };
        let k = keys(&s, false);
        for want in [
            "auth.federation.providers[0]",
            "auth.federation.providers[0].issuer",
            "auth.federation.providers[0].client_secret",
            "auth.federation.providers[0].scopes",
            "auth.federation.providers[0].provision_role",
            "auth.federation.providers[0].tenant",
            "auth.federation.providers[2]",
        ] {
            assert!(k.iter().any(|x| x == want), "{want} missing in {k:?}");
        }
    }

    #[test]
    fn plain_http_issuers_only_on_loopback_outside_production() {
        assert!(check_upstream_url("http://127.0.0.1:8080", false).is_ok());
        assert!(check_upstream_url("http://127.0.0.1:8080", true).is_err());
        assert!(check_upstream_url("http://idp.example.com", false).is_err());
        assert!(check_upstream_url("https://idp.example.com", true).is_ok());
        assert!(is_provider_id("entra-id_2") && !is_provider_id("-x") && !is_provider_id(""));
    }
}
