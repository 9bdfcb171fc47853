//! `aurum-auth`: `serve` (default), `migrate`, `bootstrap-admin`, `rotate-keys`.

use std::process::ExitCode;

use aurum_auth::{app, users, Application, AuthConfig};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "aurum-auth",
    about = "AurumAI OpenID Connect provider",
    version
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the service (the default). Applies pending migrations first when admin
    /// credentials are configured (database.admin_user).
    Serve,
    /// Create or upgrade the database schema and roles, then exit.
    Migrate,
    /// Create the configured first administrator (auth.bootstrap_admin) if its tenant has no
    /// user yet, then exit.
    BootstrapAdmin,
    /// Add a new signing key; older keys stay published until their tokens expire.
    RotateKeys,
}

fn main() -> ExitCode {
    aurum_telemetry::run_service("aurum-auth", run(Cli::parse()))
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let config = AuthConfig::load()?;
    let telemetry = aurum_telemetry::init("aurum-auth", &config.telemetry)?;
    match cli.command {
        Some(Command::Migrate) => {
            let applied = aurum_postgres::auth::migrate(&config.database).await?;
            tracing::info!(?applied, "database migrated");
        }
        Some(Command::BootstrapAdmin) => {
            let Some(admin) = &config.auth.bootstrap_admin else {
                return Err("auth.bootstrap_admin is not configured".into());
            };
            let (state, _pool) = app::build_state(&config, &telemetry.registry).await?;
            let created = users::bootstrap_admin(&state, admin).await?;
            tracing::info!(created, tenant = %admin.tenant, "bootstrap administrator");
        }
        Some(Command::RotateKeys) => {
            let (state, _pool) = app::build_state(&config, &telemetry.registry).await?;
            let kid = state.keys.rotate().await?;
            tracing::info!(kid = %kid, "new signing key added");
        }
        Some(Command::Serve) | None => {
            if config.database.admin_user.is_some() {
                let applied = aurum_postgres::auth::migrate(&config.database).await?;
                tracing::info!(?applied, "database migrated at start-up");
            }
            let registry = telemetry.registry.clone();
            Application::build(config, registry)
                .await?
                .run_until_stopped()
                .await?;
        }
    }
    drop(telemetry);
    Ok(())
}
