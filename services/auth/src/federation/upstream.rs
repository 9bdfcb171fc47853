//! The platform as an OpenID Connect relying party of one upstream provider, with the
//! `openidconnect` crate: discovery (issuer checked), the authorization request (code flow,
//! PKCE S256, state, nonce), the code exchange, ID token verification with the client's ID token
//! verifier (signature against the upstream JWKS, issuer, audience, expiry, nonce) plus the
//! authorized-party rule, and, when the ID token lacks the mapped claim, the userinfo endpoint
//! (its `sub` must be the ID token's).
//!
//! Upstream HTTP requests follow no redirects and time out. Error texts carry no token, code,
//! secret or response body.

use std::time::{Duration, Instant};

use openidconnect::core::{
    CoreAuthDisplay, CoreAuthenticationFlow, CoreClaimName, CoreClaimType, CoreClient,
    CoreClientAuthMethod, CoreGenderClaim, CoreGrantType, CoreJsonWebKey,
    CoreJweContentEncryptionAlgorithm, CoreJweKeyManagementAlgorithm, CoreJwsSigningAlgorithm,
    CoreResponseMode, CoreResponseType, CoreSubjectIdentifierType, CoreTokenType,
};
use openidconnect::{
    AdditionalClaims, AdditionalProviderMetadata, AuthType, AuthorizationCode,
    ClaimsVerificationError, ClientId, ClientSecret, CsrfToken, DiscoveryError, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, HttpClientError, IdToken, IdTokenClaims, IssuerUrl, JsonWebKeySet,
    Nonce, OAuth2TokenResponse, PkceCodeChallenge, PkceCodeVerifier, ProviderMetadata, RedirectUrl,
    RequestTokenError, Scope, SignatureVerificationError, SubjectIdentifier, TokenResponse,
    UserInfoClaims, UserInfoError,
};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::RwLock;

use super::config::{check_upstream_url, ProviderSettings, TokenAuth};

/// Discovery (with the JWKS) is trusted this long before it is fetched again.
const METADATA_TTL: Duration = Duration::from_secs(3600);
/// An unknown signing key refetches the JWKS at most this often.
const JWKS_REFETCH: Duration = Duration::from_secs(30);

/// Asymmetric algorithms only: `none` and HMAC (keyed with the client secret) are refused,
/// whatever the provider advertises.
const ALGORITHMS: [CoreJwsSigningAlgorithm; 8] = [
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha384,
    CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha512,
    CoreJwsSigningAlgorithm::RsaSsaPssSha256,
    CoreJwsSigningAlgorithm::RsaSsaPssSha384,
    CoreJwsSigningAlgorithm::RsaSsaPssSha512,
    CoreJwsSigningAlgorithm::EcdsaP256Sha256,
    CoreJwsSigningAlgorithm::EcdsaP384Sha384,
];

/// The upstream HTTP client (`openidconnect`'s reqwest, built without redirects).
pub type HttpClient = openidconnect::reqwest::Client;
type HttpError = HttpClientError<openidconnect::reqwest::Error>;

/// Why the upstream part of a sign-in failed. For logs only: it never reaches the browser, and
/// carries no token, code or secret.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("discovery: {0}")]
    Discovery(String),
    #[error("JWKS: {0}")]
    Jwks(String),
    #[error("token endpoint: {0}")]
    Exchange(String),
    #[error("ID token: {0}")]
    IdToken(String),
    #[error("userinfo: {0}")]
    UserInfo(String),
}

/// The one discovery field beyond OpenID Connect Discovery the platform reads (RFC 8414).
#[derive(Debug, Clone, Serialize, Deserialize)]
struct PkceMetadata {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    code_challenge_methods_supported: Option<Vec<String>>,
}
impl AdditionalProviderMetadata for PkceMetadata {}

/// `CoreProviderMetadata` plus [`PkceMetadata`].
type Metadata = ProviderMetadata<
    PkceMetadata,
    CoreAuthDisplay,
    CoreClientAuthMethod,
    CoreClaimName,
    CoreClaimType,
    CoreGrantType,
    CoreJweContentEncryptionAlgorithm,
    CoreJweKeyManagementAlgorithm,
    CoreJsonWebKey,
    CoreResponseMode,
    CoreResponseType,
    CoreSubjectIdentifierType,
>;

/// The client `CoreClient::from_provider_metadata` gives: authorization endpoint set, token
/// and userinfo endpoints as discovered.
type Oidc = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// Every claim outside the standard ones, kept for the mapping (any string claim may be
/// configured as `claim`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(transparent)]
struct OtherClaims(Map<String, Value>);
impl AdditionalClaims for OtherClaims {}

