//! Simulated run-to-failure data and a model trained on it, shared by the API tests and the
//! benchmark: 36 field lifecycles of 9 machines (readings every 10 minutes, a feature vector
//! every hour), a quarter of the runs held out.

use std::path::PathBuf;

use aurum_models::{train, training_window, Dataset, ModelArtifact, TrainOptions};
use aurum_simulator::dataset::{self, DatasetOptions};
use aurum_simulator::degradation::LifecycleParams;
use aurum_simulator::fleet::FleetSpec;
use chrono::{DateTime, Utc};
use serde::de::DeserializeOwned;
use serde::Serialize;

/// The training runs and the held-out runs.
pub fn simulated_runs() -> (Dataset, Dataset) {
    let options = DatasetOptions {
        runs: 36,
        seed: 21,
        interval_s: 600.0,
        start: DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc),
        machines: FleetSpec::Numbered(9).machines().unwrap(),
        params: LifecycleParams::field(),
    };
    let mut csv = Vec::new();
    dataset::generate(&options, &mut csv).unwrap();
    let data = Dataset::from_sim_csv(csv.as_slice(), training_window(), 6).unwrap();
    data.split_by_run(0.25, 4)
}

/// A model of `version` trained with the default options.
pub fn trained(train_set: &Dataset, version: &str) -> ModelArtifact {
    train(
        train_set,
        &TrainOptions {
            version: version.into(),
            ..TrainOptions::default()
        },
    )
    .unwrap()
}

/// `build()`'s value, cached as JSON in the target directory under `file` (bump the name
/// when the recipe changes). Written aside and renamed: concurrent test processes never read
/// half a file.
pub fn cached<T: Serialize + DeserializeOwned>(file: &str, build: impl FnOnce() -> T) -> T {
    let path = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(file);
    if let Some(value) = std::fs::read(&path)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
    {
        return value;
    }
    let value = build();
    let tmp = path.with_extension(format!("{}.tmp", std::process::id()));
    std::fs::write(&tmp, serde_json::to_vec(&value).unwrap()).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    value
}
