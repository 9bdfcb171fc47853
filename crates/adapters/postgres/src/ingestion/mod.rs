//! The ingestion context: the machine registry and the machine profiles, the telemetry store
//! with its quarantine and the time partitions, in the `ingestion` schema.

mod events;
mod machines;
mod maintenance;
mod profiles;
mod schema;
mod telemetry;

pub use events::PgMaintenanceLog;
pub use machines::PgMachineRegistry;
pub use maintenance::PgTelemetryMaintenance;
pub use profiles::PgProfileStore;
pub use telemetry::PgTelemetryStore;

use aurum_config::DatabaseSettings;
use diesel_migrations::{embed_migrations, EmbeddedMigrations};

use crate::MigrateError;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("src/ingestion/migrations");

/// Applies the shared and the `ingestion` schema's pending migrations (as the administrator)
/// and sets the service role's password; returns the versions applied.
pub async fn migrate(settings: &DatabaseSettings) -> Result<Vec<String>, MigrateError> {
    crate::kernel::migrate_context(settings, MIGRATIONS).await
}
