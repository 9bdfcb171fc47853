//! The training-data reader: `aurum_models::Dataset::from_sim_csv` (the CSV `aurum-sim
//! dataset` writes: label columns, then one column per metric) with the training window,
//! which runs the online feature computation (`FeatureExtractor`, `MetricWindow`,
//! `FeatureVector::from_windows`) over the rows.
//!
//! The first byte picks `every_k_rows` (1-8); the rest is the CSV.
//!
//! Properties: a dataset has at most one sample per data row; its labels are sound
//! (non-negative, finite time to failure; time since the run started never negative); every
//! feature statistic is finite, with min <= max and non-negative spreads (the feature code's
//! promise for finite samples, and non-finite values never get into a window).
#![no_main]

use aurum_models::{training_window, Dataset, WindowSettings};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&k, csv)) = data.split_first() else {
        return;
    };
    let every_k_rows = usize::from(k % 8) + 1;
    let Ok(ds) = Dataset::from_sim_csv(csv, training_window(), every_k_rows) else {
        return;
    };
    assert_eq!(ds.every_k_rows, every_k_rows);
    assert_eq!(ds.window, WindowSettings::from(training_window()));
    let rows = csv.split(|b| *b == b'\n').count();
    assert!(ds.samples.len() <= rows);
    for s in &ds.samples {
        assert!(!s.run_id.is_empty() && !s.machine_id.is_empty());
        assert!(s.time_to_failure_h.is_finite() && s.time_to_failure_h >= 0.0);
        assert!(
            s.hours_since_run_start.is_finite() && s.hours_since_run_start >= 0.0,
            "{s:?}"
        );
        for (metric, f) in &s.features.metrics {
            let st = &f.stats;
            let values = [
                st.mean,
                st.std,
                st.min,
                st.max,
                st.slope,
                st.rms,
                st.kurtosis,
                st.peak_to_peak,
            ];
            assert!(values.iter().all(|v| v.is_finite()), "{metric}: {st:?}");
            assert!(st.count >= 1 && st.min <= st.max, "{metric}: {st:?}");
            assert!(st.std >= 0.0 && st.rms >= 0.0 && st.peak_to_peak >= 0.0);
        }
    }
});
