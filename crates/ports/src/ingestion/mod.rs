//! The ingestion context: the machine registry and the telemetry store with its quarantine.

mod machines;
mod profiles;
mod telemetry;

pub use machines::{MachineRegistry, RegisterError, RegisteredMachine};
pub use profiles::{ProfileChange, ProfileError, ProfileStore};
pub use telemetry::{
    QuarantineRecord, Source, StoredMessage, TelemetryMaintenance, TelemetryStore, WriteBatch,
    WriteOutcome,
};
