//! Wiring: adapters into the application, the HTTP server, the MQTT pipeline, the writers and
//! maintenance; and an orderly drain on shutdown.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::middleware::from_fn;
use actix_web::{web, App};
use aurum_http::{HttpMetrics, Ops, Readiness, RunningServer};
use aurum_mqtt::Consumer;
use aurum_ports::ingestion::{MaintenanceLog, TelemetryMaintenance, TelemetryStore};
use aurum_postgres::ingestion::{
    PgMachineRegistry, PgMaintenanceLog, PgProfileStore, PgTelemetryMaintenance, PgTelemetryStore,
};
use aurum_postgres::{connect_pool, PgHealth, PoolMetrics};
use chrono::Utc;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::config::IngestionConfig;
use crate::features::{self, FeatureFeed, FeatureTask};
use crate::metrics::{FeatureMetrics, IngestMetrics};
use crate::mqtt_source::{self, BrokerHealth, Inbound};
use crate::pipeline::Ingestor;
use crate::profiles::{self, ProfileCatalogue};
use crate::routes;
use crate::spool::Spool;
use crate::writer::{self, WriterSettings, Writers};

/// What request handlers share.
#[derive(Debug)]
pub struct AppState {
    pub ingestor: Arc<Ingestor>,
    pub store: Arc<dyn TelemetryStore>,
    pub events: Arc<dyn MaintenanceLog>,
    pub metrics: IngestMetrics,
    pub max_batch_messages: usize,
    pub body_limit_bytes: usize,
    /// Hand-off to the feature stream; `None` when it is disabled.
    pub features: Option<FeatureFeed>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Pool(#[from] aurum_postgres::PoolError),
    #[error("cannot register metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error(transparent)]
    Spool(#[from] crate::spool::SpoolError),
    #[error(transparent)]
    Mqtt(#[from] aurum_mqtt::MqttError),
    #[error("cannot start feature streaming: {0}")]
    Features(#[from] crate::features::FeatureStartError),
    #[error(transparent)]
    Listen(#[from] aurum_http::ListenError),
    #[error("invalid auth settings: {0}")]
    Auth(#[from] aurum_authn::AuthnError),
    #[error(transparent)]
    Certificates(#[from] aurum_telemetry::CertificateMetricError),
}

/// A built, running service.
pub struct Application {
    server: RunningServer,
    consumer: Option<Consumer>,
    inbound: Option<mpsc::Sender<Inbound>>,
    pipeline: JoinHandle<()>,
    writers: Writers,
    features: Option<FeatureTask>,
}

impl std::fmt::Debug for Application {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Application")
            .field("server", &self.server)
            .finish()
    }
}

impl Application {
    pub async fn build(
        config: IngestionConfig,
        registry: prometheus::Registry,
    ) -> Result<Self, StartError> {
        let pool = connect_pool(&config.database)?;
        let store: Arc<dyn TelemetryStore> = Arc::new(PgTelemetryStore::new(pool.clone()));
        let machines = Arc::new(PgMachineRegistry::new(pool.clone()));
        let metrics = IngestMetrics::register(&registry)?;
        let http_metrics = HttpMetrics::register(&registry)?;
        let feature_metrics = FeatureMetrics::register(&registry)?;
        PoolMetrics::register(&pool, &registry)?;
        let mut certificates = aurum_postgres::certificate_files(&config.database);
        if config.ingest.mqtt_enabled {
            certificates.extend(aurum_mqtt::certificate_files(&config.mqtt));
        }
        aurum_telemetry::register_certificate_expiry(&registry, &certificates)?;
        let (feed, features) = match features::start(&config.features, feature_metrics)? {
            Some((feed, task)) => (Some(feed), Some(task)),
            None => (None, None),
        };
        let ingest = &config.ingest;
        let profiles = Arc::new(ProfileCatalogue::new(Arc::new(PgProfileStore::new(
            pool.clone(),
        ))));
        let ingestor = Arc::new(Ingestor::new(
            machines,
            Arc::clone(&profiles),
            ingest.validation_policy(),
            metrics.clone(),
        ));

        // Partitions must exist before the first write; maintenance keeps them ahead.
        let maintenance: Arc<dyn TelemetryMaintenance> =
            Arc::new(PgTelemetryMaintenance::new(pool.clone()));
        let first = tokio::time::timeout(
            Duration::from_secs(10),
            maintenance.ensure_partitions(
                Utc::now(),
                ingest.max_past_days + 1,
                ingest.partition_ahead_days,
            ),
        )
        .await;
        match first {
            Ok(Ok(created)) => tracing::info!(created, "telemetry partitions ready"),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot create partitions at start-up; retrying in the background")
            }
            Err(_) => {
                tracing::warn!("database not answering at start-up; partitions follow when it does")
            }
        }
        let mut background = vec![tokio::spawn(maintain(
            maintenance,
            ingest.max_past_days + 1,
            ingest.partition_ahead_days,
            ingest.retention_days,
            Duration::from_secs(ingest.maintenance_interval_s.max(60)),
        ))];
        background.push(tokio::spawn(profiles::watch_changes(
            profiles,
            Duration::from_millis(ingest.profile_refresh_ms),
        )));

        // MQTT: broker -> spool -> pipeline -> write queue -> writers.
        let (spool, replay) = Spool::open(
            &ingest.spool_dir,
            ingest.spool_fsync_ms,
            ingest.max_payload_bytes,
        )?;
        let spool = Arc::new(Mutex::new(spool));
        let (write_tx, write_rx) = mpsc::channel(ingest.queue_capacity);
        let writers = writer::spawn(
            write_rx,
            Arc::clone(&store),
            Arc::clone(&spool),
            WriterSettings {
                batch_max_messages: ingest.batch_max_messages,
                batch_max_wait: Duration::from_millis(ingest.batch_max_wait_ms),
                writers: ingest.writers,
            },
            metrics.clone(),
            feed.clone(),
        );
        let (in_tx, in_rx) = mpsc::channel(ingest.queue_capacity);
        let pipeline = tokio::spawn(mqtt_source::run_pipeline(
            in_rx,
            Arc::clone(&ingestor),
            write_tx,
            ingest.max_payload_bytes,
        ));
        if replay.records() > 0 {
            tracing::info!(
                messages = replay.records(),
                "replaying spooled messages not yet committed"
            );
        }
        // Replayed ids precede new ones in the queue: batches stay contiguous id ranges.
        // Records are read as the pipeline takes them, so the bounded queue bounds memory.
        for record in replay {
            let inbound = Inbound {
                record: record?,
                received_at: Utc::now(),
            };
            if in_tx.send(inbound).await.is_err() {
                break;
            }
        }

        let mut readiness = Readiness::default().with(Arc::new(PgHealth::new(pool.clone())));
        let consumer = if ingest.mqtt_enabled {
            let filter = aurum_mqtt::telemetry_filter(&ingest.shared_group);
            let consumer = mqtt_source::start_consumer(
                &config.mqtt,
                filter,
                Arc::clone(&spool),
                in_tx.clone(),
                metrics.clone(),
                ingest.max_payload_bytes,
            )?;
            readiness = readiness.with(Arc::new(BrokerHealth {
                connected: consumer.connection_flag(),
            }));
            background.push(tokio::spawn(watch_broker(
                consumer.connection_flag(),
                metrics.clone(),
            )));
            Some(consumer)
        } else {
            None
        };

        let (listener, port) = aurum_http::bind(&config.http.host, config.http.port)?;
        let guard = config
            .auth
            .as_ref()
            .map(|a| {
                aurum_authn::TokenGuard::from_settings(
                    a,
                    &[aurum_authn::API_AUDIENCE, "aurumai-ingestion"],
                )
            })
            .transpose()?
            .map(web::Data::new);
        if guard.is_none() {
            tracing::warn!("auth is not configured: the API trusts the X-Aurum-Tenant header (development only)");
        }

        let state = web::Data::new(AppState {
            ingestor,
            store,
            events: Arc::new(PgMaintenanceLog::new(pool.clone())),
            metrics,
            max_batch_messages: ingest.max_batch_messages,
            body_limit_bytes: config.http.body_limit_bytes,
            features: feed,
        });
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
        tracing::info!(port, "ingestion service listening");
        Ok(Self {
            server: RunningServer::new(server, port, background).with_metrics(metrics),
            consumer,
            inbound: Some(in_tx),
            pipeline,
            writers,
            features,
        })
    }

    pub fn port(&self) -> u16 {
        self.server.port()
    }

    /// Serves until SIGINT/SIGTERM (or the server stops), then drains: stop taking MQTT
    /// messages, finish in-flight HTTP requests, commit everything already received, and
    /// send the features of what was committed in a last batch.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let Self {
            server,
            mut consumer,
            mut inbound,
            pipeline,
            writers,
            mut features,
        } = self;
        server
            .run_until_stopped_then(async move {
                if let Some(c) = consumer.take() {
                    c.disconnect().await;
                    drop(c);
                }
                drop(inbound.take());
                if let Err(e) = pipeline.await {
                    tracing::error!(error = %e, "pipeline task failed");
                }
                writers.join().await;
                // After the writers: the last commits feed the last feature batch.
                if let Some(f) = features.take() {
                    f.shutdown().await;
                }
            })
            .await
    }
}

async fn maintain(
    m: Arc<dyn TelemetryMaintenance>,
    back_days: u32,
    ahead_days: u32,
    retention_days: u32,
    every: Duration,
) {
    loop {
        let now = Utc::now();
        let result = async {
            let created = m.ensure_partitions(now, back_days, ahead_days).await?;
            let dropped = m.apply_retention(now, retention_days).await?;
            Ok::<_, aurum_ports::StoreError>((created, dropped))
        }
        .await;
        let wait = match result {
            Ok((created, dropped)) => {
                tracing::info!(created, dropped = ?dropped, "telemetry partitions maintained");
                every
            }
            Err(e) => {
                tracing::warn!(error = %e, "partition maintenance failed; retrying soon");
                Duration::from_secs(5)
            }
        };
        tokio::time::sleep(wait).await;
    }
}

async fn watch_broker(connected: Arc<std::sync::atomic::AtomicBool>, metrics: IngestMetrics) {
    loop {
        let up = connected.load(std::sync::atomic::Ordering::SeqCst);
        metrics.broker_connected.set(i64::from(up));
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
