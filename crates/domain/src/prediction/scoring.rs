//! What the platform predicts for a machine at an instant.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One input's share in a prediction, for the planner's "why".
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureContribution {
    /// A flattened feature name, `metric.statistic` (see `FeatureSchema::names`).
    pub feature: String,
    pub weight: f64,
}

/// A model's assessment of one machine from the features of the window ending at `at`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Prediction {
    pub at: DateTime<Utc>,
    pub model_version: String,
    /// 0 (healthy) to 100 (failure imminent): what alerts and the fleet view rank by.
    pub risk_score: f64,
    /// Probability of a failure within `horizon_h` hours.
    pub failure_probability: f64,
    pub horizon_h: f64,
    /// Remaining useful life, hours.
    pub rul_hours: f64,
    /// 0 (like the healthy baseline) to 1 (far outside it).
    pub anomaly_score: f64,
    /// 0 to 1: how much the model's parts agree and how familiar the inputs are.
    pub confidence: f64,
    /// The features that drove the prediction, largest weight first.
    pub top_features: Vec<FeatureContribution>,
}

impl Prediction {
    /// The anomaly score on the risk score's 0..=100 scale, for alert thresholds.
    pub fn anomaly_percent(&self) -> f64 {
        self.anomaly_score * 100.0
    }
}
