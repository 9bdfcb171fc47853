//! The prediction service's Prometheus metrics.

use prometheus::{HistogramOpts, HistogramVec, IntCounterVec, IntGauge, Opts, Registry};

#[derive(Debug, Clone)]
pub struct PredictionMetrics {
    /// Feature vectors received, by outcome: scored, unscored (no model), rejected.
    pub vectors: IntCounterVec,
    /// Time to score and store a batch, by route (features, predict).
    pub batch_seconds: HistogramVec,
    /// Alert changes by category and change (raised, updated, cleared).
    pub alerts: IntCounterVec,
    /// 1 while a model is loaded.
    pub model_loaded: IntGauge,
}

impl PredictionMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let vectors = IntCounterVec::new(
            Opts::new(
                "aurum_prediction_vectors_total",
                "Feature vectors received, by outcome",
            ),
            &["outcome"],
        )?;
        let batch_seconds = HistogramVec::new(
            HistogramOpts::new(
                "aurum_prediction_batch_seconds",
                "Time to score and store a batch of feature vectors",
            )
            .buckets(vec![
                0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
            ]),
            &["route"],
        )?;
        let alerts = IntCounterVec::new(
            Opts::new("aurum_alerts_total", "Alert changes by category and change"),
            &["category", "change"],
        )?;
        let model_loaded = IntGauge::new(
            "aurum_prediction_model_loaded",
            "1 while a model is loaded and scoring",
        )?;
        registry.register(Box::new(vectors.clone()))?;
        registry.register(Box::new(batch_seconds.clone()))?;
        registry.register(Box::new(alerts.clone()))?;
        registry.register(Box::new(model_loaded.clone()))?;
        Ok(Self {
            vectors,
            batch_seconds,
            alerts,
            model_loaded,
        })
    }
}
