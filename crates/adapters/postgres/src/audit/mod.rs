//! The gateway's audit context: the hash-chained log of data access, in the `audit` schema.

mod chain;
mod schema;

pub use chain::{chain_hash, PgAuditStore};

use aurum_config::DatabaseSettings;
use diesel::sql_types::{BigInt, Integer};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use diesel_migrations::{embed_migrations, EmbeddedMigrations};

use crate::kernel::{connect_one, As};
use crate::MigrateError;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("src/audit/migrations");

/// Applies the shared and the `audit` schema's pending migrations (as the administrator) and
/// sets the service role's password; returns the versions applied.
pub async fn migrate(settings: &DatabaseSettings) -> Result<Vec<String>, MigrateError> {
    crate::kernel::migrate_context(settings, MIGRATIONS).await
}

#[derive(Debug, thiserror::Error)]
pub enum RetentionError {
    #[error("cannot connect as the migration role: {0}")]
    Connect(#[from] diesel::ConnectionError),
    #[error("audit retention failed: {0}")]
    Query(#[from] diesel::result::Error),
}

/// Deletes entries older than `days` from every tenant's chain, keeping the newest deleted
/// entry's hash as its anchor so that the rest still verifies; returns how many went. Runs as
/// the migration role (`database.admin_user`): the gateway's own role may not delete history.
pub async fn apply_retention(
    settings: &DatabaseSettings,
    days: u32,
) -> Result<u64, RetentionError> {
    #[derive(QueryableByName)]
    struct Deleted {
        #[diesel(sql_type = BigInt)]
        deleted: i64,
    }
    let mut conn = connect_one(settings, As::Admin).await?;
    let r: Deleted = diesel::sql_query("SELECT audit.apply_retention($1) AS deleted")
        .bind::<Integer, _>(i32::try_from(days).unwrap_or(i32::MAX))
        .get_result(&mut conn)
        .await?;
    Ok(u64::try_from(r.deleted).unwrap_or(0))
}
