//! [`JwksVerifier`]: RS256 access tokens checked against the issuer's cached JWKS.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use aurum_domain::{Role, TenantId};
use chrono::{DateTime, Utc};
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use serde::Deserialize;
use url::Url;

use crate::bearer::MAX_TOKEN_LEN;
use crate::revocations::RevocationList;
use crate::verified_cache::{VerifiedTokens, MAX_VERIFIED};
use crate::{AuthnError, Principal};

/// How a service verifies tokens.
#[derive(Debug, Clone)]
pub struct VerifierSettings {
    /// The expected `iss`, e.g. `http://127.0.0.1:8083`.
    pub issuer: Url,
    /// Where the signing keys are published; `{issuer}/jwks` by default.
    pub jwks_url: Url,
    /// The token's `aud` must contain one of these.
    pub audiences: Vec<String>,
    /// Clock skew allowed on `exp` and `nbf`, in seconds.
    pub leeway_s: u64,
    /// An unknown `kid` makes the verifier fetch the JWKS again at most this often.
    pub min_refetch_interval: Duration,
    /// Time limit of one JWKS fetch.
    pub http_timeout: Duration,
    /// The issuer's revocation feed; `{issuer}/revocations` by default.
    pub revocations_url: Url,
    /// How often the feed is asked what is new (while requests come).
    pub revocation_poll: Duration,
}

impl VerifierSettings {
    /// Settings with the defaults: JWKS at `{issuer}/jwks`, 30 s leeway, refetch at most every
    /// 10 s, 3 s fetch timeout.
    pub fn new(issuer: Url, audiences: Vec<String>) -> Self {
        let jwks_url = default_jwks_url(&issuer);
        let revocations_url = crate::revocations::default_revocations_url(&issuer);
        Self {
            revocations_url,
            revocation_poll: Duration::from_secs(2),
            issuer,
            jwks_url,
            audiences,
            leeway_s: 30,
            min_refetch_interval: Duration::from_secs(10),
            http_timeout: Duration::from_secs(3),
        }
    }
}

impl VerifierSettings {
    /// Keys from `jwks_url` (e.g. the auth service inside the cluster rather than the public
    /// issuer URL); the revocation feed is read from beside it.
    pub fn with_jwks_url(mut self, jwks_url: Url) -> Self {
        let mut feed = jwks_url.clone();
        let base = jwks_url.path().trim_end_matches('/');
        let base = base.strip_suffix("/jwks").unwrap_or(base);
        feed.set_path(&format!("{base}/revocations"));
        feed.set_query(None);
        self.revocations_url = feed;
        self.jwks_url = jwks_url;
        self
    }
}

/// `{issuer}/jwks`, with or without a trailing slash on the issuer.
pub fn default_jwks_url(issuer: &Url) -> Url {
    let mut url = issuer.clone();
    let path = format!("{}/jwks", issuer.path().trim_end_matches('/'));
    url.set_path(&path);
    url
}

/// Verifies access tokens. Cheap to clone (shared state); verification of a token whose key is
/// cached takes no lock that a fetch holds and makes no network call.
#[derive(Clone)]
pub struct JwksVerifier {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for JwksVerifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwksVerifier")
            .field("issuer", &self.inner.settings.issuer.as_str())
            .field("jwks_url", &self.inner.settings.jwks_url.as_str())
            .field("audiences", &self.inner.settings.audiences)
            .finish()
    }
}

struct Inner {
    settings: VerifierSettings,
    validation: Validation,
    http: reqwest::Client,
    keys: RwLock<HashMap<String, DecodingKey>>,
    fetch: tokio::sync::Mutex<FetchState>,
    verified: VerifiedTokens,
    revoked: RevocationList,
    /// The revocation feed is followed by a task of this verifier's (always, once built
    /// inside a tokio runtime); otherwise `verify` asks it when due.
    follows_in_background: bool,
}

#[derive(Default)]
struct FetchState {
    last_attempt: Option<Instant>,
    last_error: Option<String>,
    fetches: u64,
}

#[derive(Deserialize)]
struct AccessClaims {
    sub: String,
    exp: i64,
    #[serde(default)]
    iat: Option<i64>,
    #[serde(default)]
    sid: Option<String>,
    jti: String,
    client_id: String,
    #[serde(default)]
    scope: Option<String>,
    #[serde(default)]
    tenant: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
    aud: Audience,
}

