//! The prediction context: the model registry, scores and machine status, alerts, and the
//! emissions (ESG) store, in the `prediction` schema.

mod alerts;
mod esg;
mod models;
mod schema;
mod scores;

pub use alerts::PgAlertStore;
pub use esg::PgEsgStore;
pub use models::PgModelRegistry;
pub use scores::PgPredictionStore;

use aurum_config::DatabaseSettings;
use diesel_migrations::{embed_migrations, EmbeddedMigrations};

use crate::MigrateError;

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("src/prediction/migrations");

/// Applies the shared and the `prediction` schema's pending migrations (as the
/// administrator) and sets the service role's password; returns the versions applied.
pub async fn migrate(settings: &DatabaseSettings) -> Result<Vec<String>, MigrateError> {
    crate::kernel::migrate_context(settings, MIGRATIONS).await
}
