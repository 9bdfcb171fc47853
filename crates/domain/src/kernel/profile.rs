//! Machine profiles: a kind of machine described as data rather than code. A profile lists the
//! metrics its machines report (unit, plausible range, kind, and what ESG accounting makes of
//! it) and the window its features are computed over. Tenants define their own; the three
//! kinds the platform's models know are built in.
//!
//! A profile changes by new versions, each in force from its `valid_from`: a reading is judged
//! by the version in force when it was measured, so back-filled data stays valid after an edit.

use std::fmt;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::catalogue::{MetricSpec, Unit};
use crate::ids::MetricName;
use crate::machine::MachineType;

/// A profile's id: 1-64 characters of `a-z`, `0-9`, `_` and `-`, starting with a letter
/// (`centrifugal_pump`, `conveyor-b2`).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(transparent)]
pub struct ProfileId(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "profile id {0:?} must be 1-64 characters of a-z, 0-9, '_' and '-', starting with a letter"
)]
pub struct InvalidProfileId(pub String);

impl ProfileId {
    pub fn parse(s: &str) -> Result<Self, InvalidProfileId> {
        let valid = (1..=64).contains(&s.len())
            && s.starts_with(|c: char| c.is_ascii_lowercase())
            && s.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-');
        if valid {
            Ok(Self(s.to_owned()))
        } else {
            Err(InvalidProfileId(s.to_owned()))
        }
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The id of a built-in kind's profile (its machine type's name).
    pub fn of_type(t: MachineType) -> Self {
        Self(t.as_str().to_owned())
    }

    /// The built-in kind this id names, if it names one.
    pub fn machine_type(&self) -> Option<MachineType> {
        self.0.parse().ok()
    }
}

impl fmt::Display for ProfileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A unit symbol as devices and people write it: `bar`, `m3/h`, `degC`, `%`, `A`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct UnitSymbol(String);

impl UnitSymbol {
    /// 1-16 characters of letters, digits and `% / . _ ^ -` (`°` is written `deg`).
    pub fn parse(s: &str) -> Option<Self> {
        let valid = (1..=16).contains(&s.len())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "%/._^-".contains(c));
        valid.then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl From<Unit> for UnitSymbol {
    fn from(u: Unit) -> Self {
        Self(u.symbol().to_owned())
    }
}

/// How a metric's values behave over time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricKind {
    /// A level measured now (temperature, pressure, vibration).
    Gauge,
    /// A running total that only grows until it is reset (operating hours, strokes).
    Counter,
    /// A flow per unit of time (fuel in L/h, power in kW, throughput in t/h).
    Rate,
}

/// What ESG accounting makes of a rate metric.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EsgActivity {
    /// Diesel burned, in litres per hour.
    Diesel,
    /// Electricity drawn, in kilowatts.
    Electricity,
    /// Production, in tonnes per hour.
    Production,
}

impl EsgActivity {
    /// The unit the metric must be in for its integral to be the activity's amount.
    pub fn rate_unit(self) -> Unit {
        match self {
            EsgActivity::Diesel => Unit::LitresPerHour,
            EsgActivity::Electricity => Unit::Kilowatts,
            EsgActivity::Production => Unit::TonnesPerHour,
        }
    }

    fn of_unit(unit: Unit) -> Option<Self> {
        [
            EsgActivity::Diesel,
            EsgActivity::Electricity,
            EsgActivity::Production,
        ]
        .into_iter()
        .find(|a| a.rate_unit() == unit)
    }
}

/// One metric of a profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProfileMetric {
    pub name: MetricName,
    pub unit: UnitSymbol,
    /// Lowest physically plausible value (inclusive): below it the sensor or message is broken.
    pub min: f64,
    /// Highest physically plausible value (inclusive).
    pub max: f64,
    pub kind: MetricKind,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub activity: Option<EsgActivity>,
    pub description: String,
}

impl ProfileMetric {
    pub fn is_plausible(&self, value: f64) -> bool {
        value.is_finite() && value >= self.min && value <= self.max
    }

    fn of_spec(spec: &MetricSpec) -> Self {
        let activity = EsgActivity::of_unit(spec.unit);
        let kind = if activity.is_some() || spec.unit == Unit::CubicMetresPerHour {
            MetricKind::Rate
        } else {
            MetricKind::Gauge
        };
        Self {
            name: MetricName::parse(spec.name).unwrap_or_else(|_| {
                unreachable!("the built-in catalogue's names are tested to be valid")
            }),
            unit: spec.unit.into(),
            min: spec.min,
            max: spec.max,
            kind,
            activity,
            description: spec.description.to_owned(),
        }
    }
}

