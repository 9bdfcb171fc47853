//! Validation of decoded telemetry against the machine's catalogue and the clock.
//!
//! Nothing is dropped silently: every reading ends up either accepted or rejected with a
//! reason, and the reasons have stable codes used in metrics, the quarantine table and API
//! responses.

use std::collections::HashSet;
use std::fmt;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Serialize;

use crate::ids::MetricName;
use crate::profile::Profile;
use crate::telemetry::{RawValue, Reading, TelemetryMessage};

/// Why a reading or a whole message was rejected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// The payload could not be decoded (not JSON/protobuf, missing or wrongly typed fields).
    MalformedPayload,
    /// The MQTT content type or HTTP Content-Type is neither JSON nor protobuf.
    UnsupportedContentType,
    /// The payload is larger than the configured limit.
    PayloadTooLarge,
    /// The topic is not `aurum/v1/{tenant}/{machine}/telemetry` with valid ids.
    InvalidTopic,
    /// The machine is not registered for the tenant.
    UnknownMachine,
    /// The payload names another machine than the topic it was published on.
    MachineMismatch,
    /// The metric is not in the catalogue of the machine's type.
    UnknownMetric,
    /// The value is not a number (string, boolean, null).
    NotANumber,
    /// The value is NaN or infinite.
    NonFinite,
    /// The value is outside the metric's physically plausible range.
    ImplausibleValue,
    /// The timestamp is further in the future than clock skew allows.
    TimestampInFuture,
    /// The timestamp is older than the accepted back-fill window.
    TimestampTooOld,
    /// The same metric appears twice in one message.
    DuplicateMetric,
    /// The message carries no reading at all.
    EmptyMessage,
}

impl RejectReason {
    pub const ALL: [RejectReason; 14] = [
        RejectReason::MalformedPayload,
        RejectReason::UnsupportedContentType,
        RejectReason::PayloadTooLarge,
        RejectReason::InvalidTopic,
        RejectReason::UnknownMachine,
        RejectReason::MachineMismatch,
        RejectReason::UnknownMetric,
        RejectReason::NotANumber,
        RejectReason::NonFinite,
        RejectReason::ImplausibleValue,
        RejectReason::TimestampInFuture,
        RejectReason::TimestampTooOld,
        RejectReason::DuplicateMetric,
        RejectReason::EmptyMessage,
    ];

    /// The stable code: a metric label, a database value and an API field.
    pub fn code(self) -> &'static str {
        match self {
            RejectReason::MalformedPayload => "malformed_payload",
            RejectReason::UnsupportedContentType => "unsupported_content_type",
            RejectReason::PayloadTooLarge => "payload_too_large",
            RejectReason::InvalidTopic => "invalid_topic",
            RejectReason::UnknownMachine => "unknown_machine",
            RejectReason::MachineMismatch => "machine_mismatch",
            RejectReason::UnknownMetric => "unknown_metric",
            RejectReason::NotANumber => "not_a_number",
            RejectReason::NonFinite => "non_finite",
            RejectReason::ImplausibleValue => "implausible_value",
            RejectReason::TimestampInFuture => "timestamp_in_future",
            RejectReason::TimestampTooOld => "timestamp_too_old",
            RejectReason::DuplicateMetric => "duplicate_metric",
            RejectReason::EmptyMessage => "empty_message",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// One rejected reading (or, with `metric: None`, a whole message), with what it carried.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Rejection {
    pub metric: Option<String>,
    pub value: Option<RawValue>,
    pub reason: RejectReason,
    /// Human-readable detail, e.g. the plausible range.
    pub detail: String,
}

impl Rejection {
    pub fn message(reason: RejectReason, detail: impl Into<String>) -> Self {
        Self {
            metric: None,
            value: None,
            reason,
            detail: detail.into(),
        }
    }
}

/// The outcome of validating one message.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ValidatedMessage {
    pub accepted: Vec<Reading>,
    pub rejected: Vec<Rejection>,
}

/// How far from "now" a timestamp may be.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ValidationPolicy {
    /// Tolerated clock skew of devices.
    pub max_future: TimeDelta,
    /// How old a reading may be: edge nodes back-fill after an outage, but storage partitions
    /// only exist this far back.
    pub max_past: TimeDelta,
}

