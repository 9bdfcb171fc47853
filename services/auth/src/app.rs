//! Wiring: the PostgreSQL store behind every port, the key ring, seeded clients and the first
//! administrator, the HTTP server, and background upkeep (key reload, expired grant purge).

use std::sync::Arc;
use std::time::Duration;

use actix_web::middleware::from_fn;
use actix_web::{web, App};
use aurum_http::{HttpMetrics, Ops, Readiness, RunningServer};
use aurum_mqtt::DynsecBroker;
use aurum_ports::auth::{ClientStore, GrantStore, SecurityEventStore, UserStore};
use aurum_postgres::auth::{PgAuthStore, PgDeviceStore};
use aurum_postgres::{connect_pool, PgHealth, PoolMetrics};

use crate::brute_force::BruteForce;
use crate::config::{AuthConfig, AuthSettings};
use crate::devices::{DeviceCa, DeviceService};
use crate::keys::KeyRing;
use crate::metrics::AuthMetrics;
use crate::security_events::SecurityEvents;
use crate::tokens::Tokens;
use crate::{clients, routes, users};

/// What request handlers share. Features added later (devices, federation) add their own
/// fields here and their routes in [`routes::configure`].
#[derive(Debug)]
pub struct AppState {
    pub settings: AuthSettings,
    pub production: bool,
    pub keys: Arc<KeyRing>,
    pub tokens: Tokens,
    pub users: Arc<dyn UserStore>,
    pub clients: Arc<dyn ClientStore>,
    pub grants: Arc<dyn GrantStore>,
    pub events: SecurityEvents,
    pub event_store: Arc<dyn SecurityEventStore>,
    pub brute_force: BruteForce,
    /// Bounds the argon2 work of sign-ins and client authentication.
    pub hashes: crate::hash_gate::HashGate,
    pub metrics: AuthMetrics,
    /// Upstream identity providers (`auth.federation`).
    pub federation: crate::federation::Federation,
    /// Device provisioning; `None` when no broker is configured.
    pub devices: Option<Arc<DeviceService>>,
}

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Pool(#[from] aurum_postgres::PoolError),
    #[error("cannot register metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("signing keys: {0}")]
    Keys(#[from] crate::keys::KeyError),
    #[error("seeding: {0}")]
    Seed(#[from] crate::clients::SeedError),
    #[error("bootstrap admin: {0}")]
    Bootstrap(#[from] crate::users::BootstrapError),
    #[error(transparent)]
    Listen(#[from] aurum_http::ListenError),
    #[error("federation: {0}")]
    Federation(#[from] crate::federation::FederationSetupError),
    #[error("device CA: {0}")]
    DeviceCa(#[from] crate::devices::CaError),
    #[error(transparent)]
    Certificates(#[from] aurum_telemetry::CertificateMetricError),
}

/// The state and its store, built from configuration (also used by the CLI commands).
pub async fn build_state(
    config: &AuthConfig,
    registry: &prometheus::Registry,
) -> Result<(AppState, aurum_postgres::PgPool), StartError> {
    let pool = connect_pool(&config.database)?;
    let store = Arc::new(PgAuthStore::new(pool.clone()));
    let metrics = AuthMetrics::register(registry)?;
    let s = &config.auth;
    let max_lifetime = Duration::from_secs(s.access_token_ttl_s.max(s.id_token_ttl_s) + s.leeway_s);
    let keys = Arc::new(KeyRing::new(
        store.clone(),
        s.key_encryption_key.as_ref(),
        max_lifetime,
    ));
    let devices = match &config.devices {
        None => None,
        Some(d) => {
            let ca = match (&d.ca_cert_file, &d.ca_key_file) {
                (Some(cert), Some(key)) => Some(DeviceCa::load(cert, key, d.cert_validity_days)?),
                _ => None,
            };
            let broker = DynsecBroker::new(
                d.broker.clone(),
                Duration::from_millis(d.broker_timeout_ms.max(1)),
            );
            Some(Arc::new(DeviceService::new(
                Arc::new(PgDeviceStore::new(pool.clone())),
                Arc::new(broker),
                ca,
            )))
        }
    };
    let federation = crate::federation::Federation::new(
        &s.federation,
        &s.issuer,
        s.leeway_s,
        config.profile == aurum_config::Profile::Production,
        Arc::new(aurum_postgres::auth::PgFederationStore::new(pool.clone())),
    )?;
    let state = AppState {
        federation,
        devices,
        settings: s.clone(),
        production: config.profile == aurum_config::Profile::Production,
        tokens: Tokens {
            keys: Arc::clone(&keys),
            grants: store.clone(),
            issuer: s.issuer.trim_end_matches('/').to_owned(),
            leeway_s: s.leeway_s,
        },
        keys,
        users: store.clone(),
        clients: store.clone(),
        grants: store.clone(),
        events: SecurityEvents::new(store.clone(), metrics.clone()),
        event_store: store.clone(),
        brute_force: BruteForce::new(store.clone(), s.brute_force.clone()),
        hashes: crate::hash_gate::HashGate::new(
            s.max_concurrent_hashes,
            std::time::Duration::from_millis(s.hash_wait_ms),
        ),
        metrics,
    };
    Ok((state, pool))
}

/// A built, running service.
#[derive(Debug)]
pub struct Application {
    server: RunningServer,
}

impl Application {
    pub async fn build(
        config: AuthConfig,
        registry: prometheus::Registry,
    ) -> Result<Self, StartError> {
        let http_metrics = HttpMetrics::register(&registry)?;
        let (state, pool) = build_state(&config, &registry).await?;
        PoolMetrics::register(&pool, &registry)?;
        aurum_telemetry::register_certificate_expiry(&registry, &certificate_files(&config))?;
        state.keys.ensure_signing_key().await?;
        clients::seed(&state, &config.auth.clients).await?;
        if let Some(admin) = &config.auth.bootstrap_admin {
            users::bootstrap_admin(&state, admin).await?;
        }
        let state = web::Data::new(state);

        let background = vec![tokio::spawn(upkeep(state.clone(), Duration::from_secs(30)))];
        let readiness = Readiness::default().with(Arc::new(PgHealth::new(pool)));
        let (listener, port) = aurum_http::bind(&config.http.host, config.http.port)?;
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
                    .configure(routes::configure)
            },
            listener,
            config.http.shutdown_timeout_s,
        )?;
        tracing::info!(port, issuer = %config.auth.issuer, "auth service listening");
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

/// The certificate files the service reads, named for their expiry metrics: the database CA,
/// the device broker's CA and client certificate, and the device CA.
fn certificate_files(config: &AuthConfig) -> Vec<(&'static str, &std::path::Path)> {
    let mut files = aurum_postgres::certificate_files(&config.database);
    if let Some(d) = &config.devices {
        files.extend(aurum_mqtt::certificate_files(&d.broker));
        // Loaded only together with its key (see `build_state`).
        if let (Some(cert), Some(_)) = (&d.ca_cert_file, &d.ca_key_file) {
            files.push(("device_ca", cert.as_path()));
        }
    }
    files
}

/// Picks up keys other replicas added, makes sure one signs, and purges expired grants.
async fn upkeep(state: web::Data<AppState>, every: Duration) {
    let mut round: u64 = 0;
    loop {
        tokio::time::sleep(every).await;
        round += 1;
        if let Err(e) = state.keys.ensure_signing_key().await {
            tracing::warn!(error = %e, "cannot refresh signing keys");
        }
        if round.is_multiple_of(20) {
            match state.grants.purge_expired(chrono::Utc::now()).await {
                Ok(n) => tracing::debug!(purged = n, "expired grants purged"),
                Err(e) => tracing::warn!(error = %e, "cannot purge expired grants"),
            }
        }
    }
}
