//! Wiring: adapters into the application, the HTTP server, the model follower and history
//! retention; an orderly drain on shutdown.

use std::sync::Arc;
use std::time::Duration;

use actix_web::middleware::from_fn;
use actix_web::{web, App};
use aurum_http::{HttpMetrics, Ops, Readiness, RunningServer};
use aurum_ports::prediction::{AlertStore, PredictionStore};
use aurum_postgres::prediction::{PgAlertStore, PgEsgStore, PgModelRegistry, PgPredictionStore};
use aurum_postgres::{connect_pool, PgHealth, PoolMetrics};

use crate::config::PredictionConfig;
use crate::esg::EsgState;
use crate::metrics::PredictionMetrics;
use crate::models::ModelService;
use crate::routes;
use crate::scoring::{AlertSettings, Scorer};

/// What request handlers share.
#[derive(Debug)]
pub struct AppState {
    pub scorer: Arc<Scorer>,
    pub models: Arc<ModelService>,
    pub store: Arc<dyn PredictionStore>,
    pub alerts: Arc<dyn AlertStore>,
    pub esg: Arc<EsgState>,
    pub metrics: PredictionMetrics,
    pub max_model_bytes: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Pool(#[from] aurum_postgres::PoolError),
    #[error("cannot register metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("cannot read the bootstrap model {path}: {source}")]
    BootstrapFile {
        path: String,
        source: std::io::Error,
    },
    #[error("the bootstrap model was refused: {0}")]
    Bootstrap(#[from] crate::models::ModelServiceError),
    #[error(transparent)]
    Listen(#[from] aurum_http::ListenError),
    #[error("invalid auth settings: {0}")]
    Auth(#[from] aurum_authn::AuthnError),
    #[error(transparent)]
    Certificates(#[from] aurum_telemetry::CertificateMetricError),
}

/// A built, running service.
#[derive(Debug)]
pub struct Application {
    server: RunningServer,
}

impl Application {
    pub async fn build(
        config: PredictionConfig,
        registry: prometheus::Registry,
    ) -> Result<Self, StartError> {
        let pool = connect_pool(&config.database)?;
        let metrics = PredictionMetrics::register(&registry)?;
        let http_metrics = HttpMetrics::register(&registry)?;
        PoolMetrics::register(&pool, &registry)?;
        aurum_telemetry::register_certificate_expiry(
            &registry,
            &aurum_postgres::certificate_files(&config.database),
        )?;
        let settings = &config.prediction;

        let models = Arc::new(ModelService::new(Arc::new(PgModelRegistry::new(
            pool.clone(),
        ))));
        if let Some(path) = &settings.bootstrap_model {
            let bytes = std::fs::read(path).map_err(|source| StartError::BootstrapFile {
                path: path.display().to_string(),
                source,
            })?;
            models.bootstrap(&bytes).await?;
        }
        // A database that is down at start-up is not fatal: the follower loads the model
        // once it answers, and /readyz says not ready meanwhile.
        if let Err(e) = models.sync().await {
            tracing::warn!(error = %e, "cannot load the active model yet");
        }
        metrics
            .model_loaded
            .set(i64::from(models.current().is_some()));

        let store: Arc<dyn PredictionStore> = Arc::new(PgPredictionStore::new(pool.clone()));
        let alerts: Arc<dyn AlertStore> = Arc::new(PgAlertStore::new(pool.clone()));
        let esg = Arc::new(EsgState::new(Arc::new(PgEsgStore::new(pool.clone()))));
        let scorer = Arc::new(Scorer::new(
            Arc::clone(&models),
            Arc::clone(&store),
            Arc::clone(&alerts),
            AlertSettings {
                raise_after: settings.alert_raise_after,
                clear_after: settings.alert_clear_after,
                clear_ratio: settings.alert_clear_ratio,
                anomaly_threshold: settings.anomaly_alert_threshold,
            },
            metrics.clone(),
        ));
        let background = vec![
            tokio::spawn(follow_models(
                Arc::clone(&models),
                metrics.clone(),
                Duration::from_secs(settings.model_poll_s.max(1)),
            )),
            tokio::spawn(retain(
                Arc::clone(&store),
                settings.retention_days,
                Duration::from_secs(3_600),
            )),
        ];

        let readiness = Readiness::default().with(Arc::new(PgHealth::new(pool.clone())));
        let (listener, port) = aurum_http::bind(&config.http.host, config.http.port)?;
        let guard = config
            .auth
            .as_ref()
            .map(|a| {
                aurum_authn::TokenGuard::from_settings(
                    a,
                    &[aurum_authn::API_AUDIENCE, "aurumai-prediction"],
                )
            })
            .transpose()?
            .map(web::Data::new);
        if guard.is_none() {
            tracing::warn!("auth is not configured: the API trusts the X-Aurum-Tenant header (development only)");
        }

        let state = web::Data::new(AppState {
            scorer,
            models,
            store,
            alerts,
            esg: Arc::clone(&esg),
            metrics,
            max_model_bytes: settings.max_model_bytes,
        });
        let esg = web::Data::from(esg);
        let mut ops = Ops::new(
            readiness,
            registry,
            http_metrics,
            config.http.body_limit_bytes,
        );
        let metrics = ops.metrics_listener(&config.http.host, config.http.metrics_port)?;
        let server = aurum_http::start(
            move || {
                App::new()
                    .wrap(from_fn(HttpMetrics::observe))
                    .wrap(from_fn(aurum_http::request_context))
                    .app_data(state.clone())
                    .app_data(esg.clone())
                    .configure(|c| ops.configure(c))
                    .configure(|c| {
                        if let Some(g) = &guard {
                            c.app_data(g.clone());
                        }
                    })
                    .service(
                        web::scope("/v1")
                            .wrap(from_fn(aurum_authn::require_token))
                            .configure(routes::configure),
                    )
            },
            listener,
            config.http.shutdown_timeout_s,
        )?;
        tracing::info!(port, "prediction service listening");
        Ok(Self {
            server: RunningServer::new(server, port, background).with_metrics(metrics),
        })
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// Serves until SIGINT/SIGTERM (or the server stops), then lets in-flight requests finish.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        self.server.run_until_stopped().await
    }
}

async fn follow_models(models: Arc<ModelService>, metrics: PredictionMetrics, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        if let Err(e) = models.sync().await {
            tracing::warn!(error = %e, "cannot check the model registry");
        }
        metrics
            .model_loaded
            .set(i64::from(models.current().is_some()));
    }
}

async fn retain(store: Arc<dyn PredictionStore>, days: u32, every: Duration) {
    loop {
        match store.apply_retention(days).await {
            Ok(deleted) => tracing::info!(deleted, days, "prediction history retention applied"),
            Err(e) => tracing::warn!(error = %e, "prediction history retention failed"),
        }
        tokio::time::sleep(every).await;
    }
}