impl Default for ValidationPolicy {
    fn default() -> Self {
        Self {
            max_future: TimeDelta::minutes(5),
            max_past: TimeDelta::days(7),
        }
    }
}

impl ValidationPolicy {
    /// Validates every reading of `msg` against `profile`, the version of the machine's
    /// profile in force at the message's timestamp.
    pub fn validate(
        &self,
        msg: &TelemetryMessage,
        profile: &Profile,
        now: DateTime<Utc>,
    ) -> ValidatedMessage {
        if let Some(reason) = self.timestamp_problem(msg.ts, now) {
            let detail = format!(
                "ts {} is outside [now - {}s, now + {}s]",
                msg.ts.to_rfc3339(),
                self.max_past.num_seconds(),
                self.max_future.num_seconds()
            );
            return reject_all(msg, reason, &detail);
        }
        if msg.readings.is_empty() {
            return ValidatedMessage {
                accepted: Vec::new(),
                rejected: vec![Rejection::message(
                    RejectReason::EmptyMessage,
                    "the message has no metrics",
                )],
            };
        }

        let mut accepted = Vec::with_capacity(msg.readings.len());
        let mut rejected = Vec::new();
        let mut seen = HashSet::with_capacity(msg.readings.len());
        for raw in &msg.readings {
            let reject = |reason, detail: String| Rejection {
                metric: Some(raw.metric.clone()),
                value: Some(raw.value.clone()),
                reason,
                detail,
            };
            if !seen.insert(raw.metric.as_str()) {
                rejected.push(reject(
                    RejectReason::DuplicateMetric,
                    format!("{} appears more than once", raw.metric),
                ));
                continue;
            }
            let spec = MetricName::parse(&raw.metric)
                .ok()
                .and_then(|name| profile.spec.metric(&name).map(|spec| (name, spec)));
            let Some((name, spec)) = spec else {
                rejected.push(reject(
                    RejectReason::UnknownMetric,
                    format!(
                        "{:?} is not a metric of profile {} (version {})",
                        raw.metric, profile.id, profile.version
                    ),
                ));
                continue;
            };
            let value = match raw.value {
                RawValue::Number(v) => v,
                RawValue::NotANumber(ref text) => {
                    rejected.push(reject(
                        RejectReason::NotANumber,
                        format!("{name} must be a number, got {text}"),
                    ));
                    continue;
                }
            };
            if !value.is_finite() {
                rejected.push(reject(
                    RejectReason::NonFinite,
                    format!("{name} is {value}"),
                ));
            } else if !spec.is_plausible(value) {
                rejected.push(reject(
                    RejectReason::ImplausibleValue,
                    format!(
                        "{name} = {value} {} is outside [{}, {}]",
                        spec.unit.as_str(),
                        spec.min,
                        spec.max
                    ),
                ));
            } else {
                accepted.push(Reading {
                    metric: name,
                    value,
                });
            }
        }
        ValidatedMessage { accepted, rejected }
    }

    fn timestamp_problem(&self, ts: DateTime<Utc>, now: DateTime<Utc>) -> Option<RejectReason> {
        if ts > now + self.max_future {
            Some(RejectReason::TimestampInFuture)
        } else if ts < now - self.max_past {
            Some(RejectReason::TimestampTooOld)
        } else {
            None
        }
    }
}

