//! The ingestion context: the machine registry, the machine profiles, the maintenance log, and
//! the telemetry store with its quarantine.

mod events;
mod machines;
mod profiles;
mod telemetry;

pub use events::{EventError, EventQuery, MaintenanceLog};
pub use machines::{MachineRegistry, RegisterError, RegisteredMachine};
pub use profiles::{ProfileChange, ProfileError, ProfileStore};
pub use telemetry::{
    QuarantineRecord, Source, StoredMessage, TelemetryMaintenance, TelemetryStore, WriteBatch,
    WriteOutcome,
};
