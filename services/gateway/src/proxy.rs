//! Forwarding to the services: one HTTP client per worker thread, per-upstream time limits,
//! retries for idempotent methods only, hop-by-hop headers removed, the tenant and user pinned
//! from the verified token, request id and trace context propagated. The OpenID Connect
//! passthrough ([`Proxy::pass_through`]) forwards allow-listed headers only, both ways.

use std::time::{Duration, Instant};

use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_LENGTH};
use actix_web::http::{Method, StatusCode, Uri};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use aurum_http::{Problem, RequestId, TENANT_HEADER, USER_HEADER};
use awc::error::SendRequestError;
use opentelemetry::propagation::Injector;
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

/// Time limit for opening a connection to a service.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// When an upstream call is attempted again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Retry {
    /// Idempotent methods, after a failed exchange or a 502/503.
    Idempotent,
    /// GET only, and only when the connection failed (nothing reached the upstream): some
    /// GETs of the sign-in flow are single-use.
    GetUnsent,
}

/// One upstream call, ready to send.
struct Call<'a> {
    name: &'static str,
    upstream: &'a Upstream,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
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

/// The upstream HTTP client of one worker thread. awc keeps its connection pool in the
/// thread, so a call takes no lock and hands nothing to another task; each worker builds its
/// own at start ([`Proxy::worker_client`]) and keeps it in its app data.
#[derive(Clone)]
pub struct WorkerClient(awc::Client);

impl std::fmt::Debug for WorkerClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WorkerClient")
    }
}

impl WorkerClient {
    /// The client of the worker serving `req`.
    pub fn of(req: &HttpRequest) -> Option<&awc::Client> {
        req.app_data::<WorkerClient>().map(|c| &c.0)
    }
}

#[derive(Debug, Clone)]
pub struct Proxy {
    ingestion: Upstream,
    prediction: Upstream,
    auth: Upstream,
    retries: u32,
    backoff: Duration,
    max_connections: usize,
    idle_timeout: Duration,
    metrics: GatewayMetrics,
}

/// Who the forwarded call acts for.
#[derive(Debug, Clone, Copy)]
pub struct Caller<'a> {
    pub tenant: &'a str,
    pub subject: &'a str,
}

impl Proxy {
    pub fn new(u: &Upstreams, metrics: GatewayMetrics) -> Self {
        Self {
            ingestion: u.ingestion.clone(),
            prediction: u.prediction.clone(),
            auth: u.auth.clone(),
            retries: u.retries,
            backoff: Duration::from_millis(u.retry_backoff_ms),
            max_connections: u.max_connections,
            idle_timeout: Duration::from_millis(u.idle_timeout_ms),
            metrics,
        }
    }

    /// A client for the calling worker thread: HTTP/1.1, redirects passed back rather than
    /// followed, and no header added that the caller did not send or the gateway does not set.
    pub fn worker_client(&self) -> WorkerClient {
        // HTTP/1.1 only, also over TLS (no `h2` in ALPN): the services speak it, and awc's
        // HTTP/2 code (h2 0.3, RUSTSEC-2026-0258) then never runs.
        let connector = awc::Connector::new()
            .max_http_version(awc::http::Version::HTTP_11)
            .timeout(CONNECT_TIMEOUT)
            .limit(self.max_connections)
            .conn_keep_alive(self.idle_timeout);
        WorkerClient(
            awc::Client::builder()
                .connector(connector)
                .disable_redirects()
                .no_default_headers()
                .disable_timeout()
                .finish(),
        )
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
        let Some(uri) = upstream_uri(upstream, path, req.query_string()) else {
            return Problem::bad_request("invalid request target").error_response();
        };
        self.send(
            req,
            Call {
                name,
                upstream,
                method: req.method().clone(),
                uri,
                headers: upstream_headers(req, caller),
                body,
                retry: Retry::Idempotent,
                pass: all_but_hop_by_hop,
            },
        )
        .await
    }

