//! AurumAI prediction: scores feature vectors from ingestion with the active model (failure
//! risk within a horizon, remaining useful life, anomaly), raises and tracks alerts, and
//! accounts fuel and electricity for ESG emission reports.

pub mod routes;
