//! The NASA C-MAPSS reader (`aurum_models::cmapss`): `parse_rows` (train and test files: 26
//! whitespace-separated columns), `parse_rul`, and `cmapss_run` end to end on small inputs
//! (grouping by engine, channel selection, rolling features, a small forest).
//!
//! The input is `train|test|rul` (split at the first two `|`); the first byte of the train
//! part also picks the rolling window.
//!
//! Properties: every row parsed has a positive unit and cycle and finite values, one row per
//! non-blank line; printed back in the same format the rows parse again into the same rows;
//! RUL values are finite and non-negative; a report has one prediction per test engine,
//! each within [0, cap].
#![no_main]

use aurum_models::cmapss::{channel_names, parse_rows, parse_rul, CmapssRow};
use aurum_models::{cmapss_run, CmapssOptions, ForestParams};
use libfuzzer_sys::fuzz_target;

/// Training rows beyond this make a run too slow for fuzzing; the parsers still see them.
const MAX_TRAIN_ROWS: usize = 200;

fuzz_target!(|data: &[u8]| {
    let mut parts = data.splitn(3, |b| *b == b'|');
    let train = parts.next().unwrap_or_default();
    let test = parts.next().unwrap_or_default();
    let rul = parts.next().unwrap_or_default();

    let train_rows = check_rows(train, "train");
    let test_rows = check_rows(test, "test");
    let true_rul = check_rul(rul);

    let (Some(train_rows), Some(_), Some(_)) = (train_rows, test_rows, true_rul) else {
        return;
    };
    if train_rows.len() > MAX_TRAIN_ROWS {
        return;
    }
    let opts = CmapssOptions {
        rul_cap: 125.0,
        window: usize::from(train.first().copied().unwrap_or(0) % 32),
        forest: ForestParams {
            trees: 2,
            max_depth: 4,
            min_samples_leaf: 1,
            split_candidates: None,
            seed: 1,
        },
    };
    if let Ok(report) = cmapss_run(train, test, rul, &opts) {
        assert_eq!(report.predictions.len(), report.test_units);
        assert!(report
            .predictions
            .iter()
            .all(|(_, p)| (0.0..=opts.rul_cap).contains(p)));
        let names = channel_names();
        assert!(report.channels.iter().all(|c| names.contains(c)));
        assert!(report.train_units >= 1);
    }
});

fn check_rows(text: &[u8], file: &'static str) -> Option<Vec<CmapssRow>> {
    let rows = parse_rows(text, file).ok()?;
    let lines = String::from_utf8_lossy(text)
        .lines()
        .filter(|l| l.split_whitespace().next().is_some())
        .count();
    assert_eq!(rows.len(), lines);
    for r in &rows {
        assert!(r.unit >= 1 && r.cycle >= 1);
        assert!(r.channels.iter().all(|v| v.is_finite()));
    }
    let mut printed = String::new();
    for r in &rows {
        printed.push_str(&format!("{} {}", r.unit, r.cycle));
        for v in &r.channels {
            printed.push_str(&format!(" {v}"));
        }
        printed.push('\n');
    }
    match parse_rows(printed.as_bytes(), file) {
        Ok(again) => assert_eq!(again, rows),
        Err(e) => panic!("printed rows do not parse: {e}\n{printed}"),
    }
    Some(rows)
}

fn check_rul(text: &[u8]) -> Option<Vec<f64>> {
    let values = parse_rul(text).ok()?;
    let lines = String::from_utf8_lossy(text)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .count();
    assert_eq!(values.len(), lines);
    assert!(values.iter().all(|v| v.is_finite() && *v >= 0.0));
    Some(values)
}
