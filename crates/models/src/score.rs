//! What scoring one machine's features returns.

pub use aurum_domain::prediction::FeatureContribution;
use serde::{Deserialize, Serialize};

/// The models' view of one machine at one time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Score {
    /// Probability of a breakdown within the artifact's horizon (`horizon_h`).
    pub failure_probability: f64,
    /// `100 × failure_probability`, for dashboards: 0 (no risk) to 100.
    pub risk_score: f64,
    /// Predicted hours to the breakdown, at most the artifact's RUL cap (`rul_cap_h`), which
    /// then reads as "at least this long".
    pub rul_hours: f64,
    /// Distance from healthy operation in [0, 1): 0.5 at the threshold calibrated on healthy
    /// data, above it unusual.
    pub anomaly_score: f64,
    /// How much to trust the probability, in [0, 1]: high when it is far from 0.5 and the
    /// inputs lie within the range seen in training.
    pub confidence: f64,
    /// The inputs that weigh most in this prediction, strongest first; each weight is the
    /// input's share of the sum of all inputs' contributions, in (0, 1].
    pub top_features: Vec<FeatureContribution>,
}
