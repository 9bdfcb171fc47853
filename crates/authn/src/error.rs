//! Why a token was refused.

use actix_web::http::header::{HeaderValue, WWW_AUTHENTICATE};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use aurum_http::{Problem, RequestId};

/// A refused access token. Every variant except [`AuthnError::JwksUnavailable`] is the
/// caller's fault (401 with `WWW-Authenticate: Bearer error="invalid_token"`, or without the
/// error for a missing token); an unreachable issuer is 503.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthnError {
    #[error("no bearer token")]
    Missing,
    #[error("malformed token: {0}")]
    Malformed(String),
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token's signature does not verify")]
    BadSignature,
    #[error("the token names an unknown signing key")]
    UnknownKey,
    #[error("the token is not meant for this audience")]
    WrongAudience,
    #[error("the token comes from another issuer")]
    WrongIssuer,
    #[error("the issuer's signing keys cannot be fetched: {0}")]
    JwksUnavailable(String),
    #[error("the token has been revoked")]
    Revoked,
}

impl AuthnError {
    pub fn status(&self) -> StatusCode {
        match self {
            AuthnError::JwksUnavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            _ => StatusCode::UNAUTHORIZED,
        }
    }

    /// The `WWW-Authenticate` challenge (RFC 6750 section 3), if the answer carries one.
    pub fn www_authenticate(&self) -> Option<&'static str> {
        match self {
            AuthnError::JwksUnavailable(_) => None,
            AuthnError::Missing => Some("Bearer"),
            _ => Some("Bearer error=\"invalid_token\""),
        }
    }

    /// A short stable label (metrics, logs).
    pub fn label(&self) -> &'static str {
        match self {
            AuthnError::Missing => "missing",
            AuthnError::Malformed(_) => "malformed",
            AuthnError::Expired => "expired",
            AuthnError::NotYetValid => "not_yet_valid",
            AuthnError::BadSignature => "bad_signature",
            AuthnError::UnknownKey => "unknown_key",
            AuthnError::WrongAudience => "wrong_audience",
            AuthnError::WrongIssuer => "wrong_issuer",
            AuthnError::JwksUnavailable(_) => "jwks_unavailable",
            AuthnError::Revoked => "revoked",
        }
    }

    /// The problem+json body: the detail says what is wrong with the token, never its content.
    pub fn problem(&self) -> Problem {
        match self {
            AuthnError::JwksUnavailable(_) => Problem::unavailable(),
            AuthnError::Missing => Problem::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "Authentication is required",
            )
            .detail("send an access token in the Authorization: Bearer header"),
            other => Problem::new(
                StatusCode::UNAUTHORIZED,
                "invalid-token",
                "The access token is not valid",
            )
            .detail(other.to_string()),
        }
    }
}

impl ResponseError for AuthnError {
    fn status_code(&self) -> StatusCode {
        self.status()
    }

    fn error_response(&self) -> HttpResponse {
        let mut problem = self.problem();
        problem.request_id = RequestId::current().map(|r| r.to_string());
        let mut response = HttpResponse::build(self.status())
            .content_type("application/problem+json")
            .json(problem);
        if let Some(challenge) = self.www_authenticate() {
            response
                .headers_mut()
                .insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
        }
        response
    }
}
