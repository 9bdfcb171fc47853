//! The sliding window features are computed over, shared by training and online scoring.
//!
//! A model only means something on features computed the way it was trained: the artifact
//! records the window, and ingestion builds its `MetricWindow`s from [`WindowSettings::spec`].

use aurum_domain::{FeatureSchema, MachineType, MetricName, WindowSpec};
use chrono::TimeDelta;
use serde::{Deserialize, Serialize};

use crate::error::ModelError;

/// Six hours: long enough that a window's mean and slope average out the operating noise
/// of single readings (truck duty cycles last about twenty minutes), short enough that a fault
/// developing over days moves the statistics well within the 72 h horizon.
pub const TRAINING_WINDOW_HOURS: i64 = 6;
/// One reading per minute over the window; at faster rates the window keeps the newest 360.
pub const TRAINING_WINDOW_SAMPLES: usize = 360;

/// The window the default models are trained with; ingestion should build its per-metric
/// `MetricWindow`s with the window recorded in the artifact it scores with
/// ([`crate::ModelArtifact::window`]), which is this one unless training chose another.
pub fn training_window() -> WindowSpec {
    WindowSpec::new(
        TimeDelta::hours(TRAINING_WINDOW_HOURS),
        TRAINING_WINDOW_SAMPLES,
    )
    .unwrap_or_default()
}

/// A [`WindowSpec`] as it is stored in an artifact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct WindowSettings {
    pub max_age_s: i64,
    pub max_samples: usize,
}

impl WindowSettings {
    /// The spec these settings describe; an error for a zero or negative age or size, and for
    /// an age beyond what a `TimeDelta` holds (the settings come from artifact files).
    pub fn spec(&self) -> Result<WindowSpec, ModelError> {
        let inconsistent = |e: &dyn std::fmt::Display| {
            ModelError::Inconsistent(format!(
                "window of {} s and {} samples: {e}",
                self.max_age_s, self.max_samples
            ))
        };
        let max_age = TimeDelta::try_seconds(self.max_age_s)
            .ok_or_else(|| inconsistent(&"the age is out of range"))?;
        WindowSpec::new(max_age, self.max_samples).map_err(|e| inconsistent(&e))
    }

    /// Whether an online window matches the one the models were trained with.
    pub fn matches(&self, spec: WindowSpec) -> bool {
        *self == Self::from(spec)
    }
}

impl From<WindowSpec> for WindowSettings {
    fn from(spec: WindowSpec) -> Self {
        Self {
            max_age_s: spec.max_age().num_seconds(),
            max_samples: spec.max_samples(),
        }
    }
}

impl Default for WindowSettings {
    fn default() -> Self {
        training_window().into()
    }
}

/// The metrics of a machine type's catalogue, as metric names.
pub fn catalogue_metrics(machine_type: MachineType) -> Vec<MetricName> {
    machine_type
        .catalogue()
        .iter()
        .filter_map(|spec| MetricName::parse(spec.name).ok())
        .collect()
}

/// The input schema of a machine type's models: window statistics of every catalogue metric,
/// without the baseline z-score (online scoring may not know the machine's baseline).
pub fn schema_for(machine_type: MachineType) -> FeatureSchema {
    FeatureSchema::without_baseline(catalogue_metrics(machine_type))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_training_window_round_trips_through_settings() {
        let settings = WindowSettings::default();
        assert_eq!(settings.max_age_s, 6 * 3_600);
        assert_eq!(settings.max_samples, 360);
        assert_eq!(settings.spec().ok(), Some(training_window()));
        assert!(settings.matches(training_window()));
        assert!(!settings.matches(WindowSpec::default()));
    }

    #[test]
    fn an_age_out_of_range_is_an_error_not_a_panic() {
        for max_age_s in [i64::MAX, i64::MIN, 2_160_666_666_666_666_660, 0, -1] {
            let settings = WindowSettings {
                max_age_s,
                max_samples: 360,
            };
            assert!(settings.spec().is_err(), "{max_age_s}");
        }
    }

    #[test]
    fn every_type_has_a_schema_of_its_whole_catalogue() {
        for t in MachineType::ALL {
            let schema = schema_for(t);
            assert_eq!(schema.metrics().count(), t.catalogue().len());
            assert!(!schema.includes_baseline());
        }
    }
}