/// Rejects every reading of a message for one reason (unknown machine, bad timestamp...).
pub fn reject_all(msg: &TelemetryMessage, reason: RejectReason, detail: &str) -> ValidatedMessage {
    let rejected = if msg.readings.is_empty() {
        vec![Rejection::message(reason, detail)]
    } else {
        msg.readings
            .iter()
            .map(|r| Rejection {
                metric: Some(r.metric.clone()),
                value: Some(r.value.clone()),
                reason,
                detail: detail.to_owned(),
            })
            .collect()
    };
    ValidatedMessage {
        accepted: Vec::new(),
        rejected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::MachineId;
    use crate::machine::MachineType;
    use crate::telemetry::{RawReading, Seq};
    use proptest::prelude::*;

    fn truck() -> Profile {
        Profile::builtin(MachineType::HaulTruck)
    }

    fn now() -> DateTime<Utc> {
        DateTime::parse_from_rfc3339("2026-11-28T01:00:00Z")
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or_default()
    }

    fn msg(ts: DateTime<Utc>, readings: &[(&str, RawValue)]) -> TelemetryMessage {
        TelemetryMessage {
            machine_id: MachineId::parse("TRUCK-21").unwrap_or_else(|e| panic!("{e}")),
            seq: Seq::new(42).unwrap_or_else(|e| panic!("{e}")),
            ts,
            readings: readings
                .iter()
                .map(|(m, v)| RawReading {
                    metric: (*m).to_owned(),
                    value: v.clone(),
                })
                .collect(),
        }
    }

    fn reasons(v: &ValidatedMessage) -> Vec<RejectReason> {
        v.rejected.iter().map(|r| r.reason).collect()
    }

    #[test]
    fn a_plausible_message_is_accepted_whole() {
        let m = msg(
            now(),
            &[
                ("rpm", RawValue::Number(1650.0)),
                ("vibration", RawValue::Number(3.1)),
            ],
        );
        let v = ValidationPolicy::default().validate(&m, &truck(), now());
        assert_eq!(v.accepted.len(), 2);
        assert!(v.rejected.is_empty());
    }

    #[test]
    fn each_bad_reading_is_rejected_with_its_own_reason_and_the_rest_kept() {
        let m = msg(
            now(),
            &[
                ("rpm", RawValue::Number(1650.0)),
                ("steam_pressure_bar", RawValue::Number(10.0)),
                ("temperature", RawValue::Number(f64::NAN)),
                ("vibration", RawValue::Number(-3.0)),
                ("speed_kmh", RawValue::NotANumber("\"fast\"".into())),
                ("rpm", RawValue::Number(1.0)),
            ],
        );
        let v = ValidationPolicy::default().validate(&m, &truck(), now());
        assert_eq!(v.accepted.len(), 1);
        assert_eq!(
            reasons(&v),
            vec![
                RejectReason::UnknownMetric,
                RejectReason::NonFinite,
                RejectReason::ImplausibleValue,
                RejectReason::NotANumber,
                RejectReason::DuplicateMetric,
            ]
        );
    }

    #[test]
    fn timestamps_outside_the_window_reject_every_reading() {
        let p = ValidationPolicy::default();
        let future = msg(
            now() + TimeDelta::minutes(6),
            &[("rpm", RawValue::Number(1.0))],
        );
        let past = msg(
            now() - TimeDelta::days(8),
            &[("rpm", RawValue::Number(1.0))],
        );
        assert_eq!(
            reasons(&p.validate(&future, &truck(), now())),
            vec![RejectReason::TimestampInFuture]
        );
        assert_eq!(
            reasons(&p.validate(&past, &truck(), now())),
            vec![RejectReason::TimestampTooOld]
        );
    }

    #[test]
    fn an_empty_message_is_rejected_not_ignored() {
        let v = ValidationPolicy::default().validate(&msg(now(), &[]), &truck(), now());
        assert_eq!(reasons(&v), vec![RejectReason::EmptyMessage]);
    }

    #[test]
    fn reason_codes_are_unique() {
        let mut codes: Vec<_> = RejectReason::ALL.iter().map(|r| r.code()).collect();
        codes.sort_unstable();
        codes.dedup();
        assert_eq!(codes.len(), RejectReason::ALL.len());
    }

    proptest! {
        /// Every reading is accounted for: accepted plus rejected equals what arrived.
        #[test]
        fn nothing_is_dropped(values in proptest::collection::vec((0usize..9, any::<f64>()), 0..12),
                              skew_s in -700_000i64..700_000) {
            let names = ["rpm", "temperature", "vibration", "fuel_rate_lh", "speed_kmh",
                         "load_tons", "oil_pressure", "co2_ppm", "nope"];
            let readings: Vec<_> = values.iter()
                .map(|(i, v)| (names[*i], RawValue::Number(*v)))
                .collect();
            let m = msg(now() + TimeDelta::seconds(skew_s), &readings);
            let v = ValidationPolicy::default().validate(&m, &truck(), now());
            prop_assert_eq!(v.accepted.len() + v.rejected.len(), readings.len().max(1));
            for r in &v.accepted {
                let truck = truck();
                let spec = truck.spec.metric(&r.metric);
                prop_assert!(spec.is_some_and(|s| s.is_plausible(r.value)));
            }
        }
    }
}
