//! The ground-truth label stream: one CSV row per message sent.

use std::borrow::Cow;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, SecondsFormat, Utc};

use crate::error::SimError;
use crate::machine::{run_id, Label};

/// The header of `--labels-csv`.
pub const LABELS_HEADER: &str = "machine_id,seq,ts,run_id,phase,time_to_failure_h";

/// Quotes a CSV field when it needs it (RFC 4180).
pub(crate) fn csv_field(s: &str) -> Cow<'_, str> {
    if s.contains([',', '"', '\n', '\r']) {
        Cow::Owned(format!("\"{}\"", s.replace('"', "\"\"")))
    } else {
        Cow::Borrowed(s)
    }
}

/// Timestamps as the wire carries them: RFC 3339, milliseconds, `Z`.
pub(crate) fn format_ts(ts: DateTime<Utc>) -> String {
    ts.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Hours with a fixed precision (0.36 ms), so files are reproducible and compact.
pub(crate) fn format_hours(h: f64) -> String {
    format!("{h:.6}")
}

/// Writes label rows to any writer.
#[derive(Debug)]
pub struct LabelWriter<W: Write> {
    out: W,
}

impl<W: Write> LabelWriter<W> {
    /// Writes the header.
    pub fn new(mut out: W) -> std::io::Result<Self> {
        writeln!(out, "{LABELS_HEADER}")?;
        Ok(Self { out })
    }

    pub fn write(
        &mut self,
        machine_id: &str,
        seq: u64,
        ts: DateTime<Utc>,
        label: &Label,
    ) -> std::io::Result<()> {
        writeln!(
            self.out,
            "{},{},{},{},{},{}",
            csv_field(machine_id),
            seq,
            format_ts(ts),
            csv_field(&run_id(machine_id, label.run_index)),
            label.phase.as_str(),
            format_hours(label.time_to_failure_h),
        )
    }

    pub fn flush(&mut self) -> std::io::Result<()> {
        self.out.flush()
    }

    pub fn into_inner(self) -> W {
        self.out
    }
}

/// A label file on disk.
#[derive(Debug)]
pub struct LabelFile {
    path: PathBuf,
    writer: LabelWriter<BufWriter<File>>,
}

impl LabelFile {
    pub fn create(path: &Path) -> Result<Self, SimError> {
        let file = File::create(path).map_err(|e| SimError::file(path, e))?;
        let writer = LabelWriter::new(BufWriter::with_capacity(256 * 1024, file))
            .map_err(|e| SimError::file(path, e))?;
        Ok(Self {
            path: path.to_owned(),
            writer,
        })
    }

    pub fn write(
        &mut self,
        machine_id: &str,
        seq: u64,
        ts: DateTime<Utc>,
        label: &Label,
    ) -> Result<(), SimError> {
        self.writer
            .write(machine_id, seq, ts, label)
            .map_err(|e| SimError::file(&self.path, e))
    }

    pub fn flush(&mut self) -> Result<(), SimError> {
        self.writer
            .flush()
            .map_err(|e| SimError::file(&self.path, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aurum_domain::RunPhase;

    #[test]
    fn header_and_row() {
        let mut w = LabelWriter::new(Vec::new()).unwrap();
        let ts = DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let label = Label {
            run_index: 2,
            phase: RunPhase::Drift,
            time_to_failure_h: 1.5,
        };
        w.write("TRUCK-21", 7, ts, &label).unwrap();
        let text = String::from_utf8(w.into_inner()).unwrap();
        assert_eq!(
            text,
            "machine_id,seq,ts,run_id,phase,time_to_failure_h\n\
             TRUCK-21,7,2026-01-01T00:00:00.000Z,TRUCK-21-r2,drift,1.500000\n"
        );
    }

    #[test]
    fn fields_are_quoted_when_needed() {
        assert_eq!(csv_field("a"), "a");
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("a\"b"), "\"a\"\"b\"");
    }
}
