//! Service-to-service calls: a service obtains its own access token from the auth service
//! (OAuth 2.0 client_credentials, audience-bound) and reuses it until shortly before expiry.

use std::time::{Duration, Instant};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

/// A service client's credentials and the audience it calls.
#[derive(Clone)]
pub struct ClientCredentialsSettings {
    /// The auth service's token endpoint, e.g. `http://auth:8083/token`.
    pub token_url: Url,
    pub client_id: String,
    pub client_secret: SecretString,
    /// The called service, e.g. `aurumai-prediction`.
    pub audience: String,
    pub http_timeout: Duration,
}

impl std::fmt::Debug for ClientCredentialsSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientCredentialsSettings")
            .field("token_url", &self.token_url.as_str())
            .field("client_id", &self.client_id)
            .field("client_secret", &"[redacted]")
            .field("audience", &self.audience)
            .finish()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token endpoint cannot be reached: {0}")]
    Unreachable(String),
    /// The auth service refused the client (wrong secret, audience not allowed): a
    /// configuration problem, not a transient one.
    #[error("the token endpoint refused the client: {status} {error}")]
    Refused { status: u16, error: String },
    #[error("the token endpoint's answer is not a token response: {0}")]
    BadResponse(String),
}

#[derive(Deserialize)]
struct TokenResponse {
    access_token: String,
    #[serde(default)]
    expires_in: Option<u64>,
}

#[derive(Deserialize)]
struct ErrorResponse {
    error: String,
}

struct Cached {
    token: SecretString,
    refresh_at: Instant,
}

/// Fetches and caches one service token. Cheap to share behind an `Arc`.
pub struct ServiceTokens {
    settings: ClientCredentialsSettings,
    http: reqwest::Client,
    cached: tokio::sync::Mutex<Option<Cached>>,
}

impl std::fmt::Debug for ServiceTokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceTokens")
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl ServiceTokens {
    pub fn new(settings: ClientCredentialsSettings) -> Result<Self, TokenError> {
        let http = reqwest::Client::builder()
            .timeout(settings.http_timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| TokenError::Unreachable(format!("http client: {e}")))?;
        Ok(Self {
            settings,
            http,
            cached: tokio::sync::Mutex::new(None),
        })
    }

    /// A valid token, fetched anew when the cached one is within its last fifth of life.
    pub async fn token(&self) -> Result<SecretString, TokenError> {
        let mut cached = self.cached.lock().await;
        if let Some(c) = cached.as_ref().filter(|c| Instant::now() < c.refresh_at) {
            return Ok(c.token.clone());
        }
        let fresh = self.fetch().await?;
        let token = fresh.token.clone();
        *cached = Some(fresh);
        Ok(token)
    }

    /// Drops the cached token (the callee answered 401: the key may have rotated or the token
    /// been revoked).
    pub async fn invalidate(&self) {
        *self.cached.lock().await = None;
    }

    async fn fetch(&self) -> Result<Cached, TokenError> {
        let s = &self.settings;
        let started = Instant::now();
        let response = self
            .http
            .post(s.token_url.clone())
            .basic_auth(&s.client_id, Some(s.client_secret.expose_secret()))
            .form(&[
                ("grant_type", "client_credentials"),
                ("audience", s.audience.as_str()),
            ])
            .send()
            .await
            .map_err(|e| TokenError::Unreachable(e.without_url().to_string()))?;
        let status = response.status();
        let body = response
            .bytes()
            .await
            .map_err(|e| TokenError::Unreachable(e.without_url().to_string()))?;
        if !status.is_success() {
            let error = serde_json::from_slice::<ErrorResponse>(&body)
                .map(|e| e.error)
                .unwrap_or_else(|_| "unknown".into());
            return Err(TokenError::Refused {
                status: status.as_u16(),
                error,
            });
        }
        let parsed: TokenResponse =
            serde_json::from_slice(&body).map_err(|e| TokenError::BadResponse(e.to_string()))?;
        let lifetime = Duration::from_secs(parsed.expires_in.unwrap_or(60).max(1));
        Ok(Cached {
            token: SecretString::from(parsed.access_token),
            refresh_at: started + lifetime.mul_f64(0.8),
        })
    }
}
