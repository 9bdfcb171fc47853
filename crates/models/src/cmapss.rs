//! The NASA C-MAPSS turbofan benchmark: run-to-failure engines (`train_FD00x.txt`), engines
//! cut off before failure (`test_FD00x.txt`) and their true remaining cycles
//! (`RUL_FD00x.txt`). A RUL forest on per-sensor values, rolling means and rolling slopes.
//!
//! Rows are whitespace-separated: unit, cycle, three operational settings, 21 sensors.
//! Targets follow the usual piecewise-linear convention: an engine's remaining cycles, capped
//! (125 by default) because early in life nothing in the sensors tells how far failure is.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::ModelError;
use crate::forest::{Forest, ForestParams};
use crate::metrics::{mae, nasa_score, rmse};

/// Operational settings and sensors per row, after unit and cycle.
pub const CHANNELS: usize = 24;

/// Names of the channels: `setting_1..3`, `sensor_1..21`.
pub fn channel_names() -> Vec<String> {
    (1..=3)
        .map(|i| format!("setting_{i}"))
        .chain((1..=21).map(|i| format!("sensor_{i}")))
        .collect()
}

/// One row of a C-MAPSS file.
#[derive(Debug, Clone, PartialEq)]
pub struct CmapssRow {
    pub unit: u32,
    pub cycle: u32,
    pub channels: [f64; CHANNELS],
}

/// Parses a train or test file; `file` names it in errors.
pub fn parse_rows(reader: impl Read, file: &'static str) -> Result<Vec<CmapssRow>, ModelError> {
    let text = read_text(reader, file)?;
    let mut rows = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let fail = |message: String| ModelError::Cmapss {
            file,
            line: line_no,
            message,
        };
        let fields: Vec<&str> = line.split_whitespace().collect();
        if fields.is_empty() {
            continue;
        }
        if fields.len() != 2 + CHANNELS {
            return Err(fail(format!(
                "expected {} fields (unit, cycle, 3 settings, 21 sensors), found {}",
                2 + CHANNELS,
                fields.len()
            )));
        }
        let whole = |s: &str, what: &str| -> Result<u32, ModelError> {
            // Some copies of the files write integers as floats ("1.0").
            let v: f64 = s.parse().map_err(|e| fail(format!("{what} {s:?}: {e}")))?;
            if v.fract() == 0.0 && (1.0..=f64::from(u32::MAX)).contains(&v) {
                Ok(v as u32)
            } else {
                Err(fail(format!("{what} {s:?} is not a positive whole number")))
            }
        };
        let unit = whole(fields[0], "unit")?;
        let cycle = whole(fields[1], "cycle")?;
        let mut channels = [0.0; CHANNELS];
        for (slot, s) in channels.iter_mut().zip(&fields[2..]) {
            let v: f64 = s.parse().map_err(|e| fail(format!("value {s:?}: {e}")))?;
            if !v.is_finite() {
                return Err(fail(format!("value {s:?} is not finite")));
            }
            *slot = v;
        }
        rows.push(CmapssRow {
            unit,
            cycle,
            channels,
        });
    }
    if rows.is_empty() {
        return Err(ModelError::Cmapss {
            file,
            line: 0,
            message: "no rows".into(),
        });
    }
    Ok(rows)
}

/// Parses a RUL file: one whole number of cycles per line, in test-unit order.
pub fn parse_rul(reader: impl Read) -> Result<Vec<f64>, ModelError> {
    let text = read_text(reader, "RUL")?;
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let s = line.trim();
        if s.is_empty() {
            continue;
        }
        let v: f64 = s.parse().map_err(|e| ModelError::Cmapss {
            file: "RUL",
            line: i + 1,
            message: format!("{s:?}: {e}"),
        })?;
        if !(v.is_finite() && v >= 0.0) {
            return Err(ModelError::Cmapss {
                file: "RUL",
                line: i + 1,
                message: format!("{s:?} is not a non-negative number of cycles"),
            });
        }
        out.push(v);
    }
    Ok(out)
}

fn read_text(mut reader: impl Read, file: &'static str) -> Result<String, ModelError> {
    let mut text = String::new();
    reader
        .read_to_string(&mut text)
        .map_err(|e| ModelError::Cmapss {
            file,
            line: 0,
            message: e.to_string(),
        })?;
    Ok(text)
}

/// How to train and judge the C-MAPSS regressor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CmapssOptions {
    /// Cap of the piecewise-linear RUL target, in cycles.
    pub rul_cap: f64,
    /// Cycles the rolling mean and slope look back over.
    pub window: usize,
    pub forest: ForestParams,
}

impl Default for CmapssOptions {
    fn default() -> Self {
        Self {
            rul_cap: 125.0,
            window: 20,
            forest: ForestParams {
                trees: 60,
                max_depth: 12,
                min_samples_leaf: 5,
                split_candidates: None,
                seed: 11,
            },
        }
    }
}

/// Figures on the test engines (predicted at their last recorded cycle).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CmapssReport {
    pub rmse: f64,
    pub mae: f64,
    /// PHM08 score summed over test engines; lower is better.
    pub nasa_score: f64,
    pub train_units: usize,
    pub test_units: usize,
    /// Channels kept (the others are constant in training).
    pub channels: Vec<String>,
    /// (unit, predicted RUL) per test engine, in unit order.
    pub predictions: Vec<(u32, f64)>,
}

