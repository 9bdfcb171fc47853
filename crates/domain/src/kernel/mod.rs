//! The shared kernel: what every context speaks of. Identifiers and roles, machines and their
//! metric catalogue, telemetry messages, the feature vectors that ingestion computes and
//! prediction scores, metered activity, and time-series queries.

pub mod activity;
pub mod catalogue;
pub mod downsampling;
pub mod features;
pub mod identity;
pub mod ids;
pub mod machine;
pub mod profile;
pub mod run_to_failure;
pub mod telemetry;
