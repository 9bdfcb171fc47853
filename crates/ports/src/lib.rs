//! Ports: the traits AurumAI's application code needs from the outside world.
//!
//! Adapters (`crates/adapters/*`) implement them; services depend on these traits only and pick
//! the adapters in `main.rs`. No database, broker or web framework type appears here.

pub mod audit;
pub mod auth;
pub mod devices;
pub mod esg;
pub mod federation;
pub mod health;
pub mod machines;
pub mod prediction;
pub mod telemetry;

pub use audit::{AuditEntry, AuditQuery, AuditStore, ChainVerification, NewAuditEntry};
pub use auth::{
    AuthorizationCode, ClientRecord, ClientStore, CodeRedemption, CreateOutcome, GrantStore,
    LoginAttemptState, LoginAttemptStore, NewUser, RefreshRotation, RefreshTokenRecord,
    SecurityEventRecord, SecurityEventStore, SigningKeyRecord, SigningKeyStore, UserPatch,
    UserRecord, UserStore, GRANT_TYPES,
};
pub use devices::{BrokerAdminError, DeviceBroker, DeviceRecord, DeviceStore, NewDeviceError};
pub use esg::{AddFactorError, EsgStore, RecordOutcome, ReportData, ReportQuery};
pub use federation::{FederationStore, PendingFederation};
pub use health::{HealthCheck, HealthStatus};
pub use machines::{MachineKey, MachineRegistry, RegisterError, RegisteredMachine};
pub use prediction::{
    Alert, AlertChange, AlertFilter, AlertStore, AlertTransition, AlertUpdate, FleetEntry,
    MachineIdentity, ModelRecord, ModelRegistry, NewModel, PredictionStore, RecentScores,
    RegisterModelOutcome, TrackedMachine,
};
pub use telemetry::{
    QuarantineRecord, Source, StoredMessage, TelemetryMaintenance, TelemetryStore, WriteBatch,
    WriteOutcome,
};

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