/// Rows grouped by unit, each in cycle order.
fn by_unit(rows: &[CmapssRow]) -> BTreeMap<u32, Vec<&CmapssRow>> {
    let mut units: BTreeMap<u32, Vec<&CmapssRow>> = BTreeMap::new();
    for r in rows {
        units.entry(r.unit).or_default().push(r);
    }
    for rows in units.values_mut() {
        rows.sort_by_key(|r| r.cycle);
    }
    units
}

/// Channels whose spread over the training rows is negligible carry no information.
fn varying_channels(rows: &[CmapssRow]) -> Vec<usize> {
    (0..CHANNELS)
        .filter(|&c| {
            let n = rows.len() as f64;
            let mean = rows.iter().map(|r| r.channels[c]).sum::<f64>() / n;
            let var = rows
                .iter()
                .map(|r| (r.channels[c] - mean).powi(2))
                .sum::<f64>()
                / n;
            var.sqrt() > 1e-4 * mean.abs().max(1e-3)
        })
        .collect()
}

/// Features at position `at` of a unit's history: the cycle, then per kept channel its
/// value, its mean over the last `window` cycles and its least-squares slope per cycle.
fn features_at(history: &[&CmapssRow], at: usize, channels: &[usize], window: usize) -> Vec<f64> {
    let start = (at + 1).saturating_sub(window.max(1));
    let recent = &history[start..=at];
    let n = recent.len() as f64;
    let mean_cycle = recent.iter().map(|r| f64::from(r.cycle)).sum::<f64>() / n;
    let mut out = Vec::with_capacity(1 + 3 * channels.len());
    out.push(f64::from(history[at].cycle));
    for &c in channels {
        let mean = recent.iter().map(|r| r.channels[c]).sum::<f64>() / n;
        let (mut sxy, mut sxx) = (0.0, 0.0);
        for r in recent {
            let dx = f64::from(r.cycle) - mean_cycle;
            sxy += dx * (r.channels[c] - mean);
            sxx += dx * dx;
        }
        let slope = if sxx > 0.0 { sxy / sxx } else { 0.0 };
        out.extend([history[at].channels[c], mean, slope]);
    }
    out
}

/// Trains on `train`, predicts the RUL of each `test` engine at its last cycle and compares
/// with `rul` (one line per test unit, in unit order).
pub fn cmapss_run(
    train: impl Read,
    test: impl Read,
    rul: impl Read,
    opts: &CmapssOptions,
) -> Result<CmapssReport, ModelError> {
    if !(opts.rul_cap.is_finite() && opts.rul_cap > 0.0) {
        return Err(ModelError::InvalidOption(format!(
            "RUL cap {} must be positive",
            opts.rul_cap
        )));
    }
    let train_rows = parse_rows(train, "train")?;
    let test_rows = parse_rows(test, "test")?;
    let true_rul = parse_rul(rul)?;
    let channels = varying_channels(&train_rows);

    let mut x = Vec::new();
    let mut y = Vec::new();
    let train_units = by_unit(&train_rows);
    for history in train_units.values() {
        let Some(last) = history.last() else { continue };
        for at in 0..history.len() {
            x.push(features_at(history, at, &channels, opts.window));
            y.push(f64::from(last.cycle - history[at].cycle).min(opts.rul_cap));
        }
    }
    let forest = Forest::fit(&x, &y, &opts.forest).map_err(ModelError::CmapssTraining)?;

    let test_units = by_unit(&test_rows);
    if test_units.len() != true_rul.len() {
        return Err(ModelError::Cmapss {
            file: "RUL",
            line: true_rul.len(),
            message: format!(
                "{} values for {} test units",
                true_rul.len(),
                test_units.len()
            ),
        });
    }
    let last_rows: Vec<Vec<f64>> = test_units
        .values()
        .map(|h| features_at(h, h.len() - 1, &channels, opts.window))
        .collect();
    let predicted: Vec<f64> = forest
        .predict_many(&last_rows)
        .map_err(ModelError::CmapssTraining)?
        .into_iter()
        .map(|p| p.clamp(0.0, opts.rul_cap))
        .collect();
    let names = channel_names();
    Ok(CmapssReport {
        rmse: rmse(&predicted, &true_rul).unwrap_or(f64::NAN),
        mae: mae(&predicted, &true_rul).unwrap_or(f64::NAN),
        nasa_score: nasa_score(&predicted, &true_rul),
        train_units: train_units.len(),
        test_units: test_units.len(),
        channels: channels.iter().map(|&c| names[c].clone()).collect(),
        predictions: test_units.keys().copied().zip(predicted).collect(),
    })
}

/// [`cmapss_run`] on `train_FD00x.txt`, `test_FD00x.txt`, `RUL_FD00x.txt` in `dir`, with
/// `subset` such as `FD001`.
pub fn cmapss_run_dir(
    dir: &Path,
    subset: &str,
    opts: &CmapssOptions,
) -> Result<CmapssReport, ModelError> {
    let open = |name: String| {
        let path = dir.join(name);
        std::fs::File::open(&path).map_err(|source| ModelError::Io {
            path: path.display().to_string(),
            source,
        })
    };
    cmapss_run(
        open(format!("train_{subset}.txt"))?,
        open(format!("test_{subset}.txt"))?,
        open(format!("RUL_{subset}.txt"))?,
        opts,
    )
}
