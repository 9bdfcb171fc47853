//! PostgreSQL adapters: connection pool with TLS, embedded migrations and roles, the machine
//! registry, the telemetry store with its quarantine, and time-partition maintenance.

mod audit;
mod auth;
mod connect;
mod devices;
mod esg;
mod federation;
mod machines;
mod maintenance;
mod migrate;
mod pool_metrics;
mod prediction;
mod schema;
mod telemetry;

pub use audit::{chain_hash, PgAuditStore};
pub use auth::PgAuthStore;
pub use connect::{certificate_files, connect_pool, PgPool, PoolError};
pub use devices::PgDeviceStore;
pub use esg::PgEsgStore;
pub use federation::PgFederationStore;
pub use machines::PgMachineRegistry;
pub use maintenance::PgTelemetryMaintenance;
pub use migrate::{migrate, MigrateError, SERVICE_ROLES};
pub use pool_metrics::PoolMetrics;
pub use prediction::{PgAlertStore, PgModelRegistry, PgPredictionStore};
pub use telemetry::{PgHealth, PgTelemetryStore};

use aurum_ports::StoreError;

/// Maps diesel errors to the port's error: connection trouble is transient, the rest refused.
pub(crate) fn store_error(e: diesel::result::Error) -> StoreError {
    use diesel::result::Error as E;
    match e {
        E::DatabaseError(diesel::result::DatabaseErrorKind::ClosedConnection, info) => {
            StoreError::Unavailable(info.message().to_owned())
        }
        E::DatabaseError(_, ref info)
            if info.message().contains("connection") || info.message().contains("terminating") =>
        {
            StoreError::Unavailable(e.to_string())
        }
        other => StoreError::Refused(other.to_string()),
    }
}

pub(crate) fn pool_error(
    e: bb8::RunError<diesel_async::pooled_connection::PoolError>,
) -> StoreError {
    StoreError::Unavailable(format!("no database connection: {e}"))
}
