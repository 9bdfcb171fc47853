//! Forwarding to the services: one pooled HTTP client, per-upstream time limits, retries for
//! idempotent methods only, hop-by-hop headers removed, the tenant and user pinned from the
//! verified token, request id and trace context propagated. The OpenID Connect passthrough
//! ([`Proxy::pass_through`]) forwards allow-listed headers only, both ways.

use std::collections::HashMap;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use aurum_http::{Problem, RequestId, TENANT_HEADER, USER_HEADER};
use futures::TryStreamExt;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::config::{Upstream, Upstreams};
use crate::metrics::GatewayMetrics;
use crate::routes::Target;

/// Request headers never forwarded: hop-by-hop (RFC 9110 section 7.6.1), and those the gateway
/// sets itself.
const DROP_REQUEST: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    TENANT_HEADER,
    USER_HEADER,
    "x-request-id",
    "traceparent",
    "tracestate",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
];

const DROP_RESPONSE: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "x-request-id",
];

/// Request headers the OpenID Connect passthrough forwards (client authentication and bearer
/// tokens, the login form's CSRF cookie, the form's type, who the browser is); the gateway adds
/// the request id, trace context and `X-Forwarded-*`.
pub const PASS_REQUEST: &[&str] = &[
    "authorization",
    "cookie",
    "content-type",
    "accept",
    "user-agent",
];

/// Answer headers of the OpenID Connect passthrough: redirects, cookies, caching, the body's
/// type, authentication challenges, and the login page's own security headers.
pub const PASS_RESPONSE: &[&str] = &[
    "location",
    "set-cookie",
    "cache-control",
    "pragma",
    "expires",
    "content-type",
    "www-authenticate",
    "retry-after",
    "content-security-policy",
    "x-frame-options",
    "x-content-type-options",
    "referrer-policy",
];

/// Answers up to this size are read whole; larger ones are streamed through.
const BUFFER_LIMIT: u64 = 256 * 1024;

/// When an upstream call is attempted again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Idempotent methods, after a connection failure or a 502/503.
    Idempotent,
    /// GET only, and only when the connection failed (nothing reached the upstream): some
    /// GETs of the sign-in flow are single-use.
    GetUnsent,
}

/// One upstream call, ready to send.
struct Call<'a> {
    name: &'static str,
    upstream: &'a Upstream,
    method: reqwest::Method,
    url: String,
    headers: reqwest::header::HeaderMap,
    body: Bytes,
    retry: Retry,
    /// Which answer headers pass.
    pass: fn(&str) -> bool,
}

fn all_but_hop_by_hop(name: &str) -> bool {
    !DROP_RESPONSE.contains(&name)
}

fn oidc_answer_header(name: &str) -> bool {
    PASS_RESPONSE.contains(&name)
}

#[derive(Debug, Clone)]
pub struct Proxy {
    client: reqwest::Client,
    ingestion: Upstream,
    prediction: Upstream,
    auth: Upstream,
    retries: u32,
    backoff: Duration,
    metrics: GatewayMetrics,
}

/// Who the forwarded call acts for.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    pub tenant: &'a str,
    pub subject: &'a str,
}

