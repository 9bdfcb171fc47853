//! `aurum-prediction`: `serve` (default), `migrate`, and the offline `train`, `evaluate` and
//! `cmapss` commands.

use std::process::ExitCode;

use aurum_prediction::cli::{self, CmapssArgs, EvaluateArgs, TrainArgs};
use aurum_prediction::{Application, PredictionConfig};
use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "aurum-prediction",
    about = "AurumAI failure prediction, alerts and ESG service",
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
    /// Train a model on labelled run-to-failure data and evaluate it on held-out runs.
    Train(TrainArgs),
    /// Evaluate a model artifact on held-out runs.
    Evaluate(EvaluateArgs),
    /// Train and test a RUL regressor on NASA C-MAPSS turbofan files.
    Cmapss(CmapssArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let offline = match &cli.command {
        Some(Command::Train(a)) => Some(cli::run_train(a)),
        Some(Command::Evaluate(a)) => Some(cli::run_evaluate(a)),
        Some(Command::Cmapss(a)) => Some(cli::run_cmapss(a)),
        _ => None,
    };
    if let Some(result) = offline {
        return match result {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("aurum-prediction: {e}");
                ExitCode::FAILURE
            }
        };
    }
    aurum_telemetry::run_service("aurum-prediction", run(cli))
}

async fn run(cli: Cli) -> Result<(), Box<dyn std::error::Error>> {
    let config = PredictionConfig::load()?;
    let telemetry = aurum_telemetry::init("aurum-prediction", &config.telemetry)?;
    match cli.command {
        Some(Command::Migrate) => {
            let applied = aurum_postgres::prediction::migrate(&config.database).await?;
            tracing::info!(?applied, "database migrated");
        }
        _ => {
            if config.database.admin_user.is_some() {
                let applied = aurum_postgres::prediction::migrate(&config.database).await?;
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
