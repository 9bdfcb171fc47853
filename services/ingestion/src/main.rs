//! `aurum-ingestion`: `serve` (default) or `migrate`.

use std::process::ExitCode;

use aurum_ingestion::{Application, IngestionConfig};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "aurum-ingestion",
    about = "AurumAI telemetry ingestion service",
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
}

fn main() -> ExitCode {
    // With TZ unset, glibc re-reads /etc/localtime on every localtime() call, which the MQTT
    // client library makes for each message. Naming the zone lets glibc cache it. Done first,
    // while the process is still single-threaded.
    if std::env::var_os("TZ").is_none() {
        std::env::set_var("TZ", ":/etc/localtime");
    }
    aurum_telemetry::run_service("aurum-ingestion", run(Cli::parse()))
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let config = IngestionConfig::load()?;
    let telemetry = aurum_telemetry::init("aurum-ingestion", &config.telemetry)?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Migrate => {
            let applied = aurum_postgres::ingestion::migrate(&config.database).await?;
            tracing::info!(?applied, "database migrated");
        }
        Command::Serve => {
            if config.database.admin_user.is_some() {
                let applied = aurum_postgres::ingestion::migrate(&config.database).await?;
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