/// `aud` is a string or an array of strings (RFC 7519 section 4.1.3).
#[derive(Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn into_vec(self) -> Vec<String> {
        match self {
            Audience::One(a) => vec![a],
            Audience::Many(a) => a,
        }
    }
}

#[derive(Deserialize)]
struct JwkSet {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    #[serde(default)]
    kid: Option<String>,
    #[serde(default)]
    alg: Option<String>,
    #[serde(default, rename = "use")]
    use_: Option<String>,
    #[serde(default)]
    n: Option<String>,
    #[serde(default)]
    e: Option<String>,
}

/// A JWKS document larger than this is refused.
const MAX_JWKS_BYTES: usize = 256 * 1024;

impl JwksVerifier {
    pub fn new(settings: VerifierSettings) -> Result<Self, AuthnError> {
        let http = reqwest::Client::builder()
            .timeout(settings.http_timeout)
            .connect_timeout(settings.http_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| AuthnError::JwksUnavailable(format!("http client: {e}")))?;
        let mut validation = Validation::new(Algorithm::RS256);
        validation.algorithms = vec![Algorithm::RS256];
        validation.leeway = settings.leeway_s;
        validation.validate_exp = true;
        validation.validate_nbf = true;
        validation.set_audience(&settings.audiences);
        let issuer = settings.issuer.as_str();
        let trimmed = issuer.trim_end_matches('/');
        validation.set_issuer(&[issuer, trimmed]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        let verified = VerifiedTokens::new(MAX_VERIFIED, settings.leeway_s);
        let revoked =
            RevocationList::new(settings.revocations_url.clone(), settings.revocation_poll);
        let runtime = tokio::runtime::Handle::try_current().ok();
        let poll = settings.revocation_poll;
        let inner = Arc::new(Inner {
            follows_in_background: runtime.is_some(),
            revoked,
            settings,
            validation,
            http,
            keys: RwLock::new(HashMap::new()),
            fetch: tokio::sync::Mutex::new(FetchState::default()),
            verified,
        });
        if let Some(runtime) = runtime {
            runtime.spawn(follow_revocations(Arc::downgrade(&inner), poll));
        }
        Ok(Self { inner })
    }

    pub fn settings(&self) -> &VerifierSettings {
        &self.inner.settings
    }

    /// How many JWKS fetches were attempted so far.
    pub async fn fetch_count(&self) -> u64 {
        self.inner.fetch.lock().await.fetches
    }

    /// Fetches the JWKS now, whatever the refetch interval (startup, readiness probes).
    pub async fn refresh(&self) -> Result<usize, AuthnError> {
        let mut state = self.inner.fetch.lock().await;
        self.fetch_locked(&mut state).await
    }

    /// Verifies a bearer token (the value after `Bearer `).
    pub async fn verify(&self, bearer: &str) -> Result<Principal, AuthnError> {
        if bearer.is_empty() {
            return Err(AuthnError::Missing);
        }
        if bearer.len() > MAX_TOKEN_LEN {
            return Err(AuthnError::Malformed("the token is too long".into()));
        }
        if !self.inner.follows_in_background {
            self.inner.revoked.follow(&self.inner.http).await;
        }
        let principal = self.verify_signed(bearer).await?;
        if self.inner.revoked.revokes(&principal) {
            return Err(AuthnError::Revoked);
        }
        Ok(principal)
    }

    /// Signature, claims and key; revocation is checked by the caller, also on cache hits.
    async fn verify_signed(&self, bearer: &str) -> Result<Principal, AuthnError> {
        if let Some(principal) = self.inner.verified.get(bearer, Utc::now()) {
            return Ok(principal);
        }
        let header = decode_header(bearer)
            .map_err(|e| AuthnError::Malformed(format!("header: {}", describe(e.kind()))))?;
        if header.alg != Algorithm::RS256 {
            return Err(AuthnError::Malformed(format!(
                "algorithm {:?} is not accepted",
                header.alg
            )));
        }
        let typ_ok = header.typ.as_deref().is_some_and(|t| {
            t.eq_ignore_ascii_case("at+jwt") || t.eq_ignore_ascii_case("application/at+jwt")
        });
        if !typ_ok {
            return Err(AuthnError::Malformed(
                "the token is not an access token (typ at+jwt)".into(),
            ));
        }
        let kid = header
            .kid
            .ok_or_else(|| AuthnError::Malformed("the header has no kid".into()))?;

        if let Some(result) = self.verify_with_cached(&kid, bearer) {
            return result;
        }
        self.refetch_for(&kid).await?;
        self.verify_with_cached(&kid, bearer)
            .unwrap_or(Err(AuthnError::UnknownKey))
    }

    fn verify_with_cached(&self, kid: &str, bearer: &str) -> Option<Result<Principal, AuthnError>> {
        let keys = self
            .inner
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let key = keys.get(kid)?;
        let data = decode::<AccessClaims>(bearer, key, &self.inner.validation);
        drop(keys);
        let result = data.map_err(map_error).and_then(|d| principal(d.claims));
        if let Ok(p) = &result {
            self.inner.verified.insert(bearer, p);
        }
        Some(result)
    }

    /// The key `kid` is not cached: fetch the JWKS again unless that was tried less than
    /// `min_refetch_interval` ago. Concurrent callers wait for one fetch.
    async fn refetch_for(&self, kid: &str) -> Result<(), AuthnError> {
        let mut state = self.inner.fetch.lock().await;
        if self.has_key(kid) {
            return Ok(());
        }
        if let Some(at) = state.last_attempt {
            if at.elapsed() < self.inner.settings.min_refetch_interval {
                return match &state.last_error {
                    Some(e) if self.key_count() == 0 => Err(AuthnError::JwksUnavailable(e.clone())),
                    _ => Err(AuthnError::UnknownKey),
                };
            }
        }
        match self.fetch_locked(&mut state).await {
            Ok(_) => Ok(()),
            Err(e) => Err(e),
        }
    }

    fn has_key(&self, kid: &str) -> bool {
        self.inner
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains_key(kid)
    }

    fn key_count(&self) -> usize {
        self.inner
            .keys
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .len()
    }

    async fn fetch_locked(&self, state: &mut FetchState) -> Result<usize, AuthnError> {
        state.last_attempt = Some(Instant::now());
        state.fetches += 1;
        match self.fetch_jwks().await {
            Ok(keys) => {
                let count = keys.len();
                *self
                    .inner
                    .keys
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = keys;
                // Tokens of a key that left the set must be checked (and refused) again.
                self.inner.verified.clear();
                state.last_error = None;
                tracing::debug!(keys = count, "JWKS fetched");
                Ok(count)
            }
            Err(e) => {
                tracing::warn!(error = %e, url = %self.inner.settings.jwks_url, "JWKS fetch failed");
                state.last_error = Some(e.clone());
                Err(AuthnError::JwksUnavailable(e))
            }
        }
    }

    async fn fetch_jwks(&self) -> Result<HashMap<String, DecodingKey>, String> {
        let url = self.inner.settings.jwks_url.clone();
        let body = get_json_bounded(&self.inner.http, url, MAX_JWKS_BYTES, "the JWKS").await?;
        let set: JwkSet = serde_json::from_slice(&body).map_err(|e| format!("JSON: {e}"))?;
        let mut keys = HashMap::new();
        for jwk in set.keys {
            let usable = jwk.kty == "RSA"
                && jwk.alg.as_deref().is_none_or(|a| a == "RS256")
                && jwk.use_.as_deref().is_none_or(|u| u == "sig");
            let (Some(kid), Some(n), Some(e), true) = (jwk.kid, jwk.n, jwk.e, usable) else {
                continue;
            };
            match DecodingKey::from_rsa_components(&n, &e) {
                Ok(key) => {
                    keys.insert(kid, key);
                }
                Err(err) => tracing::warn!(%kid, error = %err, "JWKS key skipped"),
            }
        }
        Ok(keys)
    }
}

fn principal(claims: AccessClaims) -> Result<Principal, AuthnError> {
    let tenant = claims
        .tenant
        .as_deref()
        .map(TenantId::parse)
        .transpose()
        .map_err(|e| AuthnError::Malformed(format!("tenant: {e}")))?;
    let roles = claims
        .roles
        .iter()
        .map(|r| r.parse::<Role>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| AuthnError::Malformed(format!("roles: {e}")))?;
    let expires_at = DateTime::<Utc>::from_timestamp(claims.exp, 0)
        .ok_or_else(|| AuthnError::Malformed("exp is out of range".into()))?;
    if claims.sub.is_empty() {
        return Err(AuthnError::Malformed("sub is empty".into()));
    }
    Ok(Principal {
        subject: claims.sub,
        tenant,
        roles,
        client_id: claims.client_id,
        audiences: claims.aud.into_vec(),
        scopes: claims
            .scope
            .unwrap_or_default()
            .split(' ')
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect(),
        token_id: claims.jti,
        expires_at,
        // A token without `iat` counts as issued at the earliest instant: any subject or
        // session revocation covers it.
        issued_at: claims
            .iat
            .and_then(|t| DateTime::<Utc>::from_timestamp(t, 0))
            .unwrap_or(DateTime::<Utc>::MIN_UTC),
        session: claims.sid,
    })
}

/// Follows the revocation feed every `every` until the last clone of the verifier is gone.
async fn follow_revocations(inner: std::sync::Weak<Inner>, every: Duration) {
    loop {
        let Some(inner) = inner.upgrade() else {
            return;
        };
        inner.revoked.follow(&inner.http).await;
        drop(inner);
        tokio::time::sleep(every).await;
    }
}

/// GETs a JSON document of the issuer, refusing a failed status or a body over `max` bytes
/// (`what` names it in the error).
pub(crate) async fn get_json_bounded(
    http: &reqwest::Client,
    url: Url,
    max: usize,
    what: &str,
) -> Result<Vec<u8>, String> {
    let response = http
        .get(url)
        .header(reqwest::header::ACCEPT, "application/json")
        .send()
        .await
        .map_err(|e| format!("request: {e}"))?;
    if !response.status().is_success() {
        return Err(format!("status {}", response.status()));
    }
    if response.content_length().is_some_and(|n| n as usize > max) {
        return Err(format!("{what} is too large"));
    }
    let body = response.bytes().await.map_err(|e| format!("body: {e}"))?;
    if body.len() > max {
        return Err(format!("{what} is too large"));
    }
    Ok(body.to_vec())
}

fn map_error(e: jsonwebtoken::errors::Error) -> AuthnError {
    match e.kind() {
        ErrorKind::ExpiredSignature => AuthnError::Expired,
        ErrorKind::ImmatureSignature => AuthnError::NotYetValid,
        ErrorKind::InvalidSignature => AuthnError::BadSignature,
        ErrorKind::InvalidAudience => AuthnError::WrongAudience,
        ErrorKind::InvalidIssuer => AuthnError::WrongIssuer,
        other => AuthnError::Malformed(describe(other)),
    }
}

fn describe(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::MissingRequiredClaim(c) => format!("the claim {c} is missing"),
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => {
            "the algorithm is not accepted".into()
        }
        ErrorKind::Json(_) => "the token's JSON does not match the contract".into(),
        ErrorKind::Base64(_) | ErrorKind::Utf8(_) => "the token is not valid base64url".into(),
        ErrorKind::InvalidToken => "the token is not a JWT".into(),
        _ => "the token cannot be read".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_revocation_feed_is_read_beside_a_configured_jwks_url() {
        let s = VerifierSettings::new(Url::parse("https://gw.example/auth").unwrap(), vec![])
            .with_jwks_url(Url::parse("http://auth:8083/jwks").unwrap());
        assert_eq!(s.revocations_url.as_str(), "http://auth:8083/revocations");
        let d = VerifierSettings::new(Url::parse("https://gw.example/auth").unwrap(), vec![]);
        assert_eq!(
            d.revocations_url.as_str(),
            "https://gw.example/auth/revocations"
        );
    }

    #[test]
    fn jwks_url_defaults_below_the_issuer() {
        let a = default_jwks_url(&Url::parse("http://127.0.0.1:8083").unwrap());
        assert_eq!(a.as_str(), "http://127.0.0.1:8083/jwks");
        let b = default_jwks_url(&Url::parse("https://id.example/realm/").unwrap());
        assert_eq!(b.as_str(), "https://id.example/realm/jwks");
    }
}