impl Proxy {
    pub fn new(u: &Upstreams, metrics: GatewayMetrics) -> Result<Self, reqwest::Error> {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(u.pool_max_idle)
            .pool_idle_timeout(Duration::from_secs(60))
            .tcp_nodelay(true)
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(2))
            .build()?;
        Ok(Self {
            client,
            ingestion: u.ingestion.clone(),
            prediction: u.prediction.clone(),
            auth: u.auth.clone(),
            retries: u.retries,
            backoff: Duration::from_millis(u.retry_backoff_ms),
            metrics,
        })
    }

    pub fn client(&self) -> &reqwest::Client {
        &self.client
    }

    pub fn upstream(&self, target: Target) -> Option<(&'static str, &Upstream)> {
        match target {
            Target::Ingestion => Some(("ingestion", &self.ingestion)),
            Target::Prediction => Some(("prediction", &self.prediction)),
            Target::Auth => Some(("auth", &self.auth)),
            Target::Local(_) => None,
        }
    }

    /// The upstreams, for readiness.
    pub fn upstreams(&self) -> [(&'static str, Upstream); 3] {
        [
            ("ingestion", self.ingestion.clone()),
            ("prediction", self.prediction.clone()),
            ("auth", self.auth.clone()),
        ]
    }

    /// Forwards `req` (with its already-read `body`) to `target` at `/v1{rest}`.
    pub async fn forward(
        &self,
        target: Target,
        req: &HttpRequest,
        body: Bytes,
        caller: Caller<'_>,
    ) -> HttpResponse {
        let Some((name, upstream)) = self.upstream(target) else {
            return Problem::internal().error_response();
        };
        let path = req.path().strip_prefix("/api").unwrap_or(req.path());
        let mut url = format!("{}{path}", upstream.url.trim_end_matches('/'));
        if !req.query_string().is_empty() {
            url.push('?');
            url.push_str(req.query_string());
        }
        let method = match reqwest::Method::from_bytes(req.method().as_str().as_bytes()) {
            Ok(m) => m,
            Err(_) => return Problem::bad_request("unsupported method").error_response(),
        };
        let headers = self.upstream_headers(req, caller);
        self.send(Call {
            name,
            upstream,
            method,
            url,
            headers,
            body,
            retry: Retry::Idempotent,
            pass: all_but_hop_by_hop,
        })
        .await
    }

    /// Passes `req` through to the auth service at `path` (its own path, e.g. `/token`) with
    /// the query as is: allow-listed headers only, `X-Forwarded-For` with the peer appended,
    /// `X-Forwarded-Proto`/`-Host`, the request id and trace context. No token is checked and
    /// no tenant set: the auth service authenticates clients and users itself. Retried only
    /// for GET when the connection failed.
    pub async fn pass_through(&self, req: &HttpRequest, path: &str, body: Bytes) -> HttpResponse {
        let mut url = format!("{}{path}", self.auth.url.trim_end_matches('/'));
        if !req.query_string().is_empty() {
            url.push('?');
            url.push_str(req.query_string());
        }
        let method = match reqwest::Method::from_bytes(req.method().as_str().as_bytes()) {
            Ok(m) => m,
            Err(_) => return Problem::bad_request("unsupported method").error_response(),
        };
        self.send(Call {
            name: "auth",
            upstream: &self.auth,
            method,
            url,
            headers: passthrough_headers(req),
            body,
            retry: Retry::GetUnsent,
            pass: oidc_answer_header,
        })
        .await
    }

    async fn send(&self, call: Call<'_>) -> HttpResponse {
        let Call {
            name,
            upstream,
            method,
            url,
            headers,
            body,
            retry,
            pass,
        } = call;
        let attempts = match retry {
            Retry::Idempotent
                if matches!(
                    method,
                    reqwest::Method::GET
                        | reqwest::Method::HEAD
                        | reqwest::Method::PUT
                        | reqwest::Method::DELETE
                ) =>
            {
                self.retries + 1
            }
            Retry::GetUnsent if method == reqwest::Method::GET => self.retries + 1,
            _ => 1,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let sent = self
                .client
                .request(method.clone(), &url)
                .headers(headers.clone())
                .timeout(upstream.timeout())
                .body(body.clone())
                .send()
                .await;
            let retryable = match (&sent, retry) {
                (Ok(r), Retry::Idempotent) => matches!(r.status().as_u16(), 502 | 503),
                (Ok(_), Retry::GetUnsent) => false,
                (Err(e), _) => e.is_connect(),
            };
            if retryable && attempt < attempts {
                self.metrics
                    .upstream_retries
                    .with_label_values(&[name])
                    .inc();
                tracing::debug!(upstream = name, attempt, "retrying an idempotent call");
                tokio::time::sleep(self.backoff * attempt).await;
                continue;
            }
            return match sent {
                Ok(r) => into_response(r, pass).await,
                Err(e) => {
                    let kind = if e.is_timeout() {
                        "timeout"
                    } else if e.is_connect() {
                        "connect"
                    } else {
                        "other"
                    };
                    self.metrics
                        .upstream_failures
                        .with_label_values(&[name, kind])
                        .inc();
                    // Without the URL: its query may hold codes, states or hints.
                    let e = e.without_url();
                    tracing::warn!(upstream = name, kind, error = %e, "upstream call failed");
                    if kind == "timeout" {
                        Problem::new(
                            StatusCode::GATEWAY_TIMEOUT,
                            "upstream-timeout",
                            "The service did not answer in time",
                        )
                        .error_response()
                    } else {
                        Problem::new(
                            StatusCode::BAD_GATEWAY,
                            "upstream-unavailable",
                            "The service is unavailable; retry later",
                        )
                        .error_response()
                    }
                }
            };
        }
    }

    fn upstream_headers(
        &self,
        req: &HttpRequest,
        caller: Caller<'_>,
    ) -> reqwest::header::HeaderMap {
        let mut out = caller_headers(req, req.headers().len() + 6, |name| {
            !DROP_REQUEST.contains(&name)
        });
        let mut set = |name: &'static str, value: &str| set_header(&mut out, name, value);
        set(TENANT_HEADER, caller.tenant);
        set(USER_HEADER, caller.subject);
        if let Some(id) = RequestId::current() {
            set("x-request-id", id.as_str());
        }
        if let Some(peer) = req.peer_addr() {
            set("x-forwarded-for", &peer.ip().to_string());
        }
        set("x-forwarded-proto", req.connection_info().scheme());
        set_trace_context(&mut out, req);
        out
    }
}

