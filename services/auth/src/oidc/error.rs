//! OAuth 2.0 error responses (RFC 6749 §5.2): JSON `{error, error_description}`, never cached.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct OAuthError {
    pub error: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
    #[serde(skip)]
    pub status: u16,
    /// `WWW-Authenticate` for 401s.
    #[serde(skip)]
    pub challenge: Option<String>,
}

impl OAuthError {
    pub fn new(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Self {
            error,
            error_description: Some(description.into()),
            status: status.as_u16(),
            challenge: None,
        }
    }

    pub fn invalid_request(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_request", d)
    }

    pub fn invalid_grant(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_grant", d)
    }

    pub fn invalid_scope(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_scope", d)
    }

    pub fn invalid_target(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "invalid_target", d)
    }

    pub fn unauthorized_client(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unauthorized_client", d)
    }

    pub fn unsupported_grant_type(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unsupported_grant_type", d)
    }

    pub fn unsupported_token_type(d: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "unsupported_token_type", d)
    }

    /// 401 with a Basic challenge (RFC 6749 §5.2).
    pub fn invalid_client(d: impl Into<String>) -> Self {
        let mut e = Self::new(StatusCode::UNAUTHORIZED, "invalid_client", d);
        e.challenge = Some(r#"Basic realm="aurum-auth", charset="UTF-8""#.into());
        e
    }

    /// 401 for a bad Bearer token (RFC 6750 §3).
    pub fn invalid_token(d: impl Into<String>) -> Self {
        let d = d.into();
        let mut e = Self::new(StatusCode::UNAUTHORIZED, "invalid_token", d.clone());
        e.challenge = Some(format!(
            r#"Bearer realm="aurum-auth", error="invalid_token", error_description="{}""#,
            d.replace('"', "'")
        ));
        e
    }

    pub fn server_error() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "server_error",
            "the server failed to handle the request",
        )
    }

    pub fn temporarily_unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "a dependency is unavailable; retry later",
        )
    }

    /// Too many password checks at once (see `hash_gate`): 503, retry shortly.
    pub fn busy() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "temporarily_unavailable",
            "too many sign-ins at once; retry shortly",
        )
    }

    /// A storage failure: the cause is logged, never sent.
    pub fn store(e: &aurum_ports::StoreError) -> Self {
        tracing::error!(error = %e, "storage failed");
        if e.is_transient() {
            Self::temporarily_unavailable()
        } else {
            Self::server_error()
        }
    }
}

impl std::fmt::Display for OAuthError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.error)
    }
}

impl ResponseError for OAuthError {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::BAD_REQUEST)
    }

    fn error_response(&self) -> HttpResponse {
        let mut r = HttpResponse::build(self.status_code());
        r.insert_header(("Cache-Control", "no-store"))
            .insert_header(("Pragma", "no-cache"));
        if let Some(c) = &self.challenge {
            r.insert_header(("WWW-Authenticate", c.as_str()));
        }
        r.json(self)
    }
}
