//! Telemetry messages as devices send them, after decoding and before validation.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::{MachineId, MetricName};

/// A device's message number. Monotonically increasing per machine; with the machine it makes
/// a message's identity, so a redelivered message is recognised and never stored twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct Seq(u64);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("seq {0} exceeds the largest storable sequence number {max}", max = Seq::MAX)]
pub struct SeqOutOfRange(pub u64);

impl Seq {
    /// PostgreSQL's `bigint` is signed: the top half of u64 cannot be stored.
    pub const MAX: u64 = i64::MAX as u64;

    pub fn new(n: u64) -> Result<Self, SeqOutOfRange> {
        if n > Self::MAX {
            Err(SeqOutOfRange(n))
        } else {
            Ok(Self(n))
        }
    }

    pub fn get(self) -> u64 {
        self.0
    }

    /// The value as PostgreSQL stores it; lossless because `new` bounds it.
    pub fn as_i64(self) -> i64 {
        i64::try_from(self.0).unwrap_or(i64::MAX)
    }
}

impl TryFrom<u64> for Seq {
    type Error = SeqOutOfRange;
    fn try_from(n: u64) -> Result<Self, SeqOutOfRange> {
        Seq::new(n)
    }
}

impl From<Seq> for u64 {
    fn from(s: Seq) -> u64 {
        s.0
    }
}

impl fmt::Display for Seq {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// A metric value as it arrived: devices may send garbage, and garbage is quarantined with its
/// reason, so it is kept rather than refused at decoding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum RawValue {
    Number(f64),
    /// Anything that is not a number (a string, a boolean, null), as its JSON text.
    NotANumber(String),
}

/// One metric of a message before validation: the name is not yet known to be in the
/// catalogue.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RawReading {
    pub metric: String,
    pub value: RawValue,
}

/// A decoded message: its envelope is valid (machine id, seq, timestamp parse), its readings
/// are not yet validated.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TelemetryMessage {
    pub machine_id: MachineId,
    pub seq: Seq,
    pub ts: DateTime<Utc>,
    pub readings: Vec<RawReading>,
}

/// A validated reading, ready to store.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Reading {
    pub metric: MetricName,
    pub value: f64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn seq_accepts_exactly_the_signed_range(n in any::<u64>()) {
            match Seq::new(n) {
                Ok(s) => {
                    prop_assert!(n <= Seq::MAX);
                    prop_assert_eq!(s.as_i64() as u64, n);
                }
                Err(_) => prop_assert!(n > Seq::MAX),
            }
        }
    }
}
