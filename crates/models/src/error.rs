//! The crate's errors: one enum for training, data and artifacts, one for scoring.

use aurum_domain::{FeatureError, MachineType};

/// Failures of loading data, training, and reading or writing artifacts.
#[derive(Debug, thiserror::Error)]
pub enum ModelError {
    #[error("reading the dataset failed at line {line}: {message}")]
    Csv { line: u64, message: String },
    #[error("the dataset header is not one written by `aurum-sim dataset`: {0}")]
    Header(String),
    #[error("reading the C-MAPSS {file} file failed at line {line}: {message}")]
    Cmapss {
        file: &'static str,
        line: usize,
        message: String,
    },
    #[error("training the C-MAPSS RUL regressor failed: {0}")]
    CmapssTraining(String),
    #[error("invalid option: {0}")]
    InvalidOption(String),
    #[error("not enough data to train the {machine_type} models: {reason}")]
    NotEnoughData {
        machine_type: MachineType,
        reason: String,
    },
    #[error("training the {machine_type} {model} failed: {message}")]
    Training {
        machine_type: MachineType,
        model: &'static str,
        message: String,
    },
    #[error("the model artifact is not valid JSON or is truncated: {0}")]
    Malformed(String),
    #[error("the model artifact has format {found:?}, this build reads {expected:?}")]
    UnsupportedFormat { expected: String, found: String },
    #[error(
        "the model artifact's checksum does not match its payload (corrupted or tampered \
         with): recorded {recorded}, computed {computed}"
    )]
    ChecksumMismatch { recorded: String, computed: String },
    #[error(
        "the {machine_type} model was trained on features {found:?}, but that type's \
         catalogue gives {expected:?}"
    )]
    SchemaMismatch {
        machine_type: MachineType,
        expected: Vec<String>,
        found: Vec<String>,
    },
    #[error("the model artifact is inconsistent: {0}")]
    Inconsistent(String),
    #[error("serialising the model artifact failed: {0}")]
    Serialise(String),
    #[error("reading {path} failed: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
}

/// Why a feature vector could not be scored.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ScoreError {
    #[error("the model artifact has no models for machine type {0}")]
    UnsupportedMachineType(MachineType),
    #[error("the feature vector does not fit the model's schema: {0}")]
    Features(#[from] FeatureError),
    #[error("feature {feature} is not a finite number ({value})")]
    NonFinite { feature: String, value: f64 },
    #[error("the model failed to predict: {0}")]
    Prediction(String),
}
