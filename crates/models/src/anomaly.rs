//! The anomaly detector: how far a feature vector lies from the machine type's healthy
//! operation, learned from windows of the `normal` phase only.
//!
//! Per model input, a robust centre and spread (median and scaled median absolute deviation,
//! so the occasional odd window in healthy data does not widen the baseline); the raw score is
//! the root mean square of the clipped robust z-scores; the threshold is a high quantile of
//! the raw scores of healthy windows. The reported score `s / (s + threshold)` lies in
//! [0, 1) and crosses 0.5 exactly at the threshold.

use serde::{Deserialize, Serialize};

use crate::metrics::{median, quantile};

/// A z-score beyond this says "far off" already; clipping keeps one wild feature (a slope
/// over a nearly empty window) from dominating the score.
const Z_CLIP: f64 = 10.0;
/// Makes the median absolute deviation of Gaussian data estimate its standard deviation.
const MAD_TO_STD: f64 = 1.4826;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnomalyDetector {
    centre: Vec<f64>,
    scale: Vec<f64>,
    threshold: f64,
    quantile: f64,
}

impl AnomalyDetector {
    /// Learns the healthy baseline from `healthy` rows (model inputs) and calibrates the
    /// threshold at their `quantile` raw score. `None` without rows.
    pub fn fit(healthy: &[Vec<f64>], calibration_quantile: f64) -> Option<Self> {
        let width = healthy.first()?.len();
        let mut centre = Vec::with_capacity(width);
        let mut scale = Vec::with_capacity(width);
        for j in 0..width {
            let column: Vec<f64> = healthy.iter().map(|row| row[j]).collect();
            let m = median(&column)?;
            let deviations: Vec<f64> = column.iter().map(|v| (v - m).abs()).collect();
            let mad = median(&deviations)?;
            let n = column.len() as f64;
            let std = (column.iter().map(|v| (v - m).powi(2)).sum::<f64>() / n).sqrt();
            // Floors: a feature constant in most healthy windows (a kurtosis of 0) still has
            // a spread in the rest, and a constant feature must not divide by zero.
            let spread = (MAD_TO_STD * mad)
                .max(0.1 * std)
                .max(1e-6 * m.abs())
                .max(1e-9);
            centre.push(m);
            scale.push(spread);
        }
        let mut detector = Self {
            centre,
            scale,
            threshold: 1.0,
            quantile: calibration_quantile,
        };
        let raw: Vec<f64> = healthy.iter().map(|row| detector.raw_score(row)).collect();
        detector.threshold = quantile(&raw, calibration_quantile)?.max(1e-9);
        Some(detector)
    }

    pub fn width(&self) -> usize {
        self.centre.len()
    }

    pub fn threshold(&self) -> f64 {
        self.threshold
    }

    /// Robust z-score of input `j`, clipped to ±[`Z_CLIP`].
    pub fn z(&self, j: usize, value: f64) -> f64 {
        match (self.centre.get(j), self.scale.get(j)) {
            (Some(c), Some(s)) => ((value - c) / s).clamp(-Z_CLIP, Z_CLIP),
            _ => 0.0,
        }
    }

    /// Root mean square of the clipped z-scores.
    pub fn raw_score(&self, row: &[f64]) -> f64 {
        if row.is_empty() {
            return 0.0;
        }
        let sum: f64 = row
            .iter()
            .enumerate()
            .map(|(j, &v)| self.z(j, v).powi(2))
            .sum();
        (sum / row.len() as f64).sqrt()
    }

    /// The anomaly score in [0, 1): 0.5 at the calibrated threshold.
    pub fn score(&self, row: &[f64]) -> f64 {
        let s = self.raw_score(row);
        s / (s + self.threshold)
    }

    pub(crate) fn is_consistent(&self) -> bool {
        self.centre.len() == self.scale.len()
            && self.threshold.is_finite()
            && self.threshold > 0.0
            && self.centre.iter().all(|c| c.is_finite())
            && self.scale.iter().all(|s| s.is_finite() && *s > 0.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn healthy_rows_score_low_and_shifted_ones_high() {
        let healthy: Vec<Vec<f64>> = (0..200)
            .map(|i| {
                vec![
                    10.0 + f64::from(i % 7) * 0.1,
                    -1.0 + f64::from(i % 5) * 0.05,
                ]
            })
            .collect();
        let d = AnomalyDetector::fit(&healthy, 0.99).unwrap();
        let typical = d.score(&[10.3, -0.9]);
        let shifted = d.score(&[14.0, -0.9]);
        assert!(typical < 0.5, "{typical}");
        assert!(shifted > 0.5, "{shifted}");
        assert!(shifted < 1.0);
        assert!(d.is_consistent());
    }

    #[test]
    fn constant_features_do_not_divide_by_zero() {
        let healthy = vec![vec![0.0, 5.0]; 50];
        let d = AnomalyDetector::fit(&healthy, 0.99).unwrap();
        assert!(d.score(&[0.0, 5.0]).is_finite());
        assert!(d.score(&[1.0, 5.0]) > 0.5);
    }
}
