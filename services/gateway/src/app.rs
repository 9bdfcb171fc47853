//! Wiring: verifier, upstream client, limits, audit writer and retention, the HTTP server.

use std::sync::Arc;
use std::time::Duration;

use actix_cors::Cors;
use actix_web::http::header;
use actix_web::middleware::from_fn;
use actix_web::{web, App};
use async_trait::async_trait;
use aurum_authn::{JwksVerifier, VerifierSettings};
use aurum_http::{HttpMetrics, Ops, Readiness, RunningServer};
use aurum_ports::audit::AuditStore;
use aurum_ports::{HealthCheck, HealthStatus};
use aurum_postgres::audit::PgAuditStore;
use aurum_postgres::{connect_pool, PgHealth, PoolMetrics};
use url::Url;

use crate::audit::AuditSink;
use crate::config::{CorsSettings, GatewayConfig, Upstream};
use crate::metrics::GatewayMetrics;
use crate::openapi;
use crate::proxy::Proxy;
use crate::rate_limit::RateLimits;
use crate::routes::handler::{dispatch, fallback, GatewayState};
use crate::routes::oidc::{self, OIDC_PREFIX, OIDC_ROUTES};
use crate::routes::{PREFIX, ROUTES};
use crate::security_headers::security_headers;

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Pool(#[from] aurum_postgres::PoolError),
    #[error("cannot register metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("invalid setting {key}: {problem}")]
    Setting { key: &'static str, problem: String },
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
    #[error(transparent)]
    Authn(#[from] aurum_authn::AuthnError),
    #[error(transparent)]
    Listen(#[from] aurum_http::ListenError),
    #[error(transparent)]
    Certificates(#[from] aurum_telemetry::CertificateMetricError),
}

#[derive(Debug)]
pub struct Application {
    server: RunningServer,
}

fn url(key: &'static str, v: &str) -> Result<Url, StartError> {
    Url::parse(v).map_err(|e| StartError::Setting {
        key,
        problem: e.to_string(),
    })
}

/// The verifier of the configuration.
pub fn verifier_settings(config: &GatewayConfig) -> Result<VerifierSettings, StartError> {
    let a = &config.auth;
    let mut s = VerifierSettings::new(url("auth.issuer", &a.issuer)?, a.audiences.clone());
    if let Some(j) = &a.jwks_url {
        s = s.with_jwks_url(url("auth.jwks_url", j)?);
    }
    s.leeway_s = a.leeway_s;
    s.min_refetch_interval = Duration::from_millis(a.min_refetch_interval_ms);
    s.http_timeout = Duration::from_millis(a.jwks_timeout_ms.max(1));
    Ok(s)
}

fn cors(settings: &CorsSettings) -> Cors {
    let allowed: Vec<String> = settings
        .allowed_origins
        .iter()
        .map(|o| o.trim_end_matches('/').to_owned())
        .collect();
    Cors::default()
        .allowed_origin_fn(move |origin, _| {
            origin
                .to_str()
                .is_ok_and(|o| allowed.iter().any(|a| a == o))
        })
        .allowed_methods(["GET", "POST", "PUT", "PATCH", "DELETE"])
        .allowed_headers([
            header::AUTHORIZATION,
            header::CONTENT_TYPE,
            header::ACCEPT,
            header::HeaderName::from_static("x-request-id"),
            header::HeaderName::from_static("traceparent"),
        ])
        .expose_headers([
            header::HeaderName::from_static("x-request-id"),
            header::RETRY_AFTER,
            header::HeaderName::from_static("ratelimit-limit"),
            header::HeaderName::from_static("ratelimit-remaining"),
            header::HeaderName::from_static("ratelimit-reset"),
        ])
        .max_age(settings.max_age_s)
}

impl Application {
    pub async fn build(
        config: GatewayConfig,
        registry: prometheus::Registry,
    ) -> Result<Self, StartError> {
        // The upstream clients build their TLS settings from the process's default crypto
        // provider; name it, so a second provider in the dependency tree cannot leave the
        // choice open (awc would panic in every worker).
        let _ = rustls::crypto::ring::default_provider().install_default();
        let pool = connect_pool(&config.database)?;
        let metrics = GatewayMetrics::register(&registry)?;
        let http_metrics = HttpMetrics::register(&registry)?;
        PoolMetrics::register(&pool, &registry)?;
        aurum_telemetry::register_certificate_expiry(
            &registry,
            &aurum_postgres::certificate_files(&config.database),
        )?;
        let verifier = JwksVerifier::new(verifier_settings(&config)?)?;
        // The issuer may come up after the gateway: keys are fetched on first use then.
        if let Err(e) = verifier.refresh().await {
            tracing::warn!(error = %e, "cannot fetch the issuer's keys yet");
        }
        let proxy = Proxy::new(&config.upstreams, metrics.clone());
        let audit_store: Arc<dyn AuditStore> = Arc::new(PgAuditStore::new(pool.clone()));
        let mut background = Vec::new();
        let sink = if config.audit.enabled {
            let (sink, writer) = AuditSink::start(
                Arc::clone(&audit_store),
                config.audit.queue_capacity,
                config.audit.batch_max,
                Duration::from_millis(config.audit.linger_ms),
                metrics.clone(),
            );
            background.push(writer);
            sink
        } else {
            AuditSink::disabled(metrics.clone())
        };
        let limits = config
            .rate_limit
            .enabled
            .then(|| RateLimits::new(&config.rate_limit, metrics.clone()));

        let mut readiness = Readiness::default()
            .with(Arc::new(PgHealth::new(pool.clone())))
            .with(Arc::new(JwksCheck {
                verifier: verifier.clone(),
                every: Duration::from_millis(config.auth.min_refetch_interval_ms),
                last: tokio::sync::Mutex::new(None),
            }));
        // Readiness checks are shared by the workers, so they use a thread-safe client of
        // their own; the proxied calls use each worker's (`WorkerClient`).
        let probe_client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()?;
        for (name, upstream) in proxy.upstreams() {
            readiness = readiness.with(Arc::new(UpstreamCheck {
                name,
                upstream,
                client: probe_client.clone(),
            }));
        }

        let state = web::Data::new(GatewayState {
            verifier,
            proxy,
            limits,
            audit: sink,
            audit_store,
            metrics,
            body_limit: config.http.body_limit_bytes,
        });
        let pruned = state.clone();
        background.push(tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(60)).await;
                if let Some(l) = &pruned.limits {
                    l.prune();
                }
            }
        }));

        let doc = openapi::document()
            .to_json()
            .map_err(|e| StartError::Setting {
                key: "openapi",
                problem: e.to_string(),
            })?;
        let doc = web::Data::new(doc);
        let docs_page = web::Data::new(openapi::DocsPage(openapi::docs_html()));
        let (listener, port) = aurum_http::bind(&config.http.host, config.http.port)?;
        let mut ops = Ops::new(
            readiness,
            registry,
            http_metrics,
            config.http.body_limit_bytes,
        );
        let metrics = ops.metrics_listener(&config.http.host, config.http.metrics_port)?;
        let cors_settings = config.cors.clone();
        let server = aurum_http::start(
            move || {
                // Built here, in the worker thread that will use it.
                let client = state.proxy.worker_client();
                let mut app = App::new()
                    .wrap(from_fn(HttpMetrics::observe))
                    .wrap(cors(&cors_settings))
                    .wrap(from_fn(security_headers))
                    .wrap(from_fn(aurum_http::request_context))
                    .app_data(state.clone())
                    .app_data(client)
                    .app_data(doc.clone())
                    .app_data(docs_page.clone())
                    .configure(|c| ops.configure(c))
                    .route(
                        &format!("{PREFIX}/openapi.json"),
                        web::get().to(openapi::openapi_json),
                    )
                    .route(&format!("{PREFIX}/docs"), web::get().to(openapi::docs));
                for (index, r) in ROUTES.iter().enumerate() {
                    app = app.route(
                        &r.public_path(),
                        web::method(crate::routes::actix_method(r.method))
                            .to(move |req, payload, state| dispatch(req, payload, state, index)),
                    );
                }
                for (index, r) in OIDC_ROUTES.iter().enumerate() {
                    app = app.route(
                        &r.public_path(),
                        web::method(crate::routes::actix_method(r.method)).to(
                            move |req, payload, state| {
                                oidc::passthrough(req, payload, state, index)
                            },
                        ),
                    );
                }
                app.route(OIDC_PREFIX, web::to(oidc::unknown))
                    .route(
                        &format!("{OIDC_PREFIX}/{{tail:.*}}"),
                        web::to(oidc::unknown),
                    )
                    .default_service(web::to(fallback))
            },
            listener,
            config.http.shutdown_timeout_s,
        )?;
        tracing::info!(port, "gateway listening");
        Ok(Self {
            server: RunningServer::new(server, port, background).with_metrics(metrics),
        })
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// Serves until SIGINT/SIGTERM (or the server stops), then lets in-flight requests finish.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server
            .run_until_stopped_then(async {
                // Let the audit writer drain what the last requests queued.
                tokio::time::sleep(Duration::from_millis(200)).await;
            })
            .await
    }
}

