//! The platform as an OpenID Connect relying party of one upstream provider: discovery, the
//! authorization request (code flow, PKCE S256, state, nonce), the code exchange, ID token
//! verification against the upstream JWKS (signature, issuer, audience, authorized party,
//! nonce, expiry) and, when the ID token lacks the mapped claim, the userinfo endpoint.
//!
//! Signatures are checked with `jsonwebtoken` (aws-lc backend). Upstream HTTP requests follow
//! no redirects and time out.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::sync::RwLock;

use super::config::{check_upstream_url, ProviderSettings, TokenAuth};

/// Discovery is trusted this long before it is fetched again.
const METADATA_TTL: Duration = Duration::from_secs(3600);
/// An unknown `kid` refetches the JWKS at most this often.
const JWKS_REFETCH: Duration = Duration::from_secs(30);
/// Largest upstream answer read.
const MAX_BODY: usize = 256 * 1024;

/// Asymmetric algorithms only: `none` and HMAC (keyed with the client secret) are refused.
const ALGORITHMS: [Algorithm; 8] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
];

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

#[derive(Debug, Clone, Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
    #[serde(default)]
    userinfo_endpoint: Option<String>,
    #[serde(default)]
    code_challenge_methods_supported: Option<Vec<String>>,
}

#[derive(Debug)]
struct Discovered {
    meta: Metadata,
    keys: Vec<Jwk>,
    fetched: Instant,
    keys_fetched: Instant,
}

/// What the token endpoint answered (the tokens stay in memory for this request only).
#[derive(Deserialize)]
struct TokenResponse {
    #[serde(default)]
    id_token: Option<String>,
    #[serde(default)]
    access_token: Option<String>,
    #[serde(default)]
    token_type: Option<String>,
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
    http: reqwest::Client,
    leeway_s: u64,
    production: bool,
    cache: RwLock<Option<Discovered>>,
}

/// Reads a JSON answer of at most [`MAX_BODY`] bytes.
async fn read_json<T: serde::de::DeserializeOwned>(
    r: reqwest::Response,
) -> Result<(reqwest::StatusCode, T), String> {
    let status = r.status();
    if r.content_length().is_some_and(|n| n > MAX_BODY as u64) {
        return Err(format!("answer too large ({status})"));
    }
    let body = r.bytes().await.map_err(|e| e.without_url().to_string())?;
    if body.len() > MAX_BODY {
        return Err(format!("answer too large ({status})"));
    }
    serde_json::from_slice(&body)
        .map(|v| (status, v))
        .map_err(|e| format!("{status}, not the expected JSON: {e}"))
}

fn form_encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

