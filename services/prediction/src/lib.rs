//! AurumAI prediction: scores feature vectors from ingestion with the active model (failure
//! risk within a horizon, remaining useful life, anomaly), raises and tracks alerts, and
//! accounts fuel and electricity for ESG emission reports.

pub mod app;
pub mod cli;
pub mod config;
pub mod esg;
pub mod machine_traces;
pub mod metrics;
pub mod models;
pub mod routes;
pub mod scoring;

pub use app::Application;
pub use config::PredictionConfig;