/// What one version of a profile says.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProfileSpec {
    pub name: String,
    pub description: String,
    pub metrics: Vec<ProfileMetric>,
    /// The window (seconds) the machine's features are computed over.
    pub feature_window_s: u32,
}

impl ProfileSpec {
    pub fn metric(&self, name: &MetricName) -> Option<&ProfileMetric> {
        self.metrics.iter().find(|m| &m.name == name)
    }
}

/// A version of a profile.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Profile {
    pub id: ProfileId,
    pub version: u32,
    /// Built-in profiles are the platform's, the same for every tenant, and read-only.
    pub builtin: bool,
    /// When this version came into force.
    pub valid_from: DateTime<Utc>,
    #[serde(flatten)]
    pub spec: ProfileSpec,
}

/// The built-ins came into force with the platform: every reading ever stored is judged by them.
const BUILTIN_SINCE: DateTime<Utc> = DateTime::UNIX_EPOCH;

/// The feature window of the built-in kinds: the one their models are trained on (6 h).
pub const BUILTIN_FEATURE_WINDOW_S: u32 = 6 * 3_600;

impl Profile {
    /// The built-in profile of a kind the platform's models know.
    pub fn builtin(t: MachineType) -> Self {
        let name = match t {
            MachineType::HaulTruck => "Haul truck",
            MachineType::GrindingMill => "Grinding mill",
            MachineType::IndustrialBoiler => "Industrial boiler",
        };
        Self {
            id: ProfileId::of_type(t),
            version: 1,
            builtin: true,
            valid_from: BUILTIN_SINCE,
            spec: ProfileSpec {
                name: name.to_owned(),
                description: format!(
                    "Built-in: the {} the platform's simulator and models know.",
                    name.to_lowercase()
                ),
                metrics: t.catalogue().iter().map(ProfileMetric::of_spec).collect(),
                feature_window_s: BUILTIN_FEATURE_WINDOW_S,
            },
        }
    }

    pub fn builtins() -> Vec<Self> {
        MachineType::ALL.into_iter().map(Self::builtin).collect()
    }
}

/// A profile's versions, oldest first: which one judges a reading measured at a given time.
#[derive(Debug, Clone, PartialEq)]
pub struct ProfileHistory {
    versions: Vec<Profile>,
}

impl ProfileHistory {
    /// `None` for no versions. Versions are sorted by `valid_from`.
    pub fn new(mut versions: Vec<Profile>) -> Option<Self> {
        versions.sort_by_key(|p| (p.valid_from, p.version));
        (!versions.is_empty()).then_some(Self { versions })
    }

    pub fn latest(&self) -> &Profile {
        // `new` refuses an empty history.
        &self.versions[self.versions.len() - 1]
    }

    /// The version in force at `ts`; a reading from before the first version is judged by the
    /// first (a machine's devices may back-fill from before the profile was written down).
    pub fn at(&self, ts: DateTime<Utc>) -> &Profile {
        self.versions
            .iter()
            .rev()
            .find(|p| p.valid_from <= ts)
            .unwrap_or(&self.versions[0])
    }

    pub fn versions(&self) -> &[Profile] {
        &self.versions
    }
}

/// A field of a profile draft that is not acceptable, and why: `field` is a path such as
/// `metrics[2].unit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

/// A profile as a client writes it, before it is checked.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileDraft {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    #[serde(default)]
    pub metrics: Option<Vec<MetricDraft>>,
    #[serde(default)]
    pub feature_window_s: Option<u64>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricDraft {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub unit: Option<String>,
    #[serde(default)]
    pub min: Option<f64>,
    #[serde(default)]
    pub max: Option<f64>,
    #[serde(default)]
    pub kind: Option<MetricKind>,
    #[serde(default)]
    pub activity: Option<EsgActivity>,
    #[serde(default)]
    pub description: Option<String>,
}

/// At most this many metrics per profile: every reading of a machine is checked against them.
pub const MAX_PROFILE_METRICS: usize = 200;
/// Feature windows from one minute to thirty days.
pub const FEATURE_WINDOW_S: std::ops::RangeInclusive<u64> = 60..=30 * 86_400;

