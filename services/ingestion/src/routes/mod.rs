//! HTTP routes of the ingestion service (`/v1`).

pub mod machines;
pub mod telemetry;
