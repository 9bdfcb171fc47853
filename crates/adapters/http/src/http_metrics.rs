//! HTTP request metrics and the `/metrics` endpoint.

use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpResponse};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, Opts, Registry, TextEncoder,
};

/// Request count and latency by method, route pattern (never the raw path: bounded labels)
/// and status.
#[derive(Debug, Clone)]
pub struct HttpMetrics {
    requests: IntCounterVec,
    duration: HistogramVec,
}

impl HttpMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let requests = IntCounterVec::new(
            Opts::new("http_requests_total", "HTTP requests served"),
            &["method", "route", "status"],
        )?;
        let duration = HistogramVec::new(
            HistogramOpts::new("http_request_duration_seconds", "HTTP request latency").buckets(
                vec![
                    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
                ],
            ),
            &["method", "route"],
        )?;
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(duration.clone()))?;
        Ok(Self { requests, duration })
    }

    /// Middleware (`from_fn(HttpMetrics::observe)`); needs `web::Data<HttpMetrics>`.
    pub async fn observe(
        req: ServiceRequest,
        next: Next<impl MessageBody + 'static>,
    ) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
        let metrics = req.app_data::<web::Data<HttpMetrics>>().cloned();
        let method = req.method().clone();
        let start = Instant::now();
        let res = next.call(req).await;
        if let Some(m) = metrics {
            // Read after routing: the router has recorded the matched resource by then, so
            // this is a lookup (before, it would match the path against every route again).
            // An error that no handler turned into an answer has no request left to ask.
            let (status, route) = match &res {
                Ok(r) => (r.status(), r.request().match_pattern()),
                Err(e) => (e.as_response_error().status_code(), None),
            };
            let route = route.as_deref().unwrap_or("unmatched");
            m.requests
                .with_label_values(&[method.as_str(), route, status.as_str()])
                .inc();
            m.duration
                .with_label_values(&[method.as_str(), route])
                .observe(start.elapsed().as_secs_f64());
        }
        res
    }
}

/// `/metrics` in the Prometheus text format.
pub async fn metrics_endpoint(registry: web::Data<Registry>) -> HttpResponse {
    let mut buf = Vec::new();
    match TextEncoder::new().encode(&registry.gather(), &mut buf) {
        Ok(()) => HttpResponse::Ok()
            .content_type("text/plain; version=0.0.4")
            .body(buf),
        Err(e) => {
            tracing::error!(error = %e, "cannot encode metrics");
            HttpResponse::InternalServerError().finish()
        }
    }
}
