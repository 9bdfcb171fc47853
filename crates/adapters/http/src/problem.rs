//! `application/problem+json` (RFC 9457) errors with a stable `type` and the request id.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;

use crate::request_id::RequestId;

/// A problem response. `kind` becomes the stable `type` URI (`urn:aurumai:problem:{kind}`);
/// `detail` must never carry secrets or driver error text.
#[derive(Debug, Clone, Serialize)]
pub struct Problem {
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// For a 422 of a request body: each field that is wrong (`metrics[2].unit`) and why.
    /// (A boxed slice keeps `Problem`, every handler's error type, small.)
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub errors: Box<[aurum_domain::FieldError]>,
}

impl Problem {
    pub fn new(status: StatusCode, kind: &str, title: &str) -> Self {
        Self {
            kind: format!("urn:aurumai:problem:{kind}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail: None,
            request_id: None,
            errors: Box::default(),
        }
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    /// 422 for a request body with wrong fields: each in `errors`, all of them in `detail`.
    pub fn invalid_fields(errors: Vec<aurum_domain::FieldError>) -> Self {
        let detail = errors
            .iter()
            .map(|e| format!("{}: {}", e.field, e.message))
            .collect::<Vec<_>>()
            .join("; ");
        let mut p = Self::unprocessable(detail);
        p.errors = errors.into_boxed_slice();
        p
    }

    pub fn bad_request(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::BAD_REQUEST,
            "invalid-request",
            "The request is invalid",
        )
        .detail(detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not-found", "Not found").detail(detail)
    }

    pub fn conflict(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::CONFLICT, "conflict", "Conflict").detail(detail)
    }

    /// Well-formed, but not something the service can process (RFC 9110 422).
    pub fn unprocessable(detail: impl Into<String>) -> Self {
        Self::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "unprocessable",
            "The request cannot be processed",
        )
        .detail(detail)
    }

    /// A dependency is down. The cause is logged by the caller, never sent.
    pub fn unavailable() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "A dependency of the service is unavailable; retry later",
        )
    }

    pub fn internal() -> Self {
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "The service failed to handle the request",
        )
    }

    /// A storage failure as every service answers it: 503 when the store is unreachable
    /// (retry later), 500 when it refused. The cause is logged with what was being done,
    /// never sent.
    pub fn store(e: &aurum_ports::StoreError, doing: &str) -> Self {
        tracing::error!(error = %e, doing, "storage failed");
        if e.is_transient() {
            Self::unavailable()
        } else {
            Self::internal()
        }
    }
}

impl std::fmt::Display for Problem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} {}", self.status, self.title)
    }
}

impl ResponseError for Problem {
    fn status_code(&self) -> StatusCode {
        StatusCode::from_u16(self.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
    }

    fn error_response(&self) -> HttpResponse {
        let mut body = self.clone();
        if body.request_id.is_none() {
            body.request_id = RequestId::current().map(|r| r.to_string());
        }
        HttpResponse::build(self.status_code())
            .content_type("application/problem+json")
            .json(body)
    }
}

/// JSON bodies: limit and problem responses for malformed or oversized bodies.
pub fn json_config(limit: usize) -> actix_web::web::JsonConfig {
    actix_web::web::JsonConfig::default()
        .limit(limit)
        .error_handler(move |err, _req: &HttpRequest| {
            use actix_web::error::JsonPayloadError as J;
            let problem = match &err {
                J::Overflow { .. } | J::OverflowKnownLength { .. } => too_large(limit),
                J::ContentType => Problem::new(
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    "unsupported-media-type",
                    "Content-Type must be application/json",
                ),
                other => Problem::bad_request(other.to_string()),
            };
            problem.into()
        })
}

/// Raw bodies (`web::Bytes`): the same limit. Handlers that want a problem+json 413 read the
/// body with [`read_body`] instead.
pub fn payload_config(limit: usize) -> actix_web::web::PayloadConfig {
    actix_web::web::PayloadConfig::new(limit)
}

/// Reads a raw body of at most `limit` bytes; a larger one is refused with 413 problem+json
/// as soon as it is known to be too large (from Content-Length, or while streaming).
pub async fn read_body(
    req: &HttpRequest,
    mut payload: actix_web::web::Payload,
    limit: usize,
) -> Result<actix_web::web::Bytes, Problem> {
    use futures::StreamExt;
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(too_large(limit));
    }
    let mut body = actix_web::web::BytesMut::with_capacity(declared.unwrap_or(0).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| Problem::bad_request(format!("cannot read the body: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(too_large(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

pub(crate) fn too_large(limit: usize) -> Problem {
    Problem::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        "payload-too-large",
        "The request body is too large",
    )
    .detail(format!("the limit is {limit} bytes"))
}