/// The issuer's JWKS answers. `/readyz` is open to anyone: the result is kept for the
/// verifier's refetch interval, so probes cannot make the gateway hammer the issuer.
#[derive(Debug)]
struct JwksCheck {
    verifier: JwksVerifier,
    every: Duration,
    last: tokio::sync::Mutex<Option<(std::time::Instant, bool)>>,
}

#[async_trait]
impl HealthCheck for JwksCheck {
    async fn check(&self) -> HealthStatus {
        let mut last = self.last.lock().await;
        let ready = match *last {
            Some((at, ready)) if at.elapsed() < self.every => ready,
            _ => {
                let ready = self.verifier.refresh().await.is_ok();
                *last = Some((std::time::Instant::now(), ready));
                ready
            }
        };
        HealthStatus {
            name: "jwks",
            ready,
            detail: (!ready).then(|| "the issuer's signing keys cannot be fetched".into()),
        }
    }
}

/// An upstream's `/healthz` answers.
#[derive(Debug)]
struct UpstreamCheck {
    name: &'static str,
    upstream: Upstream,
    client: reqwest::Client,
}

#[async_trait]
impl HealthCheck for UpstreamCheck {
    async fn check(&self) -> HealthStatus {
        let url = format!("{}/healthz", self.upstream.url.trim_end_matches('/'));
        let ok = self
            .client
            .get(url)
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        HealthStatus {
            name: self.name,
            ready: ok,
            detail: (!ok).then(|| format!("{} does not answer /healthz", self.name)),
        }
    }
}