/// The caller's headers that `keep` accepts (by lower-case name), repeated ones included.
fn caller_headers(
    req: &HttpRequest,
    capacity: usize,
    keep: impl Fn(&str) -> bool,
) -> reqwest::header::HeaderMap {
    use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
    let mut out = HeaderMap::with_capacity(capacity);
    for (name, value) in req.headers() {
        if !keep(name.as_str()) {
            continue;
        }
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            out.append(n, v);
        }
    }
    out
}

/// Sets (replaces) one header the gateway writes itself; a value that is not a valid header
/// value is left out.
fn set_header(out: &mut reqwest::header::HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = reqwest::header::HeaderValue::from_str(value) {
        out.insert(reqwest::header::HeaderName::from_static(name), v);
    }
}

/// The W3C trace context of the request's span (`traceparent`, `tracestate`).
fn set_trace_context(out: &mut reqwest::header::HeaderMap, req: &HttpRequest) {
    use reqwest::header::{HeaderName, HeaderValue};
    for (k, v) in trace_context(req) {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(k.as_bytes()),
            HeaderValue::from_str(&v),
        ) {
            out.insert(n, v);
        }
    }
}

/// The headers of a passthrough call: the allow-listed ones of the caller, then the
/// gateway's own.
fn passthrough_headers(req: &HttpRequest) -> reqwest::header::HeaderMap {
    let mut out = caller_headers(req, PASS_REQUEST.len() + 7, |name| {
        PASS_REQUEST.contains(&name)
    });
    let mut set = |name: &'static str, value: &str| set_header(&mut out, name, value);
    if let Some(id) = RequestId::current() {
        set("x-request-id", id.as_str());
    }
    if let Some(chain) = forwarded_for(req) {
        set("x-forwarded-for", &chain);
    }
    let info = req.connection_info();
    set("x-forwarded-proto", info.scheme());
    set("x-forwarded-host", info.host());
    set_trace_context(&mut out, req);
    out
}

/// `X-Forwarded-For` as received (all its lines, in order) with the peer's address appended.
fn forwarded_for(req: &HttpRequest) -> Option<String> {
    let mut chain: Vec<String> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .map(|v| v.trim().to_owned())
        .filter(|v| !v.is_empty())
        .collect();
    if let Some(peer) = req.peer_addr() {
        chain.push(peer.ip().to_string());
    }
    (!chain.is_empty()).then(|| chain.join(", "))
}

/// The W3C trace context for the upstream call: injected from the current span through the
/// configured propagator; without one (no OpenTelemetry layer) the caller's valid
/// `traceparent`/`tracestate` pass through.
fn trace_context(req: &HttpRequest) -> HashMap<String, String> {
    let cx = tracing::Span::current().context();
    let mut carrier = HashMap::new();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut carrier));
    if !carrier.contains_key("traceparent") {
        if let Some(tp) = req
            .headers()
            .get("traceparent")
            .and_then(|v| v.to_str().ok())
            .filter(|v| valid_traceparent(v))
        {
            carrier.insert("traceparent".into(), tp.to_owned());
            if let Some(ts) = req
                .headers()
                .get("tracestate")
                .and_then(|v| v.to_str().ok())
            {
                if ts.len() <= 512 {
                    carrier.insert("tracestate".into(), ts.to_owned());
                }
            }
        }
    }
    carrier
}

/// `00-<32 hex>-<16 hex>-<2 hex>`, ids not all zero.
pub fn valid_traceparent(v: &str) -> bool {
    let parts: Vec<&str> = v.split('-').collect();
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    };
    parts.len() == 4
        && parts[0] == "00"
        && hex(parts[1], 32)
        && hex(parts[2], 16)
        && hex(parts[3], 2)
        && parts[1].bytes().any(|b| b != b'0')
        && parts[2].bytes().any(|b| b != b'0')
}

async fn into_response(r: reqwest::Response, pass: fn(&str) -> bool) -> HttpResponse {
    let status = StatusCode::from_u16(r.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut builder = HttpResponse::build(status);
    for (name, value) in r.headers() {
        if !pass(name.as_str()) {
            continue;
        }
        builder.append_header((name.as_str(), value.as_bytes()));
    }
    match r.content_length() {
        Some(n) if n <= BUFFER_LIMIT => match r.bytes().await {
            Ok(b) => builder.body(b),
            Err(e) => {
                tracing::warn!(error = %e, "upstream body failed");
                Problem::new(
                    StatusCode::BAD_GATEWAY,
                    "upstream-unavailable",
                    "The service's answer was cut short",
                )
                .error_response()
            }
        },
        _ => builder.streaming(
            r.bytes_stream()
                .map_err(|e| actix_web::error::ErrorBadGateway(e.to_string())),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparents_are_checked() {
        assert!(valid_traceparent(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        ));
        for bad in [
            "",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
        ] {
            assert!(!valid_traceparent(bad), "{bad:?}");
        }
    }
}