impl ProfileDraft {
    /// Checks every field and reports all that are wrong, not just the first.
    pub fn parse(self) -> Result<ProfileSpec, Vec<FieldError>> {
        let mut errors = Vec::new();
        let mut bad = |field: String, message: &str| {
            errors.push(FieldError {
                field,
                message: message.to_owned(),
            })
        };
        let name = self.name.as_deref().map(str::trim).unwrap_or_default();
        if name.is_empty() {
            bad("name".into(), "is required");
        } else if name.chars().count() > 100 {
            bad("name".into(), "must be at most 100 characters");
        }
        let description = self
            .description
            .as_deref()
            .map(str::trim)
            .unwrap_or_default();
        if description.chars().count() > 2_000 {
            bad("description".into(), "must be at most 2000 characters");
        }
        let feature_window_s = match self.feature_window_s {
            None => BUILTIN_FEATURE_WINDOW_S,
            Some(w) if FEATURE_WINDOW_S.contains(&w) => w as u32,
            Some(_) => {
                bad(
                    "feature_window_s".into(),
                    "must be between 60 (a minute) and 2592000 (30 days) seconds",
                );
                BUILTIN_FEATURE_WINDOW_S
            }
        };
        let drafts = self.metrics.unwrap_or_default();
        if drafts.is_empty() {
            bad("metrics".into(), "must list at least one metric");
        } else if drafts.len() > MAX_PROFILE_METRICS {
            bad("metrics".into(), "must list at most 200 metrics");
        }
        let mut metrics = Vec::with_capacity(drafts.len());
        let mut seen = std::collections::HashSet::new();
        for (i, m) in drafts.into_iter().enumerate() {
            let at = |f: &str| format!("metrics[{i}].{f}");
            let name = match m.name.as_deref().map(MetricName::parse) {
                None => {
                    bad(at("name"), "is required");
                    None
                }
                Some(Err(e)) => {
                    bad(at("name"), &e.to_string());
                    None
                }
                Some(Ok(n)) => Some(n),
            };
            if let Some(n) = &name {
                if !seen.insert(n.clone()) {
                    bad(at("name"), "appears more than once");
                }
            }
            let unit = match m.unit.as_deref() {
                None => {
                    bad(at("unit"), "is required");
                    None
                }
                Some(u) => {
                    let parsed = UnitSymbol::parse(u);
                    if parsed.is_none() {
                        bad(
                            at("unit"),
                            "must be 1-16 characters of letters, digits and % / . _ ^ -",
                        );
                    }
                    parsed
                }
            };
            let (min, max) = (m.min, m.max);
            match (min, max) {
                (None, _) => bad(at("min"), "is required"),
                (_, None) => bad(at("max"), "is required"),
                (Some(lo), Some(hi)) if !lo.is_finite() || !hi.is_finite() => {
                    bad(at("min"), "min and max must be finite numbers")
                }
                (Some(lo), Some(hi)) if lo >= hi => bad(at("max"), "must be greater than min"),
                _ => {}
            }
            let kind = m.kind.unwrap_or(MetricKind::Gauge);
            if let Some(activity) = m.activity {
                if kind != MetricKind::Rate {
                    bad(at("kind"), "must be rate for a metric with an ESG activity");
                }
                if unit
                    .as_ref()
                    .is_some_and(|u| u.as_str() != activity.rate_unit().symbol())
                {
                    bad(
                        at("unit"),
                        match activity {
                            EsgActivity::Diesel => "must be L/h for the diesel activity",
                            EsgActivity::Electricity => "must be kW for the electricity activity",
                            EsgActivity::Production => "must be t/h for the production activity",
                        },
                    );
                }
            }
            let description = m.description.as_deref().map(str::trim).unwrap_or_default();
            if description.chars().count() > 500 {
                bad(at("description"), "must be at most 500 characters");
            }
            if let (Some(name), Some(unit), Some(min), Some(max)) = (name, unit, min, max) {
                metrics.push(ProfileMetric {
                    name,
                    unit,
                    min,
                    max,
                    kind,
                    activity: m.activity,
                    description: description.to_owned(),
                });
            }
        }
        if errors.is_empty() {
            Ok(ProfileSpec {
                name: name.to_owned(),
                description: description.to_owned(),
                metrics,
                feature_window_s,
            })
        } else {
            Err(errors)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeDelta;
    use proptest::prelude::*;

    fn pump() -> ProfileDraft {
        serde_json::from_value(serde_json::json!({
            "name": "Centrifugal pump",
            "metrics": [
                {"name": "discharge_pressure", "unit": "bar", "min": 0, "max": 40},
                {"name": "power_kw", "unit": "kW", "min": 0, "max": 500,
                 "kind": "rate", "activity": "electricity"}
            ]
        }))
        .unwrap()
    }

    #[test]
    fn a_well_formed_draft_becomes_a_spec_with_defaults() {
        let spec = pump().parse().unwrap();
        assert_eq!(spec.name, "Centrifugal pump");
        assert_eq!(spec.metrics.len(), 2);
        assert_eq!(spec.metrics[0].kind, MetricKind::Gauge);
        assert_eq!(spec.metrics[1].activity, Some(EsgActivity::Electricity));
        assert_eq!(spec.feature_window_s, BUILTIN_FEATURE_WINDOW_S);
    }

    #[test]
    fn every_wrong_field_is_reported_with_its_path() {
        let draft: ProfileDraft = serde_json::from_value(serde_json::json!({
            "name": " ",
            "feature_window_s": 5,
            "metrics": [
                {"name": "Bad Name", "unit": "bar", "min": 0, "max": 1},
                {"name": "flow", "unit": "litres per hour", "min": 5, "max": 5},
                {"name": "fuel", "unit": "kW", "min": 0, "max": 9, "activity": "diesel"},
                {"name": "flow", "unit": "m3/h", "min": 0, "max": 9}
            ]
        }))
        .unwrap();
        let fields: Vec<String> = draft
            .parse()
            .unwrap_err()
            .into_iter()
            .map(|e| e.field)
            .collect();
        assert_eq!(
            fields,
            [
                "name",
                "feature_window_s",
                "metrics[0].name",
                "metrics[1].unit",
                "metrics[1].max",
                "metrics[2].kind",
                "metrics[2].unit",
                "metrics[3].name",
            ]
        );
    }

    #[test]
    fn the_built_ins_carry_the_catalogue_and_its_esg_activities() {
        for t in MachineType::ALL {
            let p = Profile::builtin(t);
            assert_eq!(p.id.machine_type(), Some(t));
            assert_eq!(p.spec.metrics.len(), t.catalogue().len());
        }
        let truck = Profile::builtin(MachineType::HaulTruck);
        let fuel = truck
            .spec
            .metric(&MetricName::parse("fuel_rate_lh").unwrap())
            .unwrap();
        assert_eq!(fuel.activity, Some(EsgActivity::Diesel));
        assert_eq!(fuel.kind, MetricKind::Rate);
    }

    #[test]
    fn a_reading_is_judged_by_the_version_in_force_when_it_was_measured() {
        let t0 = DateTime::<Utc>::from_timestamp(1_800_000_000, 0).unwrap();
        let version = |v: u32, from: DateTime<Utc>| Profile {
            id: ProfileId::parse("pump").unwrap(),
            version: v,
            builtin: false,
            valid_from: from,
            spec: pump().parse().unwrap(),
        };
        let h = ProfileHistory::new(vec![version(2, t0 + TimeDelta::hours(1)), version(1, t0)])
            .unwrap();
        assert_eq!(h.at(t0 - TimeDelta::days(1)).version, 1);
        assert_eq!(h.at(t0 + TimeDelta::minutes(59)).version, 1);
        assert_eq!(h.at(t0 + TimeDelta::hours(1)).version, 2);
        assert_eq!(h.latest().version, 2);
        assert!(ProfileHistory::new(Vec::new()).is_none());
    }

    proptest! {
        #[test]
        fn profile_ids_parse_exactly_the_documented_alphabet(s in "\\PC{0,70}") {
            let ok = ProfileId::parse(&s).is_ok();
            let expected = (1..=64).contains(&s.len())
                && s.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && s.chars().all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '-'));
            prop_assert_eq!(ok, expected);
            if let Ok(id) = ProfileId::parse(&s) {
                prop_assert_eq!(id.as_str(), s.as_str());
            }
        }

        #[test]
        fn any_draft_parses_or_says_why_without_panicking(
            name in proptest::option::of("\\PC{0,120}"),
            unit in proptest::option::of("\\PC{0,20}"),
            min in proptest::option::of(proptest::num::f64::ANY),
            max in proptest::option::of(proptest::num::f64::ANY),
            window in proptest::option::of(0u64..10_000_000),
        ) {
            let draft = ProfileDraft {
                name: name.clone(),
                description: None,
                metrics: Some(vec![MetricDraft {
                    name: Some("m".into()),
                    unit,
                    min,
                    max,
                    ..MetricDraft::default()
                }]),
                feature_window_s: window,
            };
            match draft.parse() {
                Ok(spec) => {
                    prop_assert!(!spec.name.is_empty());
                    let m = &spec.metrics[0];
                    prop_assert!(m.min.is_finite() && m.max.is_finite() && m.min < m.max);
                    prop_assert!(FEATURE_WINDOW_S.contains(&u64::from(spec.feature_window_s)));
                }
                Err(errors) => prop_assert!(!errors.is_empty()),
            }
        }
    }
}