impl Upstream {
    pub fn new(
        settings: ProviderSettings,
        secret: SecretString,
        platform_issuer: &str,
        http: reqwest::Client,
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

    fn check_url(&self, what: &str, u: &str) -> Result<(), String> {
        check_upstream_url(u, self.production)
            .map(|_| ())
            .map_err(|e| format!("{what}: {e}"))
    }

    async fn fetch_keys(&self, jwks_uri: &str) -> Result<Vec<Jwk>, UpstreamError> {
        let r = self
            .http
            .get(jwks_uri)
            .send()
            .await
            .map_err(|e| UpstreamError::Jwks(e.without_url().to_string()))?;
        let (status, set): (_, Value) = read_json(r).await.map_err(UpstreamError::Jwks)?;
        if !status.is_success() {
            return Err(UpstreamError::Jwks(format!("answered {status}")));
        }
        // Keys this verifier cannot use (encryption keys, unknown types) are skipped, not fatal.
        let keys: Vec<Jwk> = set
            .get("keys")
            .and_then(Value::as_array)
            .map(|ks| {
                ks.iter()
                    .filter(|k| k.get("use").and_then(Value::as_str) != Some("enc"))
                    .filter_map(|k| serde_json::from_value(k.clone()).ok())
                    .collect()
            })
            .unwrap_or_default();
        if keys.is_empty() {
            return Err(UpstreamError::Jwks("no usable signing key".into()));
        }
        Ok(keys)
    }

    async fn discover(&self) -> Result<Discovered, UpstreamError> {
        let issuer = self.settings.issuer.trim_end_matches('/');
        let url = format!("{issuer}/.well-known/openid-configuration");
        let r = self
            .http
            .get(&url)
            .send()
            .await
            .map_err(|e| UpstreamError::Discovery(e.without_url().to_string()))?;
        let (status, meta): (_, Metadata) = read_json(r).await.map_err(UpstreamError::Discovery)?;
        if !status.is_success() {
            return Err(UpstreamError::Discovery(format!("answered {status}")));
        }
        // OpenID Connect Discovery §4.3: the issuer must be exactly the one configured.
        if meta.issuer != self.settings.issuer {
            return Err(UpstreamError::Discovery(format!(
                "issuer {} is not the configured {}",
                meta.issuer, self.settings.issuer
            )));
        }
        for (what, u) in [
            ("authorization_endpoint", &meta.authorization_endpoint),
            ("token_endpoint", &meta.token_endpoint),
            ("jwks_uri", &meta.jwks_uri),
        ]
        .into_iter()
        .chain(
            meta.userinfo_endpoint
                .iter()
                .map(|u| ("userinfo_endpoint", u)),
        ) {
            self.check_url(what, u).map_err(UpstreamError::Discovery)?;
        }
        if let Some(methods) = &meta.code_challenge_methods_supported {
            if !methods.iter().any(|m| m == "S256") {
                return Err(UpstreamError::Discovery(
                    "the provider does not support PKCE S256".into(),
                ));
            }
        }
        let keys = self.fetch_keys(&meta.jwks_uri).await?;
        let now = Instant::now();
        Ok(Discovered {
            meta,
            keys,
            fetched: now,
            keys_fetched: now,
        })
    }

    /// The provider's metadata, from cache or discovery.
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

    /// The upstream authorization URL for a new sign-in.
    pub async fn authorization_url(
        &self,
        state: &str,
        nonce: &str,
        code_challenge: &str,
    ) -> Result<url::Url, UpstreamError> {
        let meta = self.metadata().await?;
        let mut url = url::Url::parse(&meta.authorization_endpoint)
            .map_err(|e| UpstreamError::Discovery(format!("authorization_endpoint: {e}")))?;
        url.query_pairs_mut()
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.settings.client_id)
            .append_pair("redirect_uri", &self.redirect_uri)
            .append_pair("scope", &self.settings.scopes.join(" "))
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", code_challenge)
            .append_pair("code_challenge_method", "S256");
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
        let meta = self.metadata().await?;
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", self.redirect_uri.as_str()),
            ("code_verifier", pkce_verifier),
        ];
        let mut req = self.http.post(&meta.token_endpoint);
        match self.settings.token_auth {
            TokenAuth::ClientSecretBasic => {
                // RFC 6749 §2.3.1: both parts form-encoded before base64.
                let pair = format!(
                    "{}:{}",
                    form_encode(&self.settings.client_id),
                    form_encode(self.secret.expose_secret())
                );
                req = req.header(
                    reqwest::header::AUTHORIZATION,
                    format!("Basic {}", STANDARD.encode(pair)),
                );
            }
            TokenAuth::ClientSecretPost => {
                form.push(("client_id", self.settings.client_id.as_str()));
                form.push(("client_secret", self.secret.expose_secret()));
            }
        }
        let r = req
            .header(reqwest::header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await
            .map_err(|e| UpstreamError::Exchange(e.without_url().to_string()))?;
        let (status, body): (_, Value) = read_json(r).await.map_err(UpstreamError::Exchange)?;
        if !status.is_success() {
            // The OAuth error code is safe to log; the description may echo input, so not it.
            let error = body.get("error").and_then(Value::as_str).unwrap_or("?");
            return Err(UpstreamError::Exchange(format!(
                "answered {status} ({})",
                error.chars().take(64).collect::<String>()
            )));
        }
        let tokens: TokenResponse = serde_json::from_value(body)
            .map_err(|e| UpstreamError::Exchange(format!("unexpected answer: {e}")))?;
        let id_token = tokens
            .id_token
            .ok_or_else(|| UpstreamError::Exchange("no id_token in the answer".into()))?;
        let mut identity = self.verify_id_token(&id_token, nonce).await?;
        if identity.string_claim(&self.settings.claim).is_none() {
            if let (Some(endpoint), Some(access)) = (&meta.userinfo_endpoint, &tokens.access_token)
            {
                if tokens
                    .token_type
                    .as_deref()
                    .is_none_or(|t| t.eq_ignore_ascii_case("bearer"))
                {
                    self.merge_userinfo(endpoint, access, &mut identity).await?;
                }
            }
        }
        Ok(identity)
    }

