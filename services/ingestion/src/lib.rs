//! AurumAI ingestion: telemetry from MQTT (shared subscription) and HTTP batches, validated
//! against the machine's profile, written idempotently in batches to PostgreSQL, with every
//! rejected reading quarantined with its reason.

pub mod app;
pub mod config;
pub mod features;
pub mod metrics;
pub mod mqtt_source;
pub mod pipeline;
pub mod profiles;
pub mod routes;
pub mod spool;
pub mod writer;

pub use app::Application;
pub use config::IngestionConfig;
