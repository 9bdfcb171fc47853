//! Federation: users sign in to the platform with an upstream OpenID Connect provider
//! (Keycloak, Entra ID, Google, ...), configured under `auth.federation.providers`.
//!
//! The login page links to `GET /authorize/federation/{provider}?request=<signed login form>`,
//! which checks the form and the browser's CSRF cookie like a password sign-in does, stores
//! the pending upstream sign-in server-side (keyed by the SHA-256 of a random `state`, bound
//! to this browser by the SHA-256 of a random HttpOnly SameSite=Lax cookie, single use,
//! expiring in minutes) and sends the browser upstream (code flow, PKCE S256, nonce). The
//! callback `GET /federation/{provider}/callback` takes the pending sign-in, redeems the code,
//! verifies the ID token, maps the upstream identity to a platform user and resumes the
//! platform's own authorization request: the platform's code goes to the client's
//! redirect URI exactly as after a password sign-in.
//!
//! Mapping: a stored link (provider, upstream subject) -> user; else, when `match_existing`,
//! the tenant's user named by the configured claim (a verified email, or a username); else,
//! when `auto_provision`, a new user of the tenant with `provision_role`; else refused.

pub mod config;
pub mod routes;
pub mod upstream;

use std::sync::Arc;
use std::time::Duration;

use aurum_domain::TenantId;
use aurum_ports::auth::{CreateOutcome, FederationStore, NewUser, UserRecord, UserStore};
use aurum_ports::StoreError;
use uuid::Uuid;

pub use config::{FederationSettings, ProviderSettings};
pub use upstream::{Upstream, UpstreamError, UpstreamIdentity};

use crate::crypto;

#[derive(Debug, thiserror::Error)]
pub enum FederationSetupError {
    #[error("auth.federation.providers: {id}: {problem}")]
    Provider { id: String, problem: String },
    #[error("cannot build the upstream HTTP client: {0}")]
    Http(String),
}

