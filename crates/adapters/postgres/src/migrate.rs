//! Embedded migrations, run as the administrator, and the service role's password.

use aurum_config::DatabaseSettings;
use diesel::sql_types::Text;
use diesel_async::{AsyncMigrationHarness, RunQueryDsl};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use secrecy::ExposeSecret;

use crate::connect::{connect_one, As};

const MIGRATIONS: EmbeddedMigrations = embed_migrations!("migrations");

/// The login roles the migrations create, one per service.
pub const SERVICE_ROLES: [&str; 4] = [
    "aurumai_ingestion",
    "aurumai_prediction",
    "aurumai_auth",
    "aurumai_gateway",
];

#[derive(Debug, thiserror::Error)]
pub enum MigrateError {
    #[error("cannot connect as the migration role: {0}")]
    Connect(#[from] diesel::ConnectionError),
    #[error("migration failed: {0}")]
    Migration(String),
    #[error("{0} is not a service role the migrations create; its password is not managed here")]
    UnknownRole(String),
    #[error("cannot set the service role's password: {0}")]
    Password(#[from] diesel::result::Error),
}

/// Applies pending migrations and returns their versions. Needs a multi-threaded tokio
/// runtime (diesel's migration harness blocks in place).
pub async fn migrate(settings: &DatabaseSettings) -> Result<Vec<String>, MigrateError> {
    let conn = connect_one(settings, As::Admin).await?;
    let mut harness = AsyncMigrationHarness::new(conn);
    let applied = tokio::task::block_in_place(|| harness.run_pending_migrations(MIGRATIONS))
        .map_err(|e| MigrateError::Migration(e.to_string()))?
        .into_iter()
        .map(|v| v.to_string())
        .collect();
    let mut conn = harness.into_inner();

    // The service logs in with its own role; give it the configured password. The value goes
    // in as a bind parameter and is quoted by the server, never spliced into SQL here.
    if let Some(pw) = &settings.password {
        if settings
            .admin_user
            .as_deref()
            .is_some_and(|a| a != settings.user)
        {
            if !SERVICE_ROLES.contains(&settings.user.as_str()) {
                return Err(MigrateError::UnknownRole(settings.user.clone()));
            }
            diesel::sql_query(
                "SELECT set_config('aurum.role_password', $1, true), \
                 set_config('aurum.role_name', $2, true)",
            )
            .bind::<Text, _>(pw.expose_secret())
            .bind::<Text, _>(&settings.user)
            .execute(&mut conn)
            .await?;
            diesel::sql_query(
                "DO $$ BEGIN EXECUTE format('ALTER ROLE %I PASSWORD %L', \
                 current_setting('aurum.role_name'), current_setting('aurum.role_password')); END $$",
            )
            .execute(&mut conn)
            .await?;
        }
    }
    Ok(applied)
}
