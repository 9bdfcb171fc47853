//! Small simulator datasets for the tests.

#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use aurum_models::{training_window, Dataset};
use aurum_simulator::dataset::{self, DatasetOptions};
use aurum_simulator::degradation::LifecycleParams;
use aurum_simulator::fleet::FleetSpec;
use chrono::{DateTime, Utc};

/// `runs` field-lifecycle runs over `machines` machines, one reading every 10 minutes,
/// one feature vector per hour.
pub fn field_dataset(runs: usize, machines: usize, seed: u64) -> Dataset {
    let options = DatasetOptions {
        runs,
        seed,
        interval_s: 600.0,
        start: DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc),
        machines: FleetSpec::Numbered(machines).machines().unwrap(),
        params: LifecycleParams::field(),
    };
    let mut csv = Vec::new();
    dataset::generate(&options, &mut csv).unwrap();
    Dataset::from_sim_csv(csv.as_slice(), training_window(), 6).unwrap()
}