/// Why an upstream identity found no platform user.
#[derive(Debug, thiserror::Error)]
pub enum MappingError {
    #[error("no platform user for this identity")]
    Unmapped,
    #[error("the mapped claim {0} is missing")]
    MissingClaim(String),
    #[error("the upstream email is not verified")]
    UnverifiedEmail,
    #[error("the platform user is disabled or belongs to another tenant")]
    UserUnusable,
    #[error("cannot create a user: {0}")]
    Provision(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How an identity was mapped (for the security event).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mapped {
    Linked,
    Matched,
    Provisioned,
}

/// The configured providers and their store.
#[derive(Debug, Clone)]
pub struct Federation {
    providers: Vec<Arc<Upstream>>,
    pub store: Arc<dyn FederationStore>,
    pub pending_ttl_s: u64,
}

impl Federation {
    pub fn new(
        settings: &FederationSettings,
        platform_issuer: &str,
        leeway_s: u64,
        production: bool,
        store: Arc<dyn FederationStore>,
    ) -> Result<Self, FederationSetupError> {
        // openidconnect's own reqwest; redirects off (the library requires it: SSRF).
        let http = openidconnect::reqwest::Client::builder()
            .redirect(openidconnect::reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(settings.http_timeout_s))
            .user_agent("aurumai-auth")
            .build()
            .map_err(|e| FederationSetupError::Http(e.to_string()))?;
        let mut providers = Vec::new();
        for p in &settings.providers {
            let secret = p
                .resolve_secret()
                .map_err(|problem| FederationSetupError::Provider {
                    id: p.id.clone(),
                    problem,
                })?;
            providers.push(Arc::new(Upstream::new(
                p.clone(),
                secret,
                platform_issuer,
                http.clone(),
                leeway_s,
                production,
            )));
        }
        Ok(Self {
            providers,
            store,
            pending_ttl_s: settings.pending_ttl_s,
        })
    }

    pub fn provider(&self, id: &str) -> Option<&Arc<Upstream>> {
        self.providers.iter().find(|p| p.settings.id == id)
    }

    pub fn providers(&self) -> impl Iterator<Item = &Arc<Upstream>> {
        self.providers.iter()
    }

    /// The login page's "Log in with ..." links for a signed login form (HTML); `base` is
    /// where `GET /authorize/federation` is public (below the issuer's path).
    pub fn login_links(&self, base: &str, form: &str) -> String {
        if self.providers.is_empty() {
            return String::new();
        }
        let request: String = url::form_urlencoded::byte_serialize(form.as_bytes()).collect();
        let mut html = String::from("<div class=\"federation\"><p>or</p>\n");
        for p in &self.providers {
            html.push_str(&format!(
                "<a class=\"federation-provider\" href=\"{base}/{id}?request={request}\">Log in with {name}</a>\n",
                base = crate::oidc::authorize::escape(base),
                id = crate::oidc::authorize::escape(&p.settings.id),
                request = crate::oidc::authorize::escape(&request),
                name = crate::oidc::authorize::escape(&p.settings.display_name),
            ));
        }
        html.push_str("</div>\n");
        html
    }

    /// Finds (or links, or creates) the platform user for a verified upstream identity.
    pub async fn map_identity(
        &self,
        users: &dyn UserStore,
        upstream: &Upstream,
        identity: &UpstreamIdentity,
    ) -> Result<(UserRecord, Mapped), MappingError> {
        let s = &upstream.settings;
        let tenant =
            TenantId::parse(&s.tenant).map_err(|e| MappingError::Provision(e.to_string()))?;
        let usable = |u: Option<UserRecord>| {
            u.filter(|u| u.tenant == tenant && !u.disabled && u.anonymised_at.is_none())
                .ok_or(MappingError::UserUnusable)
        };
        if let Some(id) = self.store.linked_user(&s.id, &identity.subject).await? {
            return Ok((usable(users.user(id).await?)?, Mapped::Linked));
        }
        let value = identity
            .string_claim(&s.claim)
            .ok_or_else(|| MappingError::MissingClaim(s.claim.clone()))?
            .to_owned();
        let by_email = s.claim == "email";
        if by_email && !identity.email_verified() {
            return Err(MappingError::UnverifiedEmail);
        }
        if s.match_existing {
            let found = if by_email {
                match self.store.user_by_email(&tenant, &value).await? {
                    Some(id) => users.user(id).await?,
                    None => None,
                }
            } else {
                users.user_by_username(&value).await?
            };
            if let Some(user) = found {
                let user = usable(Some(user))?;
                self.store.link(&s.id, &identity.subject, user.id).await?;
                return Ok((user, Mapped::Matched));
            }
        }
        if !s.auto_provision {
            return Err(MappingError::Unmapped);
        }
        let user = self
            .provision(users, upstream, identity, &tenant, &value)
            .await?;
        self.store.link(&s.id, &identity.subject, user.id).await?;
        Ok((user, Mapped::Provisioned))
    }

    async fn provision(
        &self,
        users: &dyn UserStore,
        upstream: &Upstream,
        identity: &UpstreamIdentity,
        tenant: &TenantId,
        value: &str,
    ) -> Result<UserRecord, MappingError> {
        let s = &upstream.settings;
        // No password sign-in for this user: the hash is of a random secret nobody knows.
        let unusable = crypto::random_token();
        let password_hash = tokio::task::spawn_blocking(move || crypto::hash_secret(&unusable))
            .await
            .map_err(|e| MappingError::Provision(e.to_string()))?
            .map_err(|e| MappingError::Provision(e.to_string()))?;
        let email = identity
            .email_verified()
            .then(|| identity.string_claim("email").map(str::to_owned))
            .flatten();
        let display_name = identity
            .string_claim("name")
            .map(|n| n.chars().take(200).collect());
        // The claim's value as username when it is free and valid; else one derived from the
        // provider and subject, unique by construction.
        let fallback = format!("{}-{}", s.id, &crypto::sha256_hex(&identity.subject)[..16]);
        let mut candidates = vec![fallback];
        if crate::users::check_username(value).is_ok() {
            candidates.insert(0, value.to_owned());
        }
        for username in candidates {
            let user = NewUser {
                id: Uuid::new_v4(),
                tenant: tenant.clone(),
                username,
                display_name: display_name.clone(),
                email: email.clone(),
                password_hash: password_hash.clone(),
                roles: vec![s.provision_role],
            };
            match users.create_user(&user).await? {
                CreateOutcome::Created => {
                    return users
                        .user(user.id)
                        .await?
                        .ok_or_else(|| MappingError::Provision("created user not found".into()))
                }
                CreateOutcome::Taken => continue,
            }
        }
        Err(MappingError::Provision("no free username".into()))
    }
}
