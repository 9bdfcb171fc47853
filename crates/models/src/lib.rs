//! Failure-prediction models: an anomaly detector against a healthy baseline, a classifier
//! for failure within a horizon, and a remaining-useful-life regressor; training from
//! labelled run-to-failure data, evaluation on held-out runs, and versioned artifacts.
//!
//! - [`dataset`]: simulator CSV -> labelled feature vectors, computed as ingestion does online.
//! - [`train()`], [`evaluate()`]: per machine type models; figures on held-out runs.
//! - [`ModelArtifact`]: the checksummed JSON file the prediction service loads and scores with.
//! - [`cmapss`]: the NASA turbofan (C-MAPSS) benchmark, for a RUL regressor on public data.

pub mod alerting;
pub mod anomaly;
pub mod artifact;
pub mod cmapss;
pub mod dataset;
pub mod error;
pub mod evaluate;
pub mod forest;
pub mod metrics;
pub mod model;
mod runs;
pub mod score;
pub mod train;
pub mod window;

pub use alerting::AlertSettings;
pub use artifact::{ModelArtifact, ARTIFACT_FORMAT, ARTIFACT_FORMAT_VERSION};
pub use cmapss::{cmapss_run, CmapssOptions, CmapssReport};
pub use dataset::{Dataset, FeatureExtractor, LabelledSample, ReadingRow, RunPhase};
pub use error::{ModelError, ScoreError};
pub use evaluate::{evaluate, EvaluationFigures, EvaluationReport, TypeEvaluation};
pub use forest::ForestParams;
pub use model::TypeModels;
pub use score::{FeatureContribution, Score};
pub use train::{train, TrainOptions};
pub use window::{schema_for, training_window, WindowSettings};

/// Reads a simulator CSV file with the default training window, one vector every
/// `every_k_rows` readings, and trains.
pub fn train_from_csv_path(
    path: &std::path::Path,
    every_k_rows: usize,
    opts: &TrainOptions,
) -> Result<ModelArtifact, ModelError> {
    let data = Dataset::from_sim_csv_path(path, training_window(), every_k_rows)?;
    train(&data, opts)
}
