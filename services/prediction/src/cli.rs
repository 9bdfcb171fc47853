//! The offline commands: train, evaluate, and the C-MAPSS benchmark.

use std::io::Write;
use std::path::{Path, PathBuf};

use aurum_models::{
    cmapss_run, evaluate, train, training_window, AlertSettings, CmapssOptions, Dataset,
    EvaluationReport, ModelArtifact, ModelError, TrainOptions,
};
use clap::Args;
use serde::Serialize;

#[derive(Debug, Args)]
pub struct TrainArgs {
    /// Labelled run-to-failure data, as `aurum-sim dataset` writes it.
    #[arg(long)]
    pub data: PathBuf,
    /// Where to write the model artifact.
    #[arg(long)]
    pub out: PathBuf,
    /// Model version (default: today's date).
    #[arg(long)]
    pub model_version: Option<String>,
    #[command(flatten)]
    pub split: SplitArgs,
}

#[derive(Debug, Args)]
pub struct EvaluateArgs {
    #[arg(long)]
    pub model: PathBuf,
    #[arg(long)]
    pub data: PathBuf,
    /// Evaluate on every run of `--data` (a dataset the model never saw, e.g. generated with
    /// another seed) instead of the held-out share of the training split.
    #[arg(long)]
    pub all_runs: bool,
    #[command(flatten)]
    pub split: SplitArgs,
}

/// How a dataset is read and split into training and held-out runs. `train` and `evaluate`
/// given the same values split identically, so `evaluate` sees only runs `train` held out.
#[derive(Debug, Args)]
pub struct SplitArgs {
    /// One feature vector every K rows of a machine (12 with 5-minute rows: one per hour).
    #[arg(long, default_value_t = 12)]
    pub every_k_rows: usize,
    /// Share of the runs held out from training, for evaluation.
    #[arg(long, default_value_t = 0.3)]
    pub holdout: f64,
    #[arg(long, default_value_t = 2026)]
    pub split_seed: u64,
}

#[derive(Debug, Args)]
pub struct CmapssArgs {
    #[arg(long)]
    pub train: PathBuf,
    #[arg(long)]
    pub test: PathBuf,
    #[arg(long)]
    pub rul: PathBuf,
    /// Write `unit,predicted_rul` per test engine here.
    #[arg(long)]
    pub predictions: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Model(#[from] ModelError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    #[error("cannot print the result: {0}")]
    Print(String),
}

fn open(path: &Path) -> Result<std::fs::File, CliError> {
    std::fs::File::open(path).map_err(|source| CliError::Io {
        path: path.display().to_string(),
        source,
    })
}

#[allow(clippy::print_stdout)]
fn print_json<T: Serialize>(value: &T) -> Result<(), CliError> {
    let text = serde_json::to_string_pretty(value).map_err(|e| CliError::Print(e.to_string()))?;
    println!("{text}");
    Ok(())
}

fn split(args: &SplitArgs, data: &Path) -> Result<(Dataset, Dataset), CliError> {
    let dataset = Dataset::from_sim_csv_path(data, training_window(), args.every_k_rows)?;
    Ok(dataset.split_by_run(args.holdout, args.split_seed))
}

/// Trains on the training runs, evaluates on the held-out ones, and writes the artifact
/// with its evaluation.
pub fn run_train(args: &TrainArgs) -> Result<(), CliError> {
    let (train_set, test_set) = split(&args.split, &args.data)?;
    let mut options = TrainOptions::default();
    if let Some(v) = &args.model_version {
        options.version.clone_from(v);
    }
    let mut artifact = train(&train_set, &options)?;
    let report = evaluate(&artifact, &test_set, &options.policy);
    artifact.evaluation = Some(report.clone());
    artifact.save(&args.out)?;
    print_json(&serde_json::json!({
        "version": artifact.version,
        "out": args.out.display().to_string(),
        "train_runs": train_set.run_ids().len(),
        "held_out_runs": test_set.run_ids().len(),
        "evaluation": report,
    }))
}

pub fn run_evaluate(args: &EvaluateArgs) -> Result<(), CliError> {
    let model = ModelArtifact::load(&args.model)?;
    let test_set = if args.all_runs {
        Dataset::from_sim_csv_path(&args.data, training_window(), args.split.every_k_rows)?
    } else {
        split(&args.split, &args.data)?.1
    };
    let report: EvaluationReport = evaluate(&model, &test_set, &AlertSettings::default());
    print_json(&serde_json::json!({
        "version": model.version,
        "runs": test_set.run_ids().len(),
        "evaluation": report,
    }))
}

pub fn run_cmapss(args: &CmapssArgs) -> Result<(), CliError> {
    let report = cmapss_run(
        open(&args.train)?,
        open(&args.test)?,
        open(&args.rul)?,
        &CmapssOptions::default(),
    )?;
    if let Some(path) = &args.predictions {
        let io = |source| CliError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut out = std::io::BufWriter::new(std::fs::File::create(path).map_err(io)?);
        writeln!(out, "unit,predicted_rul").map_err(io)?;
        for (unit, rul) in &report.predictions {
            writeln!(out, "{unit},{rul:.2}").map_err(io)?;
        }
        out.flush().map_err(io)?;
    }
    print_json(&serde_json::json!({
        "test_rmse": report.rmse,
        "test_mae": report.mae,
        "nasa_score": report.nasa_score,
        "train_units": report.train_units,
        "test_units": report.test_units,
        "channels": report.channels,
    }))
}
