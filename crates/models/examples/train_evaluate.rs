//! Trains on a simulator CSV, evaluates on held-out runs and prints the figures as JSON.
//!
//! `cargo run --release -p aurum-models --example train_evaluate -- RUNS.csv [EVERY_K_ROWS]
//! [TEST_FRACTION] [ARTIFACT_OUT]`

#![allow(clippy::print_stdout)]

use std::path::PathBuf;
use std::time::Instant;

use aurum_models::{evaluate, train, training_window, AlertPolicy, Dataset, TrainOptions};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let csv = PathBuf::from(
        args.next()
            .ok_or("usage: train_evaluate RUNS.csv [K] [TEST_FRACTION] [OUT]")?,
    );
    let every_k: usize = args.next().map_or(Ok(60), |s| s.parse())?;
    let test_fraction: f64 = args.next().map_or(Ok(0.3), |s| s.parse())?;
    let out = args.next().map(PathBuf::from);

    let started = Instant::now();
    let data = Dataset::from_sim_csv_path(&csv, training_window(), every_k)?;
    let features_s = started.elapsed().as_secs_f64();
    let (train_set, test_set) = data.split_by_run(test_fraction, 2026);

    let started = Instant::now();
    let mut artifact = train(&train_set, &TrainOptions::default())?;
    let train_s = started.elapsed().as_secs_f64();

    let report = evaluate(&artifact, &test_set, &AlertPolicy::default());

    // Latency of scoring one machine, as the service does.
    let sample = test_set
        .samples
        .iter()
        .find(|s| artifact.schema(s.machine_type).is_some())
        .ok_or("no test sample")?;
    let started = Instant::now();
    let rounds = 2_000;
    for _ in 0..rounds {
        artifact.score(sample.machine_type, &sample.features)?;
    }
    let score_us = started.elapsed().as_secs_f64() * 1e6 / f64::from(rounds);

    artifact.evaluation = Some(report.clone());
    let bytes = artifact.to_json()?;
    if let Some(path) = out {
        artifact.save(&path)?;
    }
    let summary = serde_json::json!({
        "samples": data.samples.len(),
        "train_runs": train_set.run_ids().len(),
        "test_runs": test_set.run_ids().len(),
        "features_s": features_s,
        "train_s": train_s,
        "score_one_us": score_us,
        "artifact_bytes": bytes.len(),
        "thresholds": artifact.types.iter().map(|t| (t.machine_type.as_str(), t.alert_threshold)).collect::<Vec<_>>(),
        "report": report,
    });
    println!("{}", serde_json::to_string_pretty(&summary)?);
    Ok(())
}
