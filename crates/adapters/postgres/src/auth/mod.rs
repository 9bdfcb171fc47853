//! The auth context: users, clients, grants, signing keys and security events; devices;
//! federation state, in the `auth` schema.

mod accounts;
mod devices;
mod federation;
mod schema;

pub use accounts::PgAuthStore;
pub use devices::PgDeviceStore;
pub use federation::PgFederationStore;

use aurum_config::DatabaseSettings;
use diesel_migrations::{embed_migrations, EmbeddedMigrations};

use crate::MigrateError;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("src/auth/migrations");

/// Applies the shared and the `auth` schema's pending migrations (as the administrator) and
/// sets the service role's password; returns the versions applied.
pub async fn migrate(settings: &DatabaseSettings) -> Result<Vec<String>, MigrateError> {
    crate::kernel::migrate_context(settings, MIGRATIONS).await
}
