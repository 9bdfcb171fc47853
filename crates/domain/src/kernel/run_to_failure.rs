//! Run-to-failure training data: the CSV the simulator writes (`aurum-sim dataset`) and the
//! model trainer reads, one row per message with its ground truth before the metric columns.

use serde::{Deserialize, Serialize};

/// The label columns of a run-to-failure CSV, in order, before the metric columns.
pub const LABEL_COLUMNS: [&str; 7] = [
    "run_id",
    "machine_id",
    "machine_type",
    "seq",
    "ts",
    "phase",
    "time_to_failure_h",
];

/// Where a machine was in its run when a message was sent (ground truth).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunPhase {
    /// Healthy operation around the type's operating point.
    Normal,
    /// A fault develops (wear grows).
    Drift,
    /// Broken down and under repair: the machine is stopped.
    Failure,
}

impl RunPhase {
    pub const ALL: [RunPhase; 3] = [RunPhase::Normal, RunPhase::Drift, RunPhase::Failure];

    pub fn as_str(self) -> &'static str {
        match self {
            RunPhase::Normal => "normal",
            RunPhase::Drift => "drift",
            RunPhase::Failure => "failure",
        }
    }
}

impl std::fmt::Display for RunPhase {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for RunPhase {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        RunPhase::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("unknown phase {s:?}; known: normal, drift, failure"))
    }
}

#[cfg(test)]
mod tests {
    use super::RunPhase;

    #[test]
    fn a_phase_reads_back_what_it_writes() {
        for p in RunPhase::ALL {
            assert_eq!(p.as_str().parse::<RunPhase>(), Ok(p));
            assert_eq!(serde_json::to_string(&p).ok(), Some(format!("\"{p}\"")));
        }
        assert!("broken".parse::<RunPhase>().is_err());
    }
}