type UpstreamIdToken = IdToken<
    OtherClaims,
    CoreGenderClaim,
    CoreJweContentEncryptionAlgorithm,
    CoreJwsSigningAlgorithm,
>;
type UpstreamIdTokenClaims = IdTokenClaims<OtherClaims, CoreGenderClaim>;

#[derive(Debug)]
struct Discovered {
    meta: Metadata,
    fetched: Instant,
    keys_fetched: Instant,
}

/// A verified upstream identity.
#[derive(Debug, Clone)]
pub struct UpstreamIdentity {
    pub subject: String,
    pub claims: Map<String, Value>,
}

impl UpstreamIdentity {
    pub fn string_claim(&self, name: &str) -> Option<&str> {
        self.claims
            .get(name)
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
    }

    /// `email_verified` as a boolean (some providers send the string "true").
    pub fn email_verified(&self) -> bool {
        match self.claims.get("email_verified") {
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) => s == "true",
            _ => false,
        }
    }
}

#[derive(Debug)]
pub struct Upstream {
    pub settings: ProviderSettings,
    secret: SecretString,
    pub redirect_uri: String,
    http: HttpClient,
    leeway_s: u64,
    production: bool,
    cache: RwLock<Option<Discovered>>,
}

/// An error and its causes, one line.
fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// A failed upstream request, without its URL.
fn request_error(e: HttpError) -> String {
    match e {
        HttpClientError::Reqwest(e) => chain(&e.without_url()),
        other => chain(&other),
    }
}

// Parse errors name where the answer differs, never what it holds (it may carry tokens).

fn discovery_error(e: DiscoveryError<HttpError>) -> String {
    match e {
        DiscoveryError::Request(e) => request_error(e),
        DiscoveryError::Parse(e) => format!("not the expected JSON (at `{}`)", e.path()),
        DiscoveryError::Response(status, _, why) => format!("answered {status}: {why}"),
        other => chain(&other),
    }
}

fn token_error(
    e: RequestTokenError<
        HttpError,
        openidconnect::StandardErrorResponse<openidconnect::core::CoreErrorResponseType>,
    >,
) -> String {
    match e {
        RequestTokenError::Request(e) => request_error(e),
        RequestTokenError::Parse(e, _) => format!("not the expected JSON (at `{}`)", e.path()),
        // The OAuth error code is safe to log; the description may echo input, so not it.
        RequestTokenError::ServerResponse(r) => format!(
            "answered {}",
            r.error().to_string().chars().take(64).collect::<String>()
        ),
        RequestTokenError::Other(why) => why,
    }
}

fn userinfo_error(e: UserInfoError<HttpError>) -> String {
    match e {
        UserInfoError::Request(e) => request_error(e),
        UserInfoError::Parse(e) => format!("not the expected JSON (at `{}`)", e.path()),
        UserInfoError::Response(status, _, why) => format!("answered {status}: {why}"),
        UserInfoError::ClaimsVerification(ClaimsVerificationError::InvalidSubject(_)) => {
            "sub differs from the ID token's".into()
        }
        other => chain(&other),
    }
}

/// Claims as JSON (standard, ID token and other claims alike).
fn claims_map<T: Serialize>(claims: &T) -> Result<Map<String, Value>, String> {
    match serde_json::to_value(claims) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err("claims are not a JSON object".into()),
        Err(e) => Err(format!("claims: {e}")),
    }
}

impl Upstream {
    pub fn new(
        settings: ProviderSettings,
        secret: SecretString,
        platform_issuer: &str,
        http: HttpClient,
        leeway_s: u64,
        production: bool,
    ) -> Self {
        let redirect_uri = format!(
            "{}/federation/{}/callback",
            platform_issuer.trim_end_matches('/'),
            settings.id
        );
        Self {
            settings,
            secret,
            redirect_uri,
            http,
            leeway_s,
            production,
            cache: RwLock::new(None),
        }
    }

    fn check_url(&self, what: &str, u: &str) -> Result<(), UpstreamError> {
        check_upstream_url(u, self.production)
            .map(|_| ())
            .map_err(|e| UpstreamError::Discovery(format!("{what}: {e}")))
    }

