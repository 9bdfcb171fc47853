//! The HTTP client that delivers feature batches to the prediction service: JSON, a timeout
//! per attempt, bounded retries with backoff for server errors and connection failures, the
//! caller's trace context as `traceparent`, and an `X-Request-ID` per batch.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use aurum_authn::ServiceTokens;

use aurum_proto::features::FeatureBatch;
use opentelemetry::trace::{SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use reqwest::StatusCode;
use secrecy::ExposeSecret;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::metrics::{FeatureDrop, FeatureMetrics};

/// The longest pause between two attempts, however many retries are configured.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
const REQUEST_ID: &str = "x-request-id";
const TRACEPARENT: &str = "traceparent";

#[derive(Debug, Clone)]
pub struct SenderSettings {
    /// Base URL of the prediction service; `/v1/features` is appended.
    pub base_url: String,
    pub timeout: Duration,
    pub max_retries: u32,
    pub backoff: Duration,
    /// The service token source when prediction verifies tokens (`features.client`).
    pub tokens: Option<Arc<ServiceTokens>>,
}

#[derive(Debug, thiserror::Error)]
pub enum SendError {
    #[error("cannot encode the feature batch as JSON: {0}")]
    Encode(#[source] serde_json::Error),
    #[error("POST {url} failed after {attempts} attempt(s): {source}")]
    Transport {
        url: String,
        attempts: u32,
        #[source]
        source: reqwest::Error,
    },
    #[error("cannot obtain a service token for {url}: {source}")]
    Token {
        url: String,
        #[source]
        source: aurum_authn::TokenError,
    },
    #[error("POST {url} answered {status} after {attempts} attempt(s)")]
    Status {
        url: String,
        status: StatusCode,
        attempts: u32,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum SenderBuildError {
    #[error("features.prediction_url {url:?} is not an http(s) URL")]
    Url { url: String },
    #[error("cannot build the HTTP client for the prediction service: {0}")]
    Client(#[source] reqwest::Error),
}

/// Posts feature batches to `{base_url}/v1/features`.
#[derive(Debug, Clone)]
pub struct FeatureSender {
    client: reqwest::Client,
    url: String,
    settings: SenderSettings,
    metrics: FeatureMetrics,
}

impl FeatureSender {
    pub fn new(
        settings: SenderSettings,
        metrics: FeatureMetrics,
    ) -> Result<Self, SenderBuildError> {
        let base = settings.base_url.trim().trim_end_matches('/');
        if !(base.starts_with("http://") || base.starts_with("https://")) {
            return Err(SenderBuildError::Url {
                url: settings.base_url.clone(),
            });
        }
        let client = reqwest::Client::builder()
            .timeout(settings.timeout)
            .connect_timeout(settings.timeout)
            .build()
            .map_err(SenderBuildError::Client)?;
        Ok(Self {
            client,
            url: format!("{base}/v1/features"),
            settings,
            metrics,
        })
    }

    pub fn url(&self) -> &str {
        &self.url
    }

    /// Delivers `batch` or gives up, counting either way; never panics, never blocks longer
    /// than the retries allow.
    pub async fn deliver(&self, batch: &FeatureBatch) {
        let vectors = batch.vectors.len() as u64;
        let span = tracing::info_span!(
            "send_features",
            otel.kind = "client",
            vectors,
            url.full = %self.url,
            request_id = tracing::field::Empty,
        );
        let started = Instant::now();
        let result = self.send(batch, &span).instrument(span.clone()).await;
        self.metrics
            .send_seconds
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(()) => {
                self.metrics.batches_sent.inc();
                self.metrics.vectors_sent.inc_by(vectors);
            }
            Err(e) => {
                self.metrics.batches_failed.inc();
                self.metrics.count_drop(FeatureDrop::SendFailed, vectors);
                span.in_scope(|| {
                    tracing::warn!(error = %e, vectors, "feature batch dropped");
                });
            }
        }
    }

    async fn send(&self, batch: &FeatureBatch, span: &tracing::Span) -> Result<(), SendError> {
        // Encoded once: every retry sends the same bytes with the same request id, so the
        // receiver can recognise a retry.
        let body = serde_json::to_vec(batch).map_err(SendError::Encode)?;
        let request_id = uuid::Uuid::new_v4().to_string();
        span.record("request_id", request_id.as_str());
        let headers = self.headers(&request_id, span);
        let mut delay = self.settings.backoff;
        let mut attempts = 0;
        loop {
            attempts += 1;
            let mut request = self.client.post(&self.url).headers(headers.clone());
            if let Some(tokens) = &self.settings.tokens {
                let token = tokens.token().await.map_err(|source| SendError::Token {
                    url: self.url.clone(),
                    source,
                })?;
                request = request.bearer_auth(token.expose_secret());
            }
            let outcome = request.body(body.clone()).send().await;
            let retryable = match outcome {
                Ok(response) if response.status().is_success() => return Ok(()),
                Ok(response) if response.status() == StatusCode::UNAUTHORIZED && attempts == 1 => {
                    // The token may have been revoked or its key rotated away: fetch a new one
                    // and try once more.
                    if let Some(tokens) = &self.settings.tokens {
                        tokens.invalidate().await;
                    }
                    SendError::Status {
                        url: self.url.clone(),
                        status: response.status(),
                        attempts,
                    }
                }
                Ok(response) => {
                    let status = response.status();
                    // A 4xx says the batch itself is wrong: sending it again cannot help.
                    // 408 and 429 are the exceptions: the server asks to come back later.
                    let transient = status.is_server_error()
                        || status == StatusCode::TOO_MANY_REQUESTS
                        || status == StatusCode::REQUEST_TIMEOUT;
                    let error = SendError::Status {
                        url: self.url.clone(),
                        status,
                        attempts,
                    };
                    if !transient {
                        return Err(error);
                    }
                    error
                }
                Err(source) => SendError::Transport {
                    url: self.url.clone(),
                    attempts,
                    source,
                },
            };
            if attempts > self.settings.max_retries {
                return Err(retryable);
            }
            self.metrics.retries.inc();
            tracing::debug!(error = %retryable, retry_in_ms = delay.as_millis() as u64, "retrying a feature batch");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(MAX_BACKOFF);
        }
    }

    fn headers(&self, request_id: &str, span: &tracing::Span) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Ok(v) = HeaderValue::from_str(request_id) {
            headers.insert(HeaderName::from_static(REQUEST_ID), v);
        }
        for (name, value) in trace_context(span) {
            if let (Ok(n), Ok(v)) = (
                HeaderName::from_bytes(name.as_bytes()),
                HeaderValue::from_str(&value),
            ) {
                headers.insert(n, v);
            }
        }
        headers
    }
}

/// The W3C trace-context headers of `span`, through the configured propagator. Without an
/// OpenTelemetry layer (a library user, tests) or with a propagator that writes no
/// `traceparent`, one is made up: from the span's context when it has one, else fresh ids,
/// so that the prediction service's work still joins a trace this batch can be found by.
pub fn trace_context(span: &tracing::Span) -> HashMap<String, String> {
    let cx = span.context();
    let mut carrier = HashMap::new();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut carrier));
    if !carrier.contains_key(TRACEPARENT) {
        let mut sc = cx.span().span_context().clone();
        if !sc.is_valid() {
            sc = SpanContext::new(
                fresh_trace_id(),
                fresh_span_id(),
                TraceFlags::SAMPLED,
                false,
                Default::default(),
            );
        }
        carrier.insert(TRACEPARENT.to_owned(), aurum_telemetry::traceparent(&sc));
    }
    carrier
}

fn fresh_trace_id() -> TraceId {
    // A v4 UUID has its version bits set, so it is never the invalid all-zero id.
    TraceId::from_bytes(*uuid::Uuid::new_v4().as_bytes())
}

fn fresh_span_id() -> SpanId {
    let bytes = uuid::Uuid::new_v4().into_bytes();
    let mut id = [0u8; 8];
    id.copy_from_slice(&bytes[..8]);
    if id == [0; 8] {
        id[7] = 1;
    }
    SpanId::from_bytes(id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_made_up_traceparent_is_valid_w3c() {
        let span = tracing::info_span!("t");
        let headers = trace_context(&span);
        let tp = &headers[TRACEPARENT];
        let parts: Vec<&str> = tp.split('-').collect();
        assert_eq!(parts.len(), 4, "{tp}");
        assert_eq!(parts[0], "00");
        assert_eq!(parts[1].len(), 32);
        assert_eq!(parts[2].len(), 16);
        assert!(parts[1].bytes().all(|b| b.is_ascii_hexdigit()));
        assert_ne!(parts[1], "0".repeat(32));
        assert_ne!(parts[2], "0".repeat(16));
    }
}
