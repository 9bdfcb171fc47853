//! The ingestion context: validating telemetry against the machine's profile and the clock,
//! and the maintenance events recorded against machines.

pub mod events;
pub mod validation;

pub use events::{EventDraft, EventKind, MaintenanceEvent, NewEvent};
pub use validation::{RejectReason, Rejection, ValidatedMessage, ValidationPolicy};
