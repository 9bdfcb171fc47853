//! `aurum-gateway`: `serve` (default), `migrate` or `audit-retention`.

use std::process::ExitCode;

use aurum_gateway::{Application, GatewayConfig};
use clap::{Parser, Subcommand};

/// Every proxied call allocates (headers, bodies, futures) and frees on the same worker
/// thread; mimalloc's thread-local heaps make that cheaper than the system allocator.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Debug, Parser)]
#[command(name = "aurum-gateway", about = "AurumAI API gateway", version)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the gateway (the default). Applies pending migrations first when admin
    /// credentials are configured (database.admin_user).
    Serve,
    /// Create or upgrade the database schema and roles, then exit.
    Migrate,
    /// Delete audit entries older than `audit.retention_days`, then exit. Runs as the
    /// migration role (database.admin_user): the gateway's own role may not delete history.
    AuditRetention,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    aurum_telemetry::run_service("aurum-gateway", run(cli))
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let config = GatewayConfig::load()?;
    let telemetry = aurum_telemetry::init("aurum-gateway", &config.telemetry)?;
    let migrate_first = config.database.admin_user.is_some();
    match cli.command {
        Some(Command::Migrate) => {
            let applied = aurum_postgres::audit::migrate(&config.database).await?;
            tracing::info!(?applied, "database migrated");
        }
        Some(Command::AuditRetention) => {
            let days = config.audit.retention_days;
            let deleted = aurum_postgres::audit::apply_retention(&config.database, days).await?;
            tracing::info!(deleted, days, "audit retention applied");
        }
        _ => {
            if migrate_first {
                let applied = aurum_postgres::audit::migrate(&config.database).await?;
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
