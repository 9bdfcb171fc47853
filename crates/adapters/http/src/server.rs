//! Starting a service's actix server on a bound listener, and running it until SIGINT/SIGTERM
//! with an orderly drain: one way for every service.

use std::future::Future;
use std::net::TcpListener;

use actix_web::body::MessageBody;
use actix_web::dev::{Server, ServerHandle, ServiceFactory, ServiceRequest};
use actix_web::{App, HttpServer};
use tokio::task::JoinHandle;

use crate::{ListenError, MetricsServer};

/// Starts `app` on `listener`: signals are handled by [`RunningServer`] (not by actix), and
/// in-flight requests get `shutdown_timeout_s` to finish on shutdown.
pub fn start<F, T, B>(
    app: F,
    listener: TcpListener,
    shutdown_timeout_s: u64,
) -> Result<Server, ListenError>
where
    F: Fn() -> App<T> + Send + Clone + 'static,
    T: ServiceFactory<
            ServiceRequest,
            Config = (),
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
    B: MessageBody + 'static,
{
    let addr = listener
        .local_addr()
        .map(|a| a.to_string())
        .unwrap_or_default();
    Ok(HttpServer::new(app)
        .listen(listener)
        .map_err(|source| ListenError { addr, source })?
        .disable_signals()
        .shutdown_timeout(shutdown_timeout_s)
        .run())
}

/// A started server and the background tasks that live as long as it.
pub struct RunningServer {
    port: u16,
    server: Server,
    handle: ServerHandle,
    metrics: Option<MetricsServer>,
    background: Vec<JoinHandle<()>>,
}

impl std::fmt::Debug for RunningServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RunningServer")
            .field("port", &self.port)
            .field("metrics", &self.metrics)
            .field("background_tasks", &self.background.len())
            .finish()
    }
}

impl RunningServer {
    pub fn new(server: Server, port: u16, background: Vec<JoinHandle<()>>) -> Self {
        let handle = server.handle();
        Self {
            port,
            server,
            handle,
            metrics: None,
            background,
        }
    }

    /// Runs and stops the listener of `/metrics` (when it has one) with the API's.
    pub fn with_metrics(mut self, metrics: Option<MetricsServer>) -> Self {
        self.metrics = metrics;
        self
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The port of `/metrics` when it is apart from the API's.
    pub fn metrics_port(&self) -> Option<u16> {
        self.metrics.as_ref().map(|m| m.port)
    }

    /// Serves until SIGINT/SIGTERM (or the server stops), then lets in-flight requests finish.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.run_until_stopped_then(async {}).await
    }

    /// Like [`RunningServer::run_until_stopped`], running `drain` once the server stopped
    /// taking requests and before the background tasks are ended (a service's own in-flight
    /// work: queues, writers, outgoing batches).
    pub async fn run_until_stopped_then(
        self,
        drain: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let server = tokio::spawn(self.server);
        let metrics = self.metrics.map(|m| {
            let handle = m.server.handle();
            tokio::spawn(m.server);
            handle
        });
        crate::shutdown_signal().await;
        tracing::info!("shutting down: finishing in-flight work");
        self.handle.stop(true).await;
        drain.await;
        // Scraped until the end, so the last figures of the drain are seen.
        if let Some(metrics) = metrics {
            metrics.stop(true).await;
        }
        for t in self.background {
            t.abort();
        }
        match server.await {
            Ok(r) => r,
            Err(e) => Err(std::io::Error::other(e)),
        }
    }
}