    async fn discover(&self) -> Result<Discovered, UpstreamError> {
        let issuer = IssuerUrl::new(self.settings.issuer.clone())
            .map_err(|e| UpstreamError::Discovery(format!("issuer: {e}")))?;
        // Fetches the metadata then the JWKS, and refuses metadata whose issuer is not exactly
        // the configured one (OpenID Connect Discovery §4.3).
        let meta = Metadata::discover_async(issuer, &self.http)
            .await
            .map_err(|e| UpstreamError::Discovery(discovery_error(e)))?;
        let token_endpoint = meta
            .token_endpoint()
            .ok_or_else(|| UpstreamError::Discovery("no token_endpoint".into()))?;
        self.check_url(
            "authorization_endpoint",
            meta.authorization_endpoint().as_str(),
        )?;
        self.check_url("token_endpoint", token_endpoint.as_str())?;
        self.check_url("jwks_uri", meta.jwks_uri().as_str())?;
        if let Some(u) = meta.userinfo_endpoint() {
            self.check_url("userinfo_endpoint", u.as_str())?;
        }
        if let Some(methods) = &meta.additional_metadata().code_challenge_methods_supported {
            if !methods.iter().any(|m| m == "S256") {
                return Err(UpstreamError::Discovery(
                    "the provider does not support PKCE S256".into(),
                ));
            }
        }
        let now = Instant::now();
        Ok(Discovered {
            meta,
            fetched: now,
            keys_fetched: now,
        })
    }

    /// The provider's metadata (and JWKS), from cache or discovery.
    async fn metadata(&self) -> Result<Metadata, UpstreamError> {
        if let Some(d) = self.cache.read().await.as_ref() {
            if d.fetched.elapsed() < METADATA_TTL {
                return Ok(d.meta.clone());
            }
        }
        let d = self.discover().await?;
        let meta = d.meta.clone();
        *self.cache.write().await = Some(d);
        Ok(meta)
    }

    /// Refetches the JWKS after an unknown signing key, at most every [`JWKS_REFETCH`]; true
    /// when the keys were refetched.
    async fn refresh_keys(&self) -> Result<bool, UpstreamError> {
        let mut cache = self.cache.write().await;
        let Some(d) = cache.as_mut() else {
            return Ok(false);
        };
        if d.keys_fetched.elapsed() < JWKS_REFETCH {
            return Ok(false);
        }
        let keys = JsonWebKeySet::fetch_async(d.meta.jwks_uri(), &self.http)
            .await
            .map_err(|e| UpstreamError::Jwks(discovery_error(e)))?;
        d.meta = d.meta.clone().set_jwks(keys);
        d.keys_fetched = Instant::now();
        Ok(true)
    }

    /// The relying-party client for this provider.
    fn client(&self, meta: Metadata) -> Result<Oidc, UpstreamError> {
        let redirect = RedirectUrl::new(self.redirect_uri.clone())
            .map_err(|e| UpstreamError::Discovery(format!("redirect URI: {e}")))?;
        let auth_type = match self.settings.token_auth {
            TokenAuth::ClientSecretBasic => AuthType::BasicAuth,
            TokenAuth::ClientSecretPost => AuthType::RequestBody,
        };
        Ok(CoreClient::from_provider_metadata(
            meta,
            ClientId::new(self.settings.client_id.clone()),
            Some(ClientSecret::new(self.secret.expose_secret().to_owned())),
        )
        .set_redirect_uri(redirect)
        .set_auth_type(auth_type))
    }

    /// The upstream authorization URL for a new sign-in (PKCE S256 of `pkce_verifier`).
    pub async fn authorization_url(
        &self,
        state: &str,
        nonce: &str,
        pkce_verifier: &str,
    ) -> Result<url::Url, UpstreamError> {
        let client = self.client(self.metadata().await?)?;
        let challenge = PkceCodeChallenge::from_code_verifier_sha256(&PkceCodeVerifier::new(
            pkce_verifier.to_owned(),
        ));
        let (state, nonce) = (state.to_owned(), nonce.to_owned());
        let (url, _, _) = client
            .authorize_url(
                CoreAuthenticationFlow::AuthorizationCode,
                move || CsrfToken::new(state),
                move || Nonce::new(nonce),
            )
            // `openid` is always requested first.
            .add_scopes(
                self.settings
                    .scopes
                    .iter()
                    .filter(|s| *s != "openid")
                    .map(|s| Scope::new(s.clone())),
            )
            .set_pkce_challenge(challenge)
            .url();
        Ok(url)
    }

    /// The upstream issuer as discovered (for RFC 9207's `iss` response parameter).
    pub fn issuer(&self) -> &str {
        &self.settings.issuer
    }

