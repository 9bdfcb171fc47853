//! What every context's ports share: the storage error, readiness checks and the store's key
//! for a machine (telemetry, predictions and emissions all refer to machines by it).

mod health;

pub use health::{HealthCheck, HealthStatus};

/// The store's compact key for a machine; rows of every context carry it instead of two
/// strings.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct MachineKey(pub i64);

/// Failures of a storage port, as the application sees them.
///
/// The text is for logs and operators; it may hold driver detail and is never sent to callers.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The store cannot be reached or did not answer in time: retry later.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The store answered but refused the operation.
    #[error("storage refused the operation: {0}")]
    Refused(String),
}

impl StoreError {
    pub fn is_transient(&self) -> bool {
        matches!(self, StoreError::Unavailable(_))
    }
}
