//! What every context's adapters share: the pool with TLS, migrations and the service roles,
//! pool metrics, the readiness check and the mapping of driver errors to the ports' error.

mod connect;
mod health;
mod migrate;
mod pool_metrics;

pub use connect::{certificate_files, connect_pool, PgPool, PoolError};
// One-off connections as the migration role, for what only it may do (audit retention).
#[cfg(feature = "audit")]
pub(crate) use connect::{connect_one, As};
pub use health::PgHealth;
pub(crate) use migrate::migrate_context;
pub use migrate::{MigrateError, SERVICE_ROLES};
pub use pool_metrics::PoolMetrics;

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
