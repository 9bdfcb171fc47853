//! PostgreSQL adapters of the prediction service: model registry, predictions, alerts.

mod alerts;
mod models;
mod scores;

pub use alerts::PgAlertStore;
pub use models::PgModelRegistry;
pub use scores::PgPredictionStore;
