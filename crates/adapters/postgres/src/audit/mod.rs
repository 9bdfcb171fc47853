//! The gateway's audit context: the hash-chained log of data access, in the `audit` schema.

mod chain;

pub use chain::{chain_hash, PgAuditStore};

use aurum_config::DatabaseSettings;
use diesel_migrations::{embed_migrations, EmbeddedMigrations};

use crate::MigrateError;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("src/audit/migrations");

/// Applies the shared and the `audit` schema's pending migrations (as the administrator) and
/// sets the service role's password; returns the versions applied.
pub async fn migrate(settings: &DatabaseSettings) -> Result<Vec<String>, MigrateError> {
    crate::kernel::migrate_context(settings, MIGRATIONS).await
}
