//! Maintenance events: what actually happened to a machine (a failure and its mode, a repair,
//! an inspection, a part replaced), recorded by the people who were there. They are the
//! ground truth predictions are judged against and models learn from.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::MachineId;
use crate::profile::FieldError;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// The machine failed (stopped, or could not do its job): carries a failure mode.
    Failure,
    Repair,
    Inspection,
    PartReplaced,
}

impl EventKind {
    pub const ALL: [EventKind; 4] = [
        EventKind::Failure,
        EventKind::Repair,
        EventKind::Inspection,
        EventKind::PartReplaced,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Failure => "failure",
            EventKind::Repair => "repair",
            EventKind::Inspection => "inspection",
            EventKind::PartReplaced => "part_replaced",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

/// An event as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MaintenanceEvent {
    pub id: i64,
    pub machine_id: MachineId,
    pub kind: EventKind,
    /// What failed and how (`bearing_wear`, `seal leak`): required for a failure, optional
    /// for the other kinds (the mode a repair addressed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_mode: Option<String>,
    /// When it happened.
    pub occurred_at: DateTime<Utc>,
    /// When it was recorded, and by whom (the token's subject).
    pub recorded_at: DateTime<Utc>,
    pub recorded_by: String,
    pub note: String,
}

/// A checked event, ready to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewEvent {
    pub kind: EventKind,
    pub failure_mode: Option<String>,
    pub occurred_at: DateTime<Utc>,
    pub note: String,
}

/// An event as a client writes it.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventDraft {
    pub kind: Option<String>,
    pub failure_mode: Option<String>,
    pub occurred_at: Option<String>,
    pub note: Option<String>,
}

/// How far ahead of the clock an event may be dated (a clock a little fast).
const MAX_FUTURE: TimeDelta = TimeDelta::minutes(5);
/// How far back: a machine's history may be entered from old paper records.
const MAX_PAST: TimeDelta = TimeDelta::days(20 * 366);

impl EventDraft {
    /// Checks every field against `now` and reports all that are wrong.
    pub fn parse(self, now: DateTime<Utc>) -> Result<NewEvent, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut bad = |field: &str, message: &str| {
            errors.push(FieldError {
                field: field.to_owned(),
                message: message.to_owned(),
            })
        };
        let kind = match self.kind.as_deref() {
            None => {
                bad("kind", "is required");
                None
            }
            Some(k) => {
                let parsed = EventKind::parse(k);
                if parsed.is_none() {
                    bad(
                        "kind",
                        "must be failure, repair, inspection or part_replaced",
                    );
                }
                parsed
            }
        };
        let failure_mode = self
            .failure_mode
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(str::to_owned);
        match &failure_mode {
            None if kind == Some(EventKind::Failure) => {
                bad("failure_mode", "is required for a failure")
            }
            Some(m) if m.chars().count() > 100 || m.chars().any(char::is_control) => {
                bad("failure_mode", "must be at most 100 printable characters")
            }
            _ => {}
        }
        let occurred_at = match self.occurred_at.as_deref() {
            None => {
                bad(
                    "occurred_at",
                    "is required (RFC 3339, e.g. 2026-12-08T06:30:00Z)",
                );
                None
            }
            Some(t) => match DateTime::parse_from_rfc3339(t) {
                Err(_) => {
                    bad(
                        "occurred_at",
                        "must be an RFC 3339 time, e.g. 2026-12-08T06:30:00Z",
                    );
                    None
                }
                Ok(t) => {
                    let t = t.with_timezone(&Utc);
                    if t > now + MAX_FUTURE {
                        bad("occurred_at", "is in the future");
                    } else if t < now - MAX_PAST {
                        bad("occurred_at", "is more than 20 years ago");
                    }
                    Some(t)
                }
            },
        };
        let note = self.note.as_deref().map(str::trim).unwrap_or_default();
        if note.chars().count() > 2_000 {
            bad("note", "must be at most 2000 characters");
        }
        match (kind, occurred_at) {
            (Some(kind), Some(occurred_at)) if errors.is_empty() => Ok(NewEvent {
                kind,
                failure_mode,
                occurred_at,
                note: note.to_owned(),
            }),
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn now() -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap_or_default()
    }

    fn draft(kind: &str, mode: Option<&str>, at: &str) -> EventDraft {
        EventDraft {
            kind: Some(kind.into()),
            failure_mode: mode.map(Into::into),
            occurred_at: Some(at.into()),
            note: None,
        }
    }

    #[test]
    fn a_failure_needs_its_mode_and_the_other_kinds_do_not() {
        let at = "2027-01-15T08:00:00Z";
        let failure = draft("failure", Some(" bearing_wear "), at)
            .parse(now())
            .unwrap();
        assert_eq!(failure.failure_mode.as_deref(), Some("bearing_wear"));
        let fields = |d: EventDraft| -> Vec<String> {
            d.parse(now())
                .unwrap_err()
                .into_iter()
                .map(|e| e.field)
                .collect()
        };
        assert_eq!(fields(draft("failure", None, at)), ["failure_mode"]);
        assert_eq!(fields(draft("failure", Some("  "), at)), ["failure_mode"]);
        assert!(draft("inspection", None, at).parse(now()).is_ok());
        assert!(draft("part_replaced", Some("seal"), at)
            .parse(now())
            .is_ok());
    }

    #[test]
    fn every_wrong_field_is_named() {
        let d = EventDraft {
            kind: Some("explosion".into()),
            failure_mode: None,
            occurred_at: Some("yesterday".into()),
            note: Some("x".repeat(2_001)),
        };
        let fields: Vec<String> = d
            .parse(now())
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(fields, ["kind", "occurred_at", "note"]);
        let future = draft("repair", None, "2030-01-01T00:00:00Z").parse(now());
        assert!(future.is_err());
    }

    proptest! {
        #[test]
        fn any_draft_parses_or_says_why(
            kind in proptest::option::of("[a-z_]{0,14}"),
            mode in proptest::option::of("\\PC{0,120}"),
            at in proptest::option::of("\\PC{0,30}"),
        ) {
            let d = EventDraft { kind, failure_mode: mode, occurred_at: at, note: None };
            match d.parse(now()) {
                Ok(e) => {
                    prop_assert!(e.occurred_at <= now() + MAX_FUTURE);
                    if e.kind == EventKind::Failure {
                        prop_assert!(e.failure_mode.is_some());
                    }
                }
                Err(errors) => prop_assert!(!errors.is_empty()),
            }
        }
    }
}
