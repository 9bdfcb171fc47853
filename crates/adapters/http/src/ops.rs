//! What every service's HTTP server has besides its API: the listener, body limits, and the
//! health, readiness and metrics endpoints.

use std::net::TcpListener;

use actix_web::dev::Server;
use actix_web::{web, App, HttpServer};
use prometheus::Registry;

use crate::{json_config, payload_config, HttpMetrics, Readiness};

#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {addr}: {source}")]
pub struct ListenError {
    pub addr: String,
    pub source: std::io::Error,
}

/// Binds `host:port` (port 0: any free one) and returns the listener with its actual port.
pub fn bind(host: &str, port: u16) -> Result<(TcpListener, u16), ListenError> {
    let addr = format!("{host}:{port}");
    let fail = |source| ListenError {
        addr: addr.clone(),
        source,
    };
    let listener = TcpListener::bind(&addr).map_err(fail)?;
    let port = listener.local_addr().map_err(fail)?.port();
    Ok((listener, port))
}

/// The shared pieces of a service's `App`, built once and cloned into every worker.
#[derive(Debug, Clone)]
pub struct Ops {
    readiness: web::Data<Readiness>,
    registry: web::Data<Registry>,
    http_metrics: web::Data<HttpMetrics>,
    body_limit_bytes: usize,
    /// `/metrics` is served by a listener of its own, not on the API port.
    metrics_apart: bool,
}

/// The listener that serves `/metrics` alone, apart from the API.
pub struct MetricsServer {
    pub(crate) server: Server,
    pub port: u16,
}

impl std::fmt::Debug for MetricsServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsServer")
            .field("port", &self.port)
            .finish()
    }
}

impl Ops {
    pub fn new(
        readiness: Readiness,
        registry: Registry,
        http_metrics: HttpMetrics,
        body_limit_bytes: usize,
    ) -> Self {
        Self {
            readiness: web::Data::new(readiness),
            registry: web::Data::new(registry),
            http_metrics: web::Data::new(http_metrics),
            body_limit_bytes,
            metrics_apart: false,
        }
    }

    /// With `port` set, moves `/metrics` off the API port to a listener of its own on
    /// `host:port` (0: any free one), so that a NetworkPolicy can open that port alone to
    /// Prometheus and the API port to the services that call it. `None`: one port for both.
    pub fn metrics_listener(
        &mut self,
        host: &str,
        port: Option<u16>,
    ) -> Result<Option<MetricsServer>, ListenError> {
        let Some(port) = port else {
            return Ok(None);
        };
        let (listener, port) = bind(host, port)?;
        let addr = format!("{host}:{port}");
        let registry = self.registry.clone();
        let server = HttpServer::new(move || {
            App::new()
                .app_data(registry.clone())
                .route("/metrics", web::get().to(crate::metrics_endpoint))
        })
        .workers(1)
        .listen(listener)
        .map_err(|source| ListenError { addr, source })?
        .disable_signals()
        .run();
        self.metrics_apart = true;
        Ok(Some(MetricsServer { server, port }))
    }

    /// Body limits with problem+json refusals, and `/healthz`, `/readyz` and (unless it has a
    /// listener of its own) `/metrics`. The middleware (`request_context`,
    /// `HttpMetrics::observe`) is wrapped by the caller.
    pub fn configure(&self, cfg: &mut web::ServiceConfig) {
        cfg.app_data(self.readiness.clone())
            .app_data(self.registry.clone())
            .app_data(self.http_metrics.clone())
            .app_data(json_config(self.body_limit_bytes))
            .app_data(payload_config(self.body_limit_bytes))
            .route("/healthz", web::get().to(crate::healthz))
            .route("/readyz", web::get().to(crate::readyz));
        if !self.metrics_apart {
            cfg.route("/metrics", web::get().to(crate::metrics_endpoint));
        }
    }
}
