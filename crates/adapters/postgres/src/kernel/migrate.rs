//! Embedded migrations, run as the administrator, and the service role's password.
//!
//! Each context embeds its own set beside its queries (`src/<context>/migrations`) and its
//! service's `migrate` applies the shared set below and its own, nothing else. The sets share
//! diesel's one bookkeeping table (`__diesel_schema_migrations`, by version): versions are
//! unique across the sets, and a set ignores the versions it does not own, so a database
//! migrated before the split upgrades without re-running anything.

use aurum_config::DatabaseSettings;
use diesel_async::{AsyncMigrationHarness, RunQueryDsl};
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use secrecy::ExposeSecret;

use super::connect::{connect_one, As};

/// What every context's schema needs first: the shared analytics role.
const SHARED: EmbeddedMigrations = embed_migrations!("src/kernel/migrations");

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

/// Applies the shared set and then `own`'s pending migrations, and returns their versions.
/// Needs a multi-threaded tokio runtime (diesel's migration harness blocks in place).
pub(crate) async fn migrate_context(
    settings: &DatabaseSettings,
    own: EmbeddedMigrations,
) -> Result<Vec<String>, MigrateError> {
    let conn = connect_one(settings, As::Admin).await?;
    let mut harness = AsyncMigrationHarness::new(conn);
    let mut applied = Vec::new();
    for set in [SHARED, own] {
        let versions = tokio::task::block_in_place(|| harness.run_pending_migrations(set))
            .map_err(|e| MigrateError::Migration(e.to_string()))?;
        applied.extend(versions.into_iter().map(|v| v.to_string()));
    }
    let mut conn = harness.into_inner();

    // The service logs in with its own role; give it the configured password.
    if let Some(pw) = &settings.password {
        if settings
            .admin_user
            .as_deref()
            .is_some_and(|a| a != settings.user)
        {
            let statement = set_password_statement(&settings.user, pw.expose_secret())?;
            diesel::sql_query(statement).execute(&mut conn).await?;
        }
    }
    Ok(applied)
}

/// `ALTER ROLE` with a SCRAM-SHA-256 verifier computed here: the password itself never
/// reaches the server, so no statement or server log can show it. One statement, no
/// session state (works through PgBouncer in transaction mode). The role must be one of
/// [`SERVICE_ROLES`] (plain identifiers), and a verifier is base64 with `$` and `:`
/// separators: neither can break out of its quoting.
fn set_password_statement(role: &str, password: &str) -> Result<String, MigrateError> {
    let role = SERVICE_ROLES
        .iter()
        .find(|r| **r == role)
        .ok_or_else(|| MigrateError::UnknownRole(role.to_owned()))?;
    let verifier = postgres_protocol::password::scram_sha_256(password.as_bytes());
    if !verifier
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "+/=$:-".contains(c))
    {
        return Err(MigrateError::Migration(
            "unexpected characters in a SCRAM verifier".into(),
        ));
    }
    Ok(format!("ALTER ROLE \"{role}\" PASSWORD '{verifier}'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_service_role_gets_a_scram_verifier_never_the_password() {
        let password = "it's a secret; DROP TABLE x --";
        let sql = set_password_statement("aurumai_gateway", password).unwrap();
        assert!(
            sql.starts_with("ALTER ROLE \"aurumai_gateway\" PASSWORD 'SCRAM-SHA-256$4096:"),
            "{sql}"
        );
        assert!(!sql.contains(password));
        // A fresh salt every time.
        assert_ne!(
            sql,
            set_password_statement("aurumai_gateway", password).unwrap()
        );
    }

    #[test]
    fn only_the_service_roles_are_managed() {
        assert!(matches!(
            set_password_statement("postgres", "x"),
            Err(MigrateError::UnknownRole(r)) if r == "postgres"
        ));
    }
}
