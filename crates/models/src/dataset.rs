//! Labelled feature vectors from run-to-failure data, computed exactly as ingestion computes
//! them online: one `MetricWindow` per metric and machine, readings pushed in timestamp
//! order, a `FeatureVector` every K readings of a machine.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Read;
use std::path::Path;

use aurum_domain::{
    FeatureVector, HealthyBaseline, MachineType, MetricName, MetricWindow, WindowSpec,
};
use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

use crate::error::ModelError;
use crate::window::{catalogue_metrics, WindowSettings};

pub use aurum_domain::run_to_failure::{RunPhase, LABEL_COLUMNS};

/// One feature vector with its ground truth.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LabelledSample {
    pub run_id: String,
    pub machine_id: String,
    pub machine_type: MachineType,
    pub phase: RunPhase,
    /// Hours until the breakdown that ends the run; 0 once broken down.
    pub time_to_failure_h: f64,
    /// Hours since the run's first reading: early in a run, the window still holds readings
    /// of the previous run's breakdown and repair.
    pub hours_since_run_start: f64,
    pub features: FeatureVector,
}

/// Labelled feature vectors, in the order they were emitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    /// The window the features were computed over.
    pub window: WindowSettings,
    /// A vector was emitted every this many readings of a machine.
    pub every_k_rows: usize,
    pub samples: Vec<LabelledSample>,
}

/// One reading row: labels and the metric values present.
#[derive(Debug, Clone, PartialEq)]
pub struct ReadingRow {
    pub run_id: String,
    pub machine_id: String,
    pub machine_type: MachineType,
    pub ts: DateTime<Utc>,
    pub phase: RunPhase,
    pub time_to_failure_h: f64,
    pub metrics: Vec<(MetricName, f64)>,
}

/// The online feature computation of a whole fleet, fed one reading row at a time.
#[derive(Debug)]
pub struct FeatureExtractor {
    spec: WindowSpec,
    every_k_rows: usize,
    machines: HashMap<String, MachineState>,
}

#[derive(Debug)]
struct MachineState {
    machine_type: MachineType,
    windows: BTreeMap<MetricName, MetricWindow>,
    rows: u64,
    last_ts: DateTime<Utc>,
    run_id: String,
    run_start: DateTime<Utc>,
}

impl FeatureExtractor {
    pub fn new(spec: WindowSpec, every_k_rows: usize) -> Result<Self, ModelError> {
        if every_k_rows == 0 {
            return Err(ModelError::InvalidOption(
                "every_k_rows must be at least 1".into(),
            ));
        }
        Ok(Self {
            spec,
            every_k_rows,
            machines: HashMap::new(),
        })
    }

    /// Feeds a row; returns the labelled feature vector when this row completes a group of
    /// K readings of its machine. Rows of one machine must come in timestamp order, as they
    /// would reach ingestion; a machine whose type changes is refused.
    pub fn push(&mut self, row: ReadingRow) -> Result<Option<LabelledSample>, String> {
        let spec = self.spec;
        let state = self
            .machines
            .entry(row.machine_id.clone())
            .or_insert_with(|| MachineState {
                machine_type: row.machine_type,
                windows: catalogue_metrics(row.machine_type)
                    .into_iter()
                    .map(|m| (m, MetricWindow::new(spec)))
                    .collect(),
                rows: 0,
                last_ts: row.ts,
                run_id: row.run_id.clone(),
                run_start: row.ts,
            });
        if state.machine_type != row.machine_type {
            return Err(format!(
                "machine {} changes type from {} to {}",
                row.machine_id, state.machine_type, row.machine_type
            ));
        }
        if row.ts < state.last_ts {
            return Err(format!(
                "rows of machine {} go back in time ({} after {}): sort the file by machine \
                 and timestamp",
                row.machine_id, row.ts, state.last_ts
            ));
        }
        state.last_ts = row.ts;
        if state.run_id != row.run_id {
            state.run_id.clone_from(&row.run_id);
            state.run_start = row.ts;
        }
        for (metric, value) in &row.metrics {
            // Metrics outside the type's catalogue are not model inputs.
            if let Some(window) = state.windows.get_mut(metric) {
                window.push(row.ts, *value);
            }
        }
        // A metric that stopped reporting must not be described by stale readings.
        for window in state.windows.values_mut() {
            window.advance_to(row.ts);
        }
        state.rows += 1;
        if !state.rows.is_multiple_of(self.every_k_rows as u64) {
            return Ok(None);
        }
        let features =
            FeatureVector::from_windows(row.ts, &state.windows, &HealthyBaseline::default());
        Ok(Some(LabelledSample {
            hours_since_run_start: (row.ts - state.run_start).as_seconds_f64() / 3_600.0,
            run_id: row.run_id,
            machine_id: row.machine_id,
            machine_type: row.machine_type,
            phase: row.phase,
            time_to_failure_h: row.time_to_failure_h,
            features,
        }))
    }
}

