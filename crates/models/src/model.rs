//! The three models of one machine type and how they score a feature vector.

use aurum_domain::{FeatureSchema, FeatureVector, MachineType};
use serde::{Deserialize, Serialize};

use crate::anomaly::AnomalyDetector;
use crate::error::ScoreError;
use crate::forest::Forest;
use crate::score::{FeatureContribution, Score};

/// How many contributions a score lists.
pub const TOP_FEATURES: usize = 5;

/// Statistics the models leave out: a window's sample count depends on the reporting rate
/// (a device sending every second or every minute), not on the machine's health.
const EXCLUDED_STATISTICS: [&str; 1] = ["count"];

/// The positions, in a flattened vector of `schema`, of the models' inputs.
pub fn model_columns(schema: &FeatureSchema) -> (Vec<usize>, Vec<String>) {
    schema
        .names()
        .into_iter()
        .enumerate()
        .filter(|(_, name)| {
            !EXCLUDED_STATISTICS
                .iter()
                .any(|s| name.rsplit('.').next() == Some(s))
        })
        .unzip()
}

/// Flattens `features` with `schema` and keeps the `columns` (named `names`), refusing a
/// non-finite value rather than feeding it to a model.
pub fn extract_inputs(
    schema: &FeatureSchema,
    columns: &[usize],
    names: &[String],
    features: &FeatureVector,
) -> Result<Vec<f64>, ScoreError> {
    let flat = features.flatten(schema)?;
    let mut row = Vec::with_capacity(columns.len());
    for (&c, name) in columns.iter().zip(names) {
        let value = flat.get(c).copied().unwrap_or(f64::NAN);
        if !value.is_finite() {
            return Err(ScoreError::NonFinite {
                feature: name.clone(),
                value,
            });
        }
        row.push(value);
    }
    Ok(row)
}

/// The models of one machine type.
#[derive(Debug, Serialize, Deserialize)]
pub struct TypeModels {
    pub machine_type: MachineType,
    /// How feature vectors are flattened for these models.
    pub schema: FeatureSchema,
    /// Names of the model inputs, a subset of the schema's features.
    pub inputs: Vec<String>,
    /// Positions of the inputs in the flattened vector.
    pub(crate) columns: Vec<usize>,
    pub(crate) anomaly: AnomalyDetector,
    pub(crate) failure: Forest,
    pub(crate) rul: Forest,
    /// Range of each input in training, for the confidence.
    pub(crate) input_min: Vec<f64>,
    pub(crate) input_max: Vec<f64>,
    /// Alert threshold on the failure probability, chosen on validation runs.
    pub alert_threshold: f64,
    pub training_runs: usize,
    pub training_samples: usize,
}

impl TypeModels {
    /// The model inputs of a feature vector.
    pub fn inputs_of(&self, features: &FeatureVector) -> Result<Vec<f64>, ScoreError> {
        extract_inputs(&self.schema, &self.columns, &self.inputs, features)
    }

    pub fn anomaly(&self) -> &AnomalyDetector {
        &self.anomaly
    }

    pub fn failure_probability(&self, row: &[f64]) -> Result<f64, ScoreError> {
        let p = self.failure.predict(row).map_err(ScoreError::Prediction)?;
        Ok(p.clamp(0.0, 1.0))
    }

    pub fn rul_hours(&self, row: &[f64], cap_h: f64) -> Result<f64, ScoreError> {
        let rul = self.rul.predict(row).map_err(ScoreError::Prediction)?;
        Ok(rul.clamp(0.0, cap_h))
    }

    /// Importance of each input for the failure classifier (sums to 1).
    pub fn importances(&self) -> &[f64] {
        self.failure.importances()
    }

    /// Scores one row of model inputs.
    pub fn score_inputs(&self, row: &[f64], rul_cap_h: f64) -> Result<Score, ScoreError> {
        let failure_probability = self.failure_probability(row)?;
        let rul_hours = self.rul_hours(row, rul_cap_h)?;
        let anomaly_score = self.anomaly.score(row);
        Ok(Score {
            failure_probability,
            risk_score: (100.0 * failure_probability).clamp(0.0, 100.0),
            rul_hours,
            anomaly_score,
            confidence: self.confidence(row, failure_probability),
            top_features: self.contributions(row),
        })
    }

    /// `(1 − 4p(1−p)) × coverage`: certainty of the probability (1 at 0 or 1, 0 at 0.5)
    /// times the fraction of inputs inside the range seen in training, since a forest only
    /// extrapolates flat beyond it.
    fn confidence(&self, row: &[f64], p: f64) -> f64 {
        let certainty = 1.0 - 4.0 * p * (1.0 - p);
        let inside = row
            .iter()
            .zip(self.input_min.iter().zip(&self.input_max))
            .filter(|(v, (lo, hi))| (**lo..=**hi).contains(*v))
            .count();
        let coverage = if row.is_empty() {
            0.0
        } else {
            inside as f64 / row.len() as f64
        };
        (certainty * coverage).clamp(0.0, 1.0)
    }

    /// Contribution of input j: |robust z-score against the healthy baseline| × the
    /// classifier's importance of j, normalised over all inputs. An input counts when it is
    /// both unusual for this machine type and one the classifier relies on.
    fn contributions(&self, row: &[f64]) -> Vec<FeatureContribution> {
        let importances = self.failure.importances();
        let raw: Vec<f64> = row
            .iter()
            .enumerate()
            .map(|(j, &v)| self.anomaly.z(j, v).abs() * importances.get(j).copied().unwrap_or(0.0))
            .collect();
        let total: f64 = raw.iter().sum();
        if !(total > 0.0 && total.is_finite()) {
            return Vec::new();
        }
        let mut order: Vec<usize> = (0..raw.len()).filter(|&j| raw[j] > 0.0).collect();
        order.sort_by(|&a, &b| raw[b].total_cmp(&raw[a]));
        order
            .into_iter()
            .take(TOP_FEATURES)
            .map(|j| FeatureContribution {
                feature: self.inputs[j].clone(),
                weight: raw[j] / total,
            })
            .collect()
    }

    /// Whether the parts agree on the number of inputs and the stored values are sane.
    pub(crate) fn check(&self) -> Result<(), String> {
        let (columns, names) = model_columns(&self.schema);
        let n = columns.len();
        if columns != self.columns || names != self.inputs {
            return Err(format!(
                "{}: the model inputs do not follow the schema",
                self.machine_type
            ));
        }
        let sizes = [
            self.anomaly.width(),
            self.failure.inputs(),
            self.rul.inputs(),
            self.input_min.len(),
            self.input_max.len(),
            self.failure.importances().len(),
        ];
        if sizes.iter().any(|&s| s != n) {
            return Err(format!(
                "{}: parts disagree on the number of inputs ({n} expected, got {sizes:?})",
                self.machine_type
            ));
        }
        if !self.anomaly.is_consistent() {
            return Err(format!("{}: invalid anomaly baseline", self.machine_type));
        }
        if !(self.alert_threshold.is_finite() && (0.0..=1.0).contains(&self.alert_threshold)) {
            return Err(format!(
                "{}: alert threshold {} outside [0, 1]",
                self.machine_type, self.alert_threshold
            ));
        }
        Ok(())
    }
}
