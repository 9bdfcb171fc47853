//! The ingestion context: the machine registry and the telemetry store with its quarantine.

mod machines;
mod telemetry;

pub use machines::{MachineRegistry, RegisterError, RegisteredMachine};
pub use telemetry::{
    QuarantineRecord, Source, StoredMessage, TelemetryMaintenance, TelemetryStore, WriteBatch,
    WriteOutcome,
};
