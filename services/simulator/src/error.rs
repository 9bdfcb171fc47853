//! The simulator's error type.

use std::path::PathBuf;

use aurum_mqtt::MqttError;

/// Everything that can stop the simulator.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    /// A command-line value is out of range or inconsistent with another.
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
    /// A tenant or machine id does not parse.
    #[error("invalid id: {0}")]
    InvalidId(#[from] aurum_domain::IdError),
    /// Reading or writing a file (labels, dataset).
    #[error("cannot write {path}: {source}")]
    File {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Writing to an output stream.
    #[error("I/O error: {0}")]
    Io(#[from] std::io::Error),
    /// Connecting to the MQTT broker.
    #[error(transparent)]
    Mqtt(#[from] MqttError),
    /// Building the HTTP client.
    #[error("HTTP client error: {0}")]
    Http(#[from] reqwest::Error),
}

impl SimError {
    pub(crate) fn file(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        SimError::File {
            path: path.into(),
            source,
        }
    }
}