    /// Passes `req` through to the auth service at `path` (its own path, e.g. `/token`) with
    /// the query as is: allow-listed headers only, `X-Forwarded-For` with the peer appended,
    /// `X-Forwarded-Proto`/`-Host`, the request id and trace context. No token is checked and
    /// no tenant set: the auth service authenticates clients and users itself. Retried only
    /// for GET when the connection failed.
    pub async fn pass_through(&self, req: &HttpRequest, path: &str, body: Bytes) -> HttpResponse {
        let Some(uri) = upstream_uri(&self.auth, path, req.query_string()) else {
            return Problem::bad_request("invalid request target").error_response();
        };
        self.send(
            req,
            Call {
                name: "auth",
                upstream: &self.auth,
                method: req.method().clone(),
                uri,
                headers: passthrough_headers(req),
                body,
                retry: Retry::GetUnsent,
                pass: oidc_answer_header,
            },
        )
        .await
    }

    async fn send(&self, req: &HttpRequest, call: Call<'_>) -> HttpResponse {
        let Call {
            name,
            upstream,
            method,
            uri,
            headers,
            body,
            retry,
            pass,
        } = call;
        let Some(client) = WorkerClient::of(req) else {
            tracing::error!("no upstream client in this worker's app data");
            return Problem::internal().error_response();
        };
        let attempts = match retry {
            Retry::Idempotent
                if matches!(
                    method,
                    Method::GET | Method::HEAD | Method::PUT | Method::DELETE
                ) =>
            {
                self.retries + 1
            }
            Retry::GetUnsent if method == Method::GET => self.retries + 1,
            _ => 1,
        };
        let mut attempt = 0;
        loop {
            attempt += 1;
            let deadline = Instant::now() + upstream.timeout();
            let mut request = client
                .request(method.clone(), uri.clone())
                .timeout(upstream.timeout());
            *request.headers_mut() = headers.clone();
            let sent = request.send_body(body.clone()).await;
            let retryable = match (&sent, retry) {
                (Ok(r), Retry::Idempotent) => matches!(r.status().as_u16(), 502 | 503),
                (Ok(_), Retry::GetUnsent) => false,
                (Err(e), Retry::Idempotent) => failure_kind(e) != "timeout",
                (Err(e), Retry::GetUnsent) => failure_kind(e) == "connect",
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
                Ok(r) => {
                    let left = deadline.saturating_duration_since(Instant::now());
                    into_response(r.timeout(left), pass).await
                }
                Err(e) => {
                    let kind = failure_kind(&e);
                    self.metrics
                        .upstream_failures
                        .with_label_values(&[name, kind])
                        .inc();
                    // awc's errors name neither the URL nor the query (codes, states, hints).
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
}

/// The metric label of a failed exchange. `connect`: nothing reached the service.
fn failure_kind(e: &SendRequestError) -> &'static str {
    match e {
        SendRequestError::Timeout => "timeout",
        SendRequestError::Connect(_) => "connect",
        _ => "other",
    }
}

/// `{upstream}{path}?{query}`, or `None` when the request's target does not make a URI.
fn upstream_uri(upstream: &Upstream, path: &str, query: &str) -> Option<Uri> {
    let base = upstream.url.trim_end_matches('/');
    let mut uri = String::with_capacity(base.len() + path.len() + query.len() + 1);
    uri.push_str(base);
    uri.push_str(path);
    if !query.is_empty() {
        uri.push('?');
        uri.push_str(query);
    }
    Uri::try_from(uri).ok()
}

/// The headers of a forwarded API call: the caller's, less hop-by-hop ones and those the
/// gateway sets: tenant and user from the verified token, request id, `X-Forwarded-*`, trace
/// context.
fn upstream_headers(req: &HttpRequest, caller: Caller<'_>) -> HeaderMap {
    let mut out = caller_headers(req, |name| !DROP_REQUEST.contains(&name));
    set_header(&mut out, TENANT_HEADER, caller.tenant);
    set_header(&mut out, USER_HEADER, caller.subject);
    if let Some(id) = RequestId::current() {
        set_header(&mut out, "x-request-id", id.as_str());
    }
    if let Some(peer) = req.peer_addr() {
        set_header(&mut out, "x-forwarded-for", &peer.ip().to_string());
    }
    set_header(
        &mut out,
        "x-forwarded-proto",
        req.connection_info().scheme(),
    );
    set_trace_context(&mut out, req);
    out
}

/// The caller's headers that `keep` accepts (by lower-case name), repeated ones included.
fn caller_headers(req: &HttpRequest, keep: impl Fn(&str) -> bool) -> HeaderMap {
    let mut out = HeaderMap::with_capacity(req.headers().len() + 7);
    for (name, value) in req.headers() {
        if keep(name.as_str()) {
            out.append(name.clone(), value.clone());
        }
    }
    out
}

/// Sets (replaces) one header the gateway writes itself; a value that is not a valid header
/// value is left out.
fn set_header(out: &mut HeaderMap, name: &'static str, value: &str) {
    if let Ok(v) = HeaderValue::from_str(value) {
        out.insert(HeaderName::from_static(name), v);
    }
}

/// Writes the propagator's fields into an upstream call's headers.
struct HeaderInjector<'a>(&'a mut HeaderMap);

impl Injector for HeaderInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(n), Ok(v)) = (
            HeaderName::from_bytes(key.as_bytes()),
            HeaderValue::from_str(&value),
        ) {
            self.0.insert(n, v);
        }
    }
}

