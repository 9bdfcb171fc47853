//! Downsampled reads: a time range cut into buckets of a fixed step.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::ids::{MachineId, MetricName, TenantId};

/// The width of a bucket, between one second and one week.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Step(u32);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StepError {
    #[error("step {0:?} is not a number followed by s, m, h or d (e.g. 30s, 5m, 1h)")]
    Syntax(String),
    #[error("step must be between 1s and 7d")]
    OutOfRange,
}

impl Step {
    pub const MIN_SECONDS: u32 = 1;
    pub const MAX_SECONDS: u32 = 7 * 86_400;

    pub fn from_seconds(s: u32) -> Result<Self, StepError> {
        if (Self::MIN_SECONDS..=Self::MAX_SECONDS).contains(&s) {
            Ok(Self(s))
        } else {
            Err(StepError::OutOfRange)
        }
    }

    pub fn seconds(self) -> u32 {
        self.0
    }

    pub fn as_delta(self) -> TimeDelta {
        TimeDelta::seconds(i64::from(self.0))
    }
}

impl FromStr for Step {
    type Err = StepError;

    /// `30s`, `5m`, `1h`, `1d`, or a bare number of seconds.
    fn from_str(s: &str) -> Result<Self, StepError> {
        let syntax = || StepError::Syntax(s.chars().take(32).collect());
        let (digits, mult) = match s.as_bytes().last() {
            Some(b's') => (&s[..s.len() - 1], 1),
            Some(b'm') => (&s[..s.len() - 1], 60),
            Some(b'h') => (&s[..s.len() - 1], 3_600),
            Some(b'd') => (&s[..s.len() - 1], 86_400),
            Some(b'0'..=b'9') => (s, 1),
            _ => return Err(syntax()),
        };
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(syntax());
        }
        let n: u64 = digits.parse().map_err(|_| StepError::OutOfRange)?;
        let secs = n.checked_mul(mult).ok_or(StepError::OutOfRange)?;
        Self::from_seconds(u32::try_from(secs).map_err(|_| StepError::OutOfRange)?)
    }
}

impl fmt::Display for Step {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}s", self.0)
    }
}

/// A half-open time range `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TimeRange {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RangeError {
    #[error("`from` must be before `to`")]
    Empty,
    #[error(
        "the range holds {buckets} buckets of {step}; at most {max} are served: widen the step"
    )]
    TooManyBuckets { buckets: i64, step: Step, max: i64 },
}

impl TimeRange {
    pub fn new(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Self, RangeError> {
        if from < to {
            Ok(Self { from, to })
        } else {
            Err(RangeError::Empty)
        }
    }

    pub fn from(&self) -> DateTime<Utc> {
        self.from
    }

    pub fn to(&self) -> DateTime<Utc> {
        self.to
    }

    /// How many buckets of `step` the range spans (the last one may be partial).
    pub fn bucket_count(&self, step: Step) -> i64 {
        let span = (self.to - self.from).num_seconds().max(1);
        let s = i64::from(step.seconds());
        (span + s - 1) / s
    }
}

/// A validated downsampling query for one metric of one machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BucketQuery {
    pub tenant: TenantId,
    pub machine: MachineId,
    pub metric: MetricName,
    pub range: TimeRange,
    pub step: Step,
}

impl BucketQuery {
    /// A response never holds more buckets than this, so one query cannot ask the database for
    /// millions of rows.
    pub const MAX_BUCKETS: i64 = 10_000;

    pub fn new(
        tenant: TenantId,
        machine: MachineId,
        metric: MetricName,
        range: TimeRange,
        step: Step,
    ) -> Result<Self, RangeError> {
        let buckets = range.bucket_count(step);
        if buckets > Self::MAX_BUCKETS {
            return Err(RangeError::TooManyBuckets {
                buckets,
                step,
                max: Self::MAX_BUCKETS,
            });
        }
        Ok(Self {
            tenant,
            machine,
            metric,
            range,
            step,
        })
    }
}

/// One bucket of a downsampled series. Buckets start at `from + k * step`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Bucket {
    pub start: DateTime<Utc>,
    pub avg: f64,
    pub min: f64,
    pub max: f64,
    pub count: i64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn steps_parse_with_units() {
        assert_eq!("30s".parse::<Step>().map(Step::seconds), Ok(30));
        assert_eq!("5m".parse::<Step>().map(Step::seconds), Ok(300));
        assert_eq!("1h".parse::<Step>().map(Step::seconds), Ok(3_600));
        assert_eq!("1d".parse::<Step>().map(Step::seconds), Ok(86_400));
        assert_eq!("60".parse::<Step>().map(Step::seconds), Ok(60));
        assert_eq!("0s".parse::<Step>(), Err(StepError::OutOfRange));
        assert_eq!("8d".parse::<Step>(), Err(StepError::OutOfRange));
        assert!(matches!("1w".parse::<Step>(), Err(StepError::Syntax(_))));
        assert!(matches!("m".parse::<Step>(), Err(StepError::Syntax(_))));
        assert!(matches!("-1s".parse::<Step>(), Err(StepError::Syntax(_))));
    }

    #[test]
    fn a_year_at_one_second_is_refused() {
        let from = DateTime::<Utc>::UNIX_EPOCH;
        let range = TimeRange::new(from, from + TimeDelta::days(365)).unwrap();
        let q = BucketQuery::new(
            TenantId::parse("demo").unwrap(),
            MachineId::parse("TRUCK-21").unwrap(),
            MetricName::parse("rpm").unwrap(),
            range,
            Step::from_seconds(1).unwrap(),
        );
        assert!(matches!(q, Err(RangeError::TooManyBuckets { .. })));
    }

    proptest! {
        #[test]
        fn step_parse_never_panics(s in "\\PC{0,24}") {
            let _ = s.parse::<Step>();
        }

        #[test]
        fn step_roundtrips_through_display(n in Step::MIN_SECONDS..=Step::MAX_SECONDS) {
            let step = Step::from_seconds(n).unwrap();
            prop_assert_eq!(step.to_string().parse::<Step>(), Ok(step));
        }

        #[test]
        fn bucket_count_covers_the_range(span in 1i64..10_000_000, step in 1u32..=604_800) {
            let from = DateTime::<Utc>::UNIX_EPOCH;
            let range = TimeRange::new(from, from + TimeDelta::seconds(span)).unwrap();
            let n = range.bucket_count(Step::from_seconds(step).unwrap());
            prop_assert!(n * i64::from(step) >= span);
            prop_assert!((n - 1) * i64::from(step) < span);
        }
    }
}
