//! Request ids and trace context: accept or generate `X-Request-ID`, echo it, and run the
//! request inside a span that carries it (and the trace id) onto every log line. A W3C
//! `traceparent` header continues the caller's trace.

use std::fmt;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::HttpMessage;
use opentelemetry::propagation::Extractor;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

pub const HEADER: &str = "x-request-id";

/// The id of the request being served.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestId(String);

tokio::task_local! {
    static CURRENT: RequestId;
}

impl RequestId {
    /// Accepts a caller's id only if it is short and plain, so it is safe in logs and headers.
    pub fn from_header(v: &str) -> Option<Self> {
        let ok = !v.is_empty()
            && v.len() <= 128
            && v.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"-_.:".contains(&b));
        ok.then(|| Self(v.to_owned()))
    }

    pub fn generate() -> Self {
        Self(uuid::Uuid::new_v4().to_string())
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id of the request this task is serving, if any.
    pub fn current() -> Option<Self> {
        CURRENT.try_with(Clone::clone).ok()
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

struct HeaderExtractor<'a>(&'a actix_web::http::header::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

/// Middleware (`actix_web::middleware::from_fn(request_context)`).
pub async fn request_context(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let id = req
        .headers()
        .get(HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(RequestId::from_header)
        .unwrap_or_else(RequestId::generate);
    req.extensions_mut().insert(id.clone());

    // Only the path: query strings may carry things that must not reach logs.
    let span = tracing::info_span!(
        "http_request",
        request_id = %id,
        trace_id = tracing::field::Empty,
        span_id = tracing::field::Empty,
        http.method = %req.method(),
        http.route = tracing::field::Empty,
        url.path = %req.path(),
        http.status_code = tracing::field::Empty,
        otel.kind = "server",
    );
    // A span the log filter turns off records nothing: no trace context to read or set.
    if !span.is_disabled() {
        let parent = opentelemetry::global::get_text_map_propagator(|p| {
            p.extract(&HeaderExtractor(req.headers()))
        });
        // An error here only means no OpenTelemetry layer is installed (tests): ids still work.
        let _ = span.set_parent(parent);
        aurum_telemetry::record_trace_ids(&span);
        span.set_attribute("request_id", id.to_string());
    }

    let started = std::time::Instant::now();
    let result = CURRENT
        .scope(id.clone(), next.call(req).instrument(span.clone()))
        .await;
    let mut res = result?;
    let status = res.status().as_u16();
    // Read after routing: the router has recorded the matched resource by then, so this is a
    // lookup; asked before, it would match the path against every route again.
    if !span.is_disabled() {
        if let Some(route) = res.request().match_pattern() {
            span.record("http.route", route.as_str());
        }
        span.record("http.status_code", status);
        span.in_scope(|| {
            tracing::info!(
                status,
                elapsed_ms = started.elapsed().as_secs_f64() * 1000.0,
                "request served"
            )
        });
    }
    if let Ok(v) = HeaderValue::from_str(id.as_str()) {
        res.headers_mut().insert(HeaderName::from_static(HEADER), v);
    }
    Ok(res)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caller_ids_are_kept_only_when_plain() {
        assert!(RequestId::from_header("abc-123_x.y:z").is_some());
        for bad in ["", "a b", "x\u{7f}", "a\nb", &"x".repeat(129)] {
            assert!(RequestId::from_header(bad).is_none(), "{bad:?}");
        }
    }
}