/// The W3C trace context of the upstream call (`traceparent`, `tracestate`): the request
/// span's, through the configured propagator; when the span records nothing (no
/// OpenTelemetry layer, or filtered out), the caller's valid `traceparent`/`tracestate`
/// pass through.
fn set_trace_context(out: &mut HeaderMap, req: &HttpRequest) {
    let span = tracing::Span::current();
    if !span.is_disabled() {
        let cx = span.context();
        opentelemetry::global::get_text_map_propagator(|p| {
            p.inject_context(&cx, &mut HeaderInjector(out))
        });
    }
    if out.contains_key("traceparent") {
        return;
    }
    let headers = req.headers();
    if let Some(tp) = headers
        .get("traceparent")
        .filter(|v| v.to_str().is_ok_and(valid_traceparent))
    {
        out.insert(HeaderName::from_static("traceparent"), tp.clone());
        if let Some(ts) = headers.get("tracestate").filter(|v| v.len() <= 512) {
            out.insert(HeaderName::from_static("tracestate"), ts.clone());
        }
    }
}

/// The headers of a passthrough call: the allow-listed ones of the caller, then the
/// gateway's own.
fn passthrough_headers(req: &HttpRequest) -> HeaderMap {
    let mut out = caller_headers(req, |name| PASS_REQUEST.contains(&name));
    if let Some(id) = RequestId::current() {
        set_header(&mut out, "x-request-id", id.as_str());
    }
    if let Some(chain) = forwarded_for(req) {
        set_header(&mut out, "x-forwarded-for", &chain);
    }
    let info = req.connection_info();
    set_header(&mut out, "x-forwarded-proto", info.scheme());
    set_header(&mut out, "x-forwarded-host", info.host());
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

/// The service's answer as the gateway's: allowed headers, the body read whole when it is
/// small and its length known, streamed otherwise.
async fn into_response<S>(mut r: awc::ClientResponse<S>, pass: fn(&str) -> bool) -> HttpResponse
where
    S: futures::Stream<Item = Result<Bytes, awc::error::PayloadError>> + Unpin + 'static,
{
    let mut builder = HttpResponse::build(r.status());
    for (name, value) in r.headers() {
        if pass(name.as_str()) {
            builder.append_header((name.clone(), value.clone()));
        }
    }
    let length = r
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    match length {
        Some(n) if n <= BUFFER_LIMIT => match r.body().limit(BUFFER_LIMIT as usize).await {
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
        _ => builder.streaming(r),
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