    /// Redeems the code and verifies the ID token; falls back to userinfo for the mapped claim.
    pub async fn complete(
        &self,
        code: &str,
        pkce_verifier: &str,
        nonce: &str,
    ) -> Result<UpstreamIdentity, UpstreamError> {
        let mut client = self.client(self.metadata().await?)?;
        let tokens = client
            .exchange_code(AuthorizationCode::new(code.to_owned()))
            .map_err(|e| UpstreamError::Exchange(e.to_string()))?
            .set_pkce_verifier(PkceCodeVerifier::new(pkce_verifier.to_owned()))
            .request_async(&self.http)
            .await
            .map_err(|e| UpstreamError::Exchange(token_error(e)))?;
        let id_token: UpstreamIdToken = tokens
            .id_token()
            .ok_or_else(|| UpstreamError::Exchange("no id_token in the answer".into()))?
            .to_string()
            .parse()
            .map_err(|e: serde_json::Error| {
                UpstreamError::IdToken(format!(
                    "not a JWT with ID token claims ({:?})",
                    e.classify()
                ))
            })?;
        let nonce = Nonce::new(nonce.to_owned());
        let claims = match self.verify(&client, &id_token, &nonce) {
            Err(ClaimsVerificationError::SignatureVerification(
                SignatureVerificationError::NoMatchingKey,
            )) if self.refresh_keys().await? => {
                client = self.client(self.metadata().await?)?;
                self.verify(&client, &id_token, &nonce)
            }
            verified => verified,
        }
        .map_err(|e| UpstreamError::IdToken(chain(&e)))?;
        let mut identity = self.identity(claims)?;
        let bearer = *tokens.token_type() == CoreTokenType::Bearer;
        if identity.string_claim(&self.settings.claim).is_none()
            && bearer
            && client.user_info_url().is_some()
        {
            let info: UserInfoClaims<OtherClaims, CoreGenderClaim> = client
                .user_info(
                    tokens.access_token().clone(),
                    // OIDC Core §5.3.2: the userinfo `sub` must be the ID token's.
                    Some(SubjectIdentifier::new(identity.subject.clone())),
                )
                .map_err(|e| UpstreamError::UserInfo(e.to_string()))?
                .request_async(&self.http)
                .await
                .map_err(|e| UpstreamError::UserInfo(userinfo_error(e)))?;
            for (k, v) in claims_map(&info).map_err(UpstreamError::UserInfo)? {
                identity.claims.entry(k).or_insert(v);
            }
        }
        Ok(identity)
    }

    /// The client's ID token verifier: asymmetric algorithms only, the configured clock leeway
    /// on expiry, the stored nonce.
    fn verify<'t>(
        &self,
        client: &Oidc,
        id_token: &'t UpstreamIdToken,
        nonce: &Nonce,
    ) -> Result<&'t UpstreamIdTokenClaims, ClaimsVerificationError> {
        let leeway = chrono::Duration::seconds(i64::try_from(self.leeway_s).unwrap_or(0));
        let verifier = client
            .id_token_verifier()
            .set_allowed_algs(ALGORITHMS)
            // Other audiences are accepted only with an `azp` naming this client (below).
            .set_other_audience_verifier_fn(|_| true)
            .set_time_fn(move || chrono::Utc::now() - leeway);
        id_token.claims(&verifier, nonce)
    }

    /// The identity of verified claims, after the authorized-party rule.
    fn identity(&self, claims: &UpstreamIdTokenClaims) -> Result<UpstreamIdentity, UpstreamError> {
        let bad = |m: &str| UpstreamError::IdToken(m.to_owned());
        // OIDC Core §3.1.3.7: several audiences need an `azp` naming this client.
        match claims.authorized_party() {
            Some(azp) if azp.as_str() != self.settings.client_id => {
                return Err(bad("azp is another client"))
            }
            None if claims.audiences().len() > 1 => {
                return Err(bad("several audiences and no azp"))
            }
            _ => {}
        }
        let subject = claims.subject().as_str();
        if subject.is_empty() || subject.len() > 255 {
            return Err(bad("sub is missing or too long"));
        }
        Ok(UpstreamIdentity {
            subject: subject.to_owned(),
            claims: claims_map(claims).map_err(UpstreamError::IdToken)?,
        })
    }

    /// Discovers the provider now (start-up warm-up; failures are retried on first use).
    pub async fn warm_up(&self) -> Result<(), UpstreamError> {
        self.metadata().await.map(|_| ())
    }
}