    async fn merge_userinfo(
        &self,
        endpoint: &str,
        access_token: &str,
        identity: &mut UpstreamIdentity,
    ) -> Result<(), UpstreamError> {
        let r = self
            .http
            .get(endpoint)
            .bearer_auth(access_token)
            .header(reqwest::header::ACCEPT, "application/json")
            .send()
            .await
            .map_err(|e| UpstreamError::UserInfo(e.without_url().to_string()))?;
        let (status, info): (_, Map<String, Value>) =
            read_json(r).await.map_err(UpstreamError::UserInfo)?;
        if !status.is_success() {
            return Err(UpstreamError::UserInfo(format!("answered {status}")));
        }
        // OIDC Core §5.3.2: the userinfo `sub` must be the ID token's.
        if info.get("sub").and_then(Value::as_str) != Some(identity.subject.as_str()) {
            return Err(UpstreamError::UserInfo(
                "sub differs from the ID token's".into(),
            ));
        }
        for (k, v) in info {
            identity.claims.entry(k).or_insert(v);
        }
        Ok(())
    }

    /// The signing key for `kid` (refetching the JWKS once when the key is unknown).
    async fn key_for(&self, kid: Option<&str>, alg: Algorithm) -> Result<Jwk, UpstreamError> {
        let pick = |keys: &[Jwk]| -> Option<Jwk> {
            let usable = keys.iter().filter(|k| {
                k.common
                    .key_algorithm
                    .is_none_or(|ka| format!("{ka:?}") == format!("{alg:?}"))
            });
            match kid {
                Some(kid) => usable
                    .into_iter()
                    .find(|k| k.common.key_id.as_deref() == Some(kid))
                    .cloned(),
                None => {
                    let all: Vec<&Jwk> = usable.collect();
                    (all.len() == 1).then(|| all[0].clone())
                }
            }
        };
        {
            let cache = self.cache.read().await;
            let d = cache
                .as_ref()
                .ok_or_else(|| UpstreamError::Jwks("provider not discovered".into()))?;
            if let Some(k) = pick(&d.keys) {
                return Ok(k);
            }
            if d.keys_fetched.elapsed() < JWKS_REFETCH {
                return Err(UpstreamError::IdToken("unknown signing key".into()));
            }
        }
        let mut cache = self.cache.write().await;
        let d = cache
            .as_mut()
            .ok_or_else(|| UpstreamError::Jwks("provider not discovered".into()))?;
        d.keys = self.fetch_keys(&d.meta.jwks_uri).await?;
        d.keys_fetched = Instant::now();
        pick(&d.keys).ok_or_else(|| UpstreamError::IdToken("unknown signing key".into()))
    }

    async fn verify_id_token(
        &self,
        token: &str,
        nonce: &str,
    ) -> Result<UpstreamIdentity, UpstreamError> {
        let bad = |m: String| UpstreamError::IdToken(m);
        let header = jsonwebtoken::decode_header(token).map_err(|e| bad(e.to_string()))?;
        if !ALGORITHMS.contains(&header.alg) {
            return Err(bad(format!("algorithm {:?} is not accepted", header.alg)));
        }
        let jwk = self.key_for(header.kid.as_deref(), header.alg).await?;
        let key = DecodingKey::from_jwk(&jwk).map_err(|e| bad(format!("signing key: {e}")))?;
        let mut v = Validation::new(header.alg);
        v.set_issuer(&[&self.settings.issuer]);
        v.set_audience(&[&self.settings.client_id]);
        v.set_required_spec_claims(&["exp", "iat", "iss", "aud", "sub"]);
        v.leeway = self.leeway_s;
        let data = jsonwebtoken::decode::<Map<String, Value>>(token, &key, &v)
            .map_err(|e| bad(e.to_string()))?;
        let claims = data.claims;
        // OIDC Core §3.1.3.7: several audiences need an `azp` naming this client.
        let several = claims
            .get("aud")
            .and_then(Value::as_array)
            .is_some_and(|a| a.len() > 1);
        match claims.get("azp").and_then(Value::as_str) {
            Some(azp) if azp != self.settings.client_id => {
                return Err(bad("azp is another client".into()))
            }
            None if several => return Err(bad("several audiences and no azp".into())),
            _ => {}
        }
        let got = claims.get("nonce").and_then(Value::as_str).unwrap_or("");
        if !crate::crypto::constant_time_eq(got.as_bytes(), nonce.as_bytes()) {
            return Err(bad("nonce mismatch".into()));
        }
        let subject = claims
            .get("sub")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty() && s.len() <= 255)
            .ok_or_else(|| bad("sub is missing or too long".into()))?
            .to_owned();
        Ok(UpstreamIdentity { subject, claims })
    }

    /// Discovers the provider now (start-up warm-up; failures are retried on first use).
    pub async fn warm_up(&self) -> Result<(), UpstreamError> {
        self.metadata().await.map(|_| ())
    }
}
