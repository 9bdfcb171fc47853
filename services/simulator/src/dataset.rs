//! Offline generation of complete run-to-failure runs, for training and evaluating models.
//!
//! No network: machines are stepped at a fixed simulated interval from a fixed start time, so
//! the output is a pure function of the options (the seed in particular).

use std::io::Write;

use aurum_domain::run_to_failure::LABEL_COLUMNS;
use aurum_domain::MachineType;
use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::degradation::LifecycleParams;
use crate::error::SimError;
use crate::fleet::{self, MachineInfo};
use crate::labels::{csv_field, format_hours, format_ts};
use crate::machine::{run_id, Sample, SimMachine};

/// What to generate.
#[derive(Debug, Clone)]
pub struct DatasetOptions {
    /// Number of complete runs (normal -> drift -> failure, repair included).
    pub runs: usize,
    pub seed: u64,
    /// Simulated seconds between two messages of a machine.
    pub interval_s: f64,
    /// Timestamp of every machine's first message.
    pub start: DateTime<Utc>,
    /// Runs are assigned to these machines in turn.
    pub machines: Vec<MachineInfo>,
    /// The lifecycle the runs follow: [`LifecycleParams::field`] for training data.
    pub params: LifecycleParams,
}

/// What was generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DatasetStats {
    pub runs: usize,
    pub rows: u64,
}

/// The union of every machine type's metric names, in catalogue order of first appearance.
pub fn metric_columns() -> Vec<&'static str> {
    let mut columns: Vec<&'static str> = Vec::new();
    for t in MachineType::ALL {
        for spec in t.catalogue() {
            if !columns.contains(&spec.name) {
                columns.push(spec.name);
            }
        }
    }
    columns
}

/// The CSV header line (without the newline).
pub fn header() -> String {
    LABEL_COLUMNS
        .iter()
        .copied()
        .chain(metric_columns())
        .collect::<Vec<_>>()
        .join(",")
}

fn write_row<W: Write>(
    out: &mut W,
    machine: &SimMachine,
    sample: &Sample,
    columns: &[&str],
) -> std::io::Result<()> {
    let id = machine.id().as_str();
    write!(
        out,
        "{},{},{},{},{},{},{}",
        csv_field(&run_id(id, sample.label.run_index)),
        csv_field(id),
        machine.machine_type().as_str(),
        sample.seq,
        format_ts(sample.ts),
        sample.label.phase.as_str(),
        format_hours(sample.label.time_to_failure_h),
    )?;
    for column in columns {
        match sample.metrics.iter().find(|(name, _)| name == column) {
            Some((_, v)) => write!(out, ",{v}")?,
            None => out.write_all(b",")?,
        }
    }
    out.write_all(b"\n")
}

/// Writes the dataset as CSV.
pub fn generate<W: Write>(options: &DatasetOptions, mut out: W) -> Result<DatasetStats, SimError> {
    if options.machines.is_empty() {
        return Err(SimError::InvalidArgument(
            "the dataset needs at least one machine".into(),
        ));
    }
    if !(options.interval_s.is_finite() && options.interval_s > 0.0) {
        return Err(SimError::InvalidArgument(format!(
            "interval must be a positive number of seconds, got {}",
            options.interval_s
        )));
    }
    let interval_ms = (options.interval_s * 1_000.0).round().max(1.0) as i64;
    let columns = metric_columns();
    let mut machines = fleet::build(&options.machines, options.seed, options.params);

    writeln!(out, "{}", header())?;
    let mut rows = 0u64;
    for run in 0..options.runs {
        let machine = &mut machines[run % options.machines.len()];
        let this_run = machine.current_run();
        while machine.current_run() == this_run {
            // seq starts at 1: the first message is at `start`.
            let steps = i64::try_from(machine.next_seq() - 1).unwrap_or(i64::MAX);
            let ts = options
                .start
                .checked_add_signed(TimeDelta::milliseconds(interval_ms.saturating_mul(steps)))
                .ok_or_else(|| {
                    SimError::InvalidArgument("timestamps run past the year 262143".into())
                })?;
            let sample = machine.step(options.interval_s, ts);
            write_row(&mut out, machine, &sample, &columns)?;
            rows += 1;
        }
    }
    out.flush()?;
    Ok(DatasetStats {
        runs: options.runs,
        rows,
    })
}
