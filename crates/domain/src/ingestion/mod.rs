//! The ingestion context: validating telemetry against the machine's catalogue and the clock.

pub mod validation;

pub use validation::{RejectReason, Rejection, ValidatedMessage, ValidationPolicy};