/// The columns of a simulator CSV, located by name.
struct CsvLayout {
    labels: [usize; LABEL_COLUMNS.len()],
    metrics: Vec<(usize, MetricName)>,
}

impl CsvLayout {
    fn from_header(header: &csv::StringRecord) -> Result<Self, ModelError> {
        let position = |name: &str| header.iter().position(|h| h.trim() == name);
        let mut labels = [0; LABEL_COLUMNS.len()];
        for (slot, name) in labels.iter_mut().zip(LABEL_COLUMNS) {
            *slot = position(name)
                .ok_or_else(|| ModelError::Header(format!("column {name:?} is missing")))?;
        }
        let metrics = header
            .iter()
            .enumerate()
            .filter(|(_, h)| !LABEL_COLUMNS.contains(&h.trim()))
            .map(|(i, h)| {
                MetricName::parse(h.trim())
                    .map(|m| (i, m))
                    .map_err(|e| ModelError::Header(format!("metric column {h:?}: {e}")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if metrics.is_empty() {
            return Err(ModelError::Header("no metric columns".into()));
        }
        Ok(Self { labels, metrics })
    }

    fn parse(&self, record: &csv::StringRecord) -> Result<ReadingRow, String> {
        let field = |i: usize| record.get(self.labels[i]).unwrap_or("").trim();
        let machine_type: MachineType = field(2).parse().map_err(|e| format!("{e}"))?;
        let ts = DateTime::parse_from_rfc3339(field(4))
            .map_err(|e| format!("timestamp {:?}: {e}", field(4)))?
            .with_timezone(&Utc);
        let phase: RunPhase = field(5).parse()?;
        let time_to_failure_h: f64 = field(6)
            .parse()
            .map_err(|e| format!("time_to_failure_h {:?}: {e}", field(6)))?;
        if !(time_to_failure_h.is_finite() && time_to_failure_h >= 0.0) {
            return Err(format!(
                "time_to_failure_h must be a non-negative number, got {time_to_failure_h}"
            ));
        }
        let mut metrics = Vec::with_capacity(self.metrics.len());
        for (i, metric) in &self.metrics {
            let raw = record.get(*i).unwrap_or("").trim();
            if raw.is_empty() {
                continue;
            }
            let value: f64 = raw
                .parse()
                .map_err(|e| format!("metric {metric} value {raw:?}: {e}"))?;
            metrics.push((metric.clone(), value));
        }
        let run_id = field(0);
        let machine_id = field(1);
        if run_id.is_empty() || machine_id.is_empty() {
            return Err("run_id and machine_id must not be empty".into());
        }
        Ok(ReadingRow {
            run_id: run_id.to_owned(),
            machine_id: machine_id.to_owned(),
            machine_type,
            ts,
            phase,
            time_to_failure_h,
            metrics,
        })
    }
}

impl Dataset {
    /// Reads a CSV written by `aurum-sim dataset` and computes labelled feature vectors with
    /// `window`, one every `every_k_rows` readings of a machine.
    pub fn from_sim_csv(
        reader: impl Read,
        window: WindowSpec,
        every_k_rows: usize,
    ) -> Result<Dataset, ModelError> {
        let mut extractor = FeatureExtractor::new(window, every_k_rows)?;
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(true)
            .flexible(false)
            .from_reader(reader);
        let header = csv.headers().map_err(|e| csv_error(&e, 1))?.clone();
        let layout = CsvLayout::from_header(&header)?;
        let mut samples = Vec::new();
        let mut record = csv::StringRecord::new();
        loop {
            match csv.read_record(&mut record) {
                Ok(false) => break,
                Ok(true) => {}
                Err(e) => return Err(csv_error(&e, 0)),
            }
            let line = record.position().map_or(0, csv::Position::line);
            let row = layout
                .parse(&record)
                .map_err(|message| ModelError::Csv { line, message })?;
            if let Some(sample) = extractor
                .push(row)
                .map_err(|message| ModelError::Csv { line, message })?
            {
                samples.push(sample);
            }
        }
        Ok(Dataset {
            window: window.into(),
            every_k_rows,
            samples,
        })
    }

    /// [`from_sim_csv`](Self::from_sim_csv) of a file.
    pub fn from_sim_csv_path(
        path: &Path,
        window: WindowSpec,
        every_k_rows: usize,
    ) -> Result<Dataset, ModelError> {
        let file = std::fs::File::open(path).map_err(|source| ModelError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_sim_csv(std::io::BufReader::new(file), window, every_k_rows)
    }

    /// The distinct runs, sorted.
    pub fn run_ids(&self) -> BTreeSet<&str> {
        self.samples.iter().map(|s| s.run_id.as_str()).collect()
    }

    /// Splits whole runs: a fraction `test_fraction` of each machine type's runs (at least
    /// one when the type has two or more) goes to the second set, chosen by a generator
    /// seeded with `seed`. No run has samples on both sides, so a model is always judged
    /// on machines' lives it never saw.
    pub fn split_by_run(&self, test_fraction: f64, seed: u64) -> (Dataset, Dataset) {
        let fraction = if test_fraction.is_finite() {
            test_fraction.clamp(0.0, 1.0)
        } else {
            0.0
        };
        let mut runs_by_type: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
        let mut seen = BTreeSet::new();
        for s in &self.samples {
            if seen.insert(s.run_id.as_str()) {
                runs_by_type
                    .entry(s.machine_type.as_str())
                    .or_default()
                    .push(s.run_id.as_str());
            }
        }
        let mut rng = StdRng::seed_from_u64(seed);
        let mut test_runs: BTreeSet<&str> = BTreeSet::new();
        for runs in runs_by_type.values_mut() {
            runs.sort_unstable();
            runs.shuffle(&mut rng);
            let mut n = (fraction * runs.len() as f64).round() as usize;
            if fraction > 0.0 && runs.len() >= 2 {
                n = n.clamp(1, runs.len() - 1);
            }
            test_runs.extend(runs.iter().take(n));
        }
        let (test, train): (Vec<_>, Vec<_>) = self
            .samples
            .iter()
            .cloned()
            .partition(|s| test_runs.contains(s.run_id.as_str()));
        (self.with_samples(train), self.with_samples(test))
    }

    /// The same dataset restricted to one machine type.
    pub fn of_type(&self, machine_type: MachineType) -> Dataset {
        self.with_samples(
            self.samples
                .iter()
                .filter(|s| s.machine_type == machine_type)
                .cloned()
                .collect(),
        )
    }

    fn with_samples(&self, samples: Vec<LabelledSample>) -> Dataset {
        Dataset {
            window: self.window,
            every_k_rows: self.every_k_rows,
            samples,
        }
    }
}

fn csv_error(e: &csv::Error, fallback_line: u64) -> ModelError {
    let line = e.position().map_or(fallback_line, csv::Position::line);
    ModelError::Csv {
        line,
        message: e.to_string(),
    }
}
