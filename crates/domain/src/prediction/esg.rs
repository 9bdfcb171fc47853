//! ESG: greenhouse-gas emissions of the fleet under the GHG Protocol's scopes 1 and 2.
//!
//! Activity is what ingestion integrated from rate metrics ([`MeteredActivity`]: litres of fuel
//! from `fuel_rate_lh`, kWh from `power_kw`, tonnes from `throughput_tph`). Emissions are
//! activity times an [`EmissionFactor`] valid when the activity happened:
//!
//! - scope 1 (direct): fuel burned by the machine itself (haul-truck diesel, boiler fuel oil);
//! - scope 2 (indirect): grid electricity the machine drew, with the factor of the site's grid
//!   region.
//!
//! Factors are versioned: each version is valid over `[valid_from, valid_to)`. An activity
//! period that straddles a version change is split pro rata by time, and so is one that
//! straddles the edge of a report window, so a change only ever affects activity inside its own
//! validity. Every version also records when it became known (`recorded_at`) and when it was
//! closed (`closed_at`): [`FactorBook::as_of`] rebuilds the factors exactly as they were known at
//! an instant, which makes any past report reproducible.
//!
//! Everything here is pure arithmetic over values the caller loaded; sums run in a fixed
//! order so the same inputs always give bit-for-bit the same report.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::activity::ActivityUnit;
use crate::ids::{MachineId, MetricName, SiteId};
use crate::machine::MachineType;

/// Why an ESG value or request is invalid.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EsgError {
    #[error("`from` must be before `to`")]
    EmptyWindow,
    #[error("the window spans {days} days; at most {max} are served")]
    WindowTooLong { days: i64, max: i64 },
    #[error("activity amount must be finite and not negative, got {0}")]
    BadAmount(f64),
    #[error("an activity period must end after it starts")]
    EmptyPeriod,
    #[error("kg CO2e per unit must be finite, not negative and at most {max}, got {value}")]
    BadFactor { value: f64, max: f64 },
    #[error("{0} is a production measure; it has no emission factor")]
    NotAnEmissionKind(ActivityKind),
    #[error("the citation must be 1 to {max} characters")]
    BadCitation { max: usize },
    #[error("unknown activity kind {0:?}; known: diesel, fuel_oil, electricity, ore_milled")]
    UnknownKind(String),
    #[error("unknown factor source {0:?}; known: ipcc, epa, defra, other")]
    UnknownSource(String),
    #[error("region must be 1 to {max} characters of A-Z, 0-9 and '-', got {0:?}", max = Region::MAX_LEN)]
    BadRegion(String),
}

/// The GHG Protocol scope an emission falls in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// Direct: fuel burned by equipment the company owns or controls.
    Scope1,
    /// Indirect: purchased electricity, counted where it is consumed (location-based).
    Scope2,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Scope1 => "scope1",
            Scope::Scope2 => "scope2",
        }
    }
}

/// What an amount of activity is, which decides its unit, its scope and its factor.
///
/// | machine type        | metric           | kind         | unit | scope      |
/// |---------------------|------------------|--------------|------|------------|
/// | `haul_truck`        | `fuel_rate_lh`   | `diesel`     | L    | 1          |
/// | `industrial_boiler` | `fuel_rate_lh`   | `fuel_oil`   | L    | 1          |
/// | `grinding_mill`     | `power_kw`       | `electricity`| kWh  | 2          |
/// | `grinding_mill`     | `throughput_tph` | `ore_milled` | t    | production |
///
/// Haul trucks report payload (`load_tons`), a level rather than a rate, so they produce no
/// tonnes here; boiler steam flow is volumetric (m3/h) and is not integrated upstream, so
/// boilers produce none either. The mill's `kwh` counter measures the same energy as
/// `power_kw`; only the integrated power is used, so electricity is never counted twice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActivityKind {
    Diesel,
    FuelOil,
    Electricity,
    OreMilled,
}

impl ActivityKind {
    pub const ALL: [ActivityKind; 4] = [
        ActivityKind::Diesel,
        ActivityKind::FuelOil,
        ActivityKind::Electricity,
        ActivityKind::OreMilled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ActivityKind::Diesel => "diesel",
            ActivityKind::FuelOil => "fuel_oil",
            ActivityKind::Electricity => "electricity",
            ActivityKind::OreMilled => "ore_milled",
        }
    }

    pub fn parse(s: &str) -> Result<Self, EsgError> {
        Self::ALL
            .into_iter()
            .find(|k| k.as_str() == s)
            .ok_or_else(|| EsgError::UnknownKind(s.to_owned()))
    }

    pub fn unit(self) -> ActivityUnit {
        match self {
            ActivityKind::Diesel | ActivityKind::FuelOil => ActivityUnit::Litres,
            ActivityKind::Electricity => ActivityUnit::KilowattHours,
            ActivityKind::OreMilled => ActivityUnit::Tonnes,
        }
    }

    /// The scope of the emissions, or `None` for production (the denominator of intensity).
    pub fn scope(self) -> Option<Scope> {
        match self {
            ActivityKind::Diesel | ActivityKind::FuelOil => Some(Scope::Scope1),
            ActivityKind::Electricity => Some(Scope::Scope2),
            ActivityKind::OreMilled => None,
        }
    }

    /// The kind of a machine type's metric, `None` when the metric is not accounted.
    pub fn classify(machine_type: MachineType, metric: &str) -> Option<Self> {
        match (machine_type, metric) {
            (MachineType::HaulTruck, "fuel_rate_lh") => Some(ActivityKind::Diesel),
            (MachineType::IndustrialBoiler, "fuel_rate_lh") => Some(ActivityKind::FuelOil),
            (MachineType::GrindingMill, "power_kw") => Some(ActivityKind::Electricity),
            (MachineType::GrindingMill, "throughput_tph") => Some(ActivityKind::OreMilled),
            _ => None,
        }
    }
}

impl fmt::Display for ActivityKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A grid or factor region (`UK`, `US`, `AU-WA-NWIS`), stored upper-case. [`Region::GLOBAL`]
/// holds the defaults used where a region has no factor of its own (fuel chemistry does not
/// depend on where it burns; grid mixes do).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Region(String);

impl Region {
    pub const MAX_LEN: usize = 32;
    pub const GLOBAL: &'static str = "GLOBAL";

    /// Parses a region code; lower case is accepted and upper-cased, so `uk` and `UK` are one
    /// region.
    pub fn parse(s: &str) -> Result<Self, EsgError> {
        let ok = !s.is_empty()
            && s.len() <= Self::MAX_LEN
            && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
            && s.starts_with(|c: char| c.is_ascii_alphanumeric());
        if ok {
            Ok(Self(s.to_ascii_uppercase()))
        } else {
            Err(EsgError::BadRegion(s.chars().take(40).collect()))
        }
    }

    pub fn global() -> Self {
        Self(Self::GLOBAL.to_owned())
    }

    pub fn is_global(&self) -> bool {
        self.0 == Self::GLOBAL
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl TryFrom<String> for Region {
    type Error = EsgError;
    fn try_from(s: String) -> Result<Self, EsgError> {
        Self::parse(&s)
    }
}

impl From<Region> for String {
    fn from(r: Region) -> String {
        r.0
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Who published a factor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum FactorSource {
    Ipcc,
    Epa,
    /// The UK government's conversion factors (DEFRA, now published by DESNZ).
    Defra,
    Other,
}

impl FactorSource {
    pub fn as_str(self) -> &'static str {
        match self {
            FactorSource::Ipcc => "ipcc",
            FactorSource::Epa => "epa",
            FactorSource::Defra => "defra",
            FactorSource::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Result<Self, EsgError> {
        match s {
            "ipcc" => Ok(FactorSource::Ipcc),
            "epa" => Ok(FactorSource::Epa),
            "defra" => Ok(FactorSource::Defra),
            "other" => Ok(FactorSource::Other),
            _ => Err(EsgError::UnknownSource(s.chars().take(40).collect())),
        }
    }
}

/// One version of an emission factor.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmissionFactor {
    /// Unique across all versions of all factors.
    pub id: i64,
    /// 1 for the first version of a (kind, region), then 2, 3, ...
    pub version: i32,
    pub kind: ActivityKind,
    pub region: Region,
    pub kg_co2e_per_unit: f64,
    pub source: FactorSource,
    /// The publication, table and year the value comes from.
    pub citation: String,
    pub valid_from: DateTime<Utc>,
    /// Exclusive; `None` while this is the newest version.
    pub valid_to: Option<DateTime<Utc>>,
    /// When the platform learned this version.
    pub recorded_at: DateTime<Utc>,
    /// When `valid_to` was set (the version was superseded).
    pub closed_at: Option<DateTime<Utc>>,
}

impl EmissionFactor {
    pub fn unit(&self) -> ActivityUnit {
        self.kind.unit()
    }

    pub fn is_valid_at(&self, t: DateTime<Utc>) -> bool {
        self.valid_from <= t && self.valid_to.is_none_or(|to| t < to)
    }
}

/// A factor version to add. Adding one closes the open version of its (kind, region) at
/// `valid_from`.
#[derive(Debug, Clone, PartialEq)]
pub struct NewFactor {
    kind: ActivityKind,
    region: Region,
    kg_co2e_per_unit: f64,
    source: FactorSource,
    citation: String,
    valid_from: DateTime<Utc>,
}

impl NewFactor {
    /// No published factor is anywhere near this (coal is a few kg per kg); anything above is
    /// a unit mistake.
    pub const MAX_KG_PER_UNIT: f64 = 1_000.0;
    pub const MAX_CITATION: usize = 500;

    pub fn new(
        kind: ActivityKind,
        region: Region,
        kg_co2e_per_unit: f64,
        source: FactorSource,
        citation: &str,
        valid_from: DateTime<Utc>,
    ) -> Result<Self, EsgError> {
        if kind.scope().is_none() {
            return Err(EsgError::NotAnEmissionKind(kind));
        }
        if !(kg_co2e_per_unit.is_finite()
            && (0.0..=Self::MAX_KG_PER_UNIT).contains(&kg_co2e_per_unit))
        {
            return Err(EsgError::BadFactor {
                value: kg_co2e_per_unit,
                max: Self::MAX_KG_PER_UNIT,
            });
        }
        let citation = citation.trim();
        if citation.is_empty() || citation.chars().count() > Self::MAX_CITATION {
            return Err(EsgError::BadCitation {
                max: Self::MAX_CITATION,
            });
        }
        Ok(Self {
            kind,
            region,
            kg_co2e_per_unit,
            source,
            citation: citation.to_owned(),
            valid_from,
        })
    }

    pub fn kind(&self) -> ActivityKind {
        self.kind
    }
    pub fn region(&self) -> &Region {
        &self.region
    }
    pub fn kg_co2e_per_unit(&self) -> f64 {
        self.kg_co2e_per_unit
    }
    pub fn source(&self) -> FactorSource {
        self.source
    }
    pub fn citation(&self) -> &str {
        &self.citation
    }
    pub fn valid_from(&self) -> DateTime<Utc> {
        self.valid_from
    }
}

/// A time interval `[from, to)` with `from < to`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Period {
    from: DateTime<Utc>,
    to: DateTime<Utc>,
}

impl Period {
    pub fn new(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Self, EsgError> {
        if from < to {
            Ok(Self { from, to })
        } else {
            Err(EsgError::EmptyWindow)
        }
    }

    /// A report window: non-empty and at most [`Period::MAX_REPORT_DAYS`] long, so one request
    /// cannot make the service load years of activity.
    pub fn report(from: DateTime<Utc>, to: DateTime<Utc>) -> Result<Self, EsgError> {
        let p = Self::new(from, to)?;
        let days = (to - from).num_days();
        if to - from > TimeDelta::days(Self::MAX_REPORT_DAYS) {
            return Err(EsgError::WindowTooLong {
                days,
                max: Self::MAX_REPORT_DAYS,
            });
        }
        Ok(p)
    }

    pub const MAX_REPORT_DAYS: i64 = 366;

    pub fn from(&self) -> DateTime<Utc> {
        self.from
    }
    pub fn to(&self) -> DateTime<Utc> {
        self.to
    }

    fn seconds(&self) -> f64 {
        (self.to - self.from).as_seconds_f64()
    }

    fn intersect(&self, other: &Period) -> Option<Period> {
        Period::new(self.from.max(other.from), self.to.min(other.to)).ok()
    }
}

/// An amount of one metric of one machine over `[from, to)`: a rate integrated over time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeteredActivity {
    pub metric: MetricName,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub amount: f64,
}

impl MeteredActivity {
    pub fn new(
        metric: MetricName,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        amount: f64,
    ) -> Result<Self, EsgError> {
        if from >= to {
            return Err(EsgError::EmptyPeriod);
        }
        if !amount.is_finite() || amount < 0.0 {
            return Err(EsgError::BadAmount(amount));
        }
        Ok(Self {
            metric,
            from,
            to,
            amount,
        })
    }

    fn period(&self) -> Option<Period> {
        Period::new(self.from, self.to).ok()
    }
}

/// A machine as the ledger needs it, with the grid region of its site already resolved
/// ([`Region::GLOBAL`] when the site has none).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MachineRef {
    pub id: MachineId,
    pub machine_type: MachineType,
    pub site: Option<SiteId>,
    pub region: Region,
}

/// Activity of one machine, as loaded for a report.
#[derive(Debug, Clone, PartialEq)]
pub struct MachineActivity {
    pub machine: MachineId,
    pub activity: MeteredActivity,
}

/// The factors known at some instant, indexed for lookups.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FactorBook {
    /// By (kind, region), each list sorted by `valid_from`.
    by_key: BTreeMap<(ActivityKind, Region), Vec<EmissionFactor>>,
}

impl FactorBook {
    pub fn new(factors: impl IntoIterator<Item = EmissionFactor>) -> Self {
        let mut by_key: BTreeMap<(ActivityKind, Region), Vec<EmissionFactor>> = BTreeMap::new();
        for f in factors {
            by_key
                .entry((f.kind, f.region.clone()))
                .or_default()
                .push(f);
        }
        for list in by_key.values_mut() {
            list.sort_by(|a, b| a.valid_from.cmp(&b.valid_from).then(a.id.cmp(&b.id)));
        }
        Self { by_key }
    }

    /// The factors as they were known at `t`: versions recorded later are left out, and a
    /// version closed later is still open. Reports computed with the same `as_of` are
    /// identical however the factors were edited since.
    pub fn as_of(factors: impl IntoIterator<Item = EmissionFactor>, t: DateTime<Utc>) -> Self {
        Self::new(factors.into_iter().filter_map(|mut f| {
            if f.recorded_at > t {
                return None;
            }
            if f.closed_at.is_none_or(|c| c > t) {
                f.valid_to = None;
                f.closed_at = None;
            }
            Some(f)
        }))
    }

    pub fn factors(&self) -> impl Iterator<Item = &EmissionFactor> {
        self.by_key.values().flatten()
    }

    fn exact_at(
        &self,
        kind: ActivityKind,
        region: &Region,
        t: DateTime<Utc>,
    ) -> Option<&EmissionFactor> {
        // The newest version that started by `t`; it applies if it has not ended.
        self.by_key
            .get(&(kind, region.clone()))?
            .iter()
            .rev()
            .find(|f| f.valid_from <= t)
            .filter(|f| f.is_valid_at(t))
    }

    /// The factor for activity of `kind` at `t` in `region`: the region's own, else the
    /// global default.
    pub fn valid_at(
        &self,
        kind: ActivityKind,
        region: &Region,
        t: DateTime<Utc>,
    ) -> Option<&EmissionFactor> {
        self.exact_at(kind, region, t).or_else(|| {
            (!region.is_global())
                .then(|| self.exact_at(kind, &Region::global(), t))
                .flatten()
        })
    }

    /// Cuts `period` where the applicable factor may change, with the factor of each piece.
    /// Between two consecutive cuts no version starts or ends, so the factor found at a
    /// piece's start holds for all of it.
    fn pieces(
        &self,
        kind: ActivityKind,
        region: &Region,
        period: Period,
    ) -> Vec<(Period, Option<&EmissionFactor>)> {
        let mut cuts = BTreeSet::new();
        let mut add = |list: Option<&Vec<EmissionFactor>>| {
            for f in list.into_iter().flatten() {
                for t in std::iter::once(f.valid_from).chain(f.valid_to) {
                    if period.from < t && t < period.to {
                        cuts.insert(t);
                    }
                }
            }
        };
        add(self.by_key.get(&(kind, region.clone())));
        if !region.is_global() {
            add(self.by_key.get(&(kind, Region::global())));
        }
        let mut bounds = Vec::with_capacity(cuts.len() + 2);
        bounds.push(period.from);
        bounds.extend(cuts);
        bounds.push(period.to);
        bounds
            .windows(2)
            .filter_map(|w| Period::new(w[0], w[1]).ok())
            .map(|p| (p, self.valid_at(kind, region, p.from)))
            .collect()
    }
}

/// The factor version a ledger line used.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FactorUse {
    pub id: i64,
    pub version: i32,
    pub region: Region,
    pub kg_co2e_per_unit: f64,
    pub source: FactorSource,
    pub citation: String,
}

impl From<&EmissionFactor> for FactorUse {
    fn from(f: &EmissionFactor) -> Self {
        Self {
            id: f.id,
            version: f.version,
            region: f.region.clone(),
            kg_co2e_per_unit: f.kg_co2e_per_unit,
            source: f.source,
            citation: f.citation.clone(),
        }
    }
}

/// The activity of one machine and kind accounted with one factor version (or with none:
/// production, or activity no factor covers).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LedgerLine {
    pub machine: MachineId,
    pub machine_type: MachineType,
    pub site: Option<SiteId>,
    pub kind: ActivityKind,
    pub scope: Option<Scope>,
    /// The machine's region the factor was looked up for.
    pub region: Region,
    pub unit: ActivityUnit,
    pub amount: f64,
    pub factor: Option<FactorUse>,
    pub kg_co2e: f64,
}

impl LedgerLine {
    /// Emission activity that no factor covered: counted in `uncovered`, not silently zero.
    pub fn is_uncovered(&self) -> bool {
        self.scope.is_some() && self.factor.is_none()
    }
}

/// Emissions and production of a set of lines.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct Totals {
    pub scope1_kg_co2e: f64,
    pub scope2_kg_co2e: f64,
    pub total_kg_co2e: f64,
    /// Tonnes produced (ore milled).
    pub production_t: f64,
    /// kg CO2e per tonne produced; `None` when nothing was produced.
    pub intensity_kg_co2e_per_t: Option<f64>,
}

impl Totals {
    fn of<'a>(lines: impl IntoIterator<Item = &'a LedgerLine>) -> Self {
        let mut t = Totals::default();
        for l in lines {
            match l.scope {
                Some(Scope::Scope1) => t.scope1_kg_co2e += l.kg_co2e,
                Some(Scope::Scope2) => t.scope2_kg_co2e += l.kg_co2e,
                None => t.production_t += l.amount,
            }
        }
        t.total_kg_co2e = t.scope1_kg_co2e + t.scope2_kg_co2e;
        t.intensity_kg_co2e_per_t = carbon_intensity(t.total_kg_co2e, t.production_t);
        t
    }
}

/// kg CO2e per tonne produced; `None` without production (an intensity over zero tonnes is
/// undefined, not infinite).
pub fn carbon_intensity(kg_co2e: f64, tonnes: f64) -> Option<f64> {
    (tonnes > 0.0 && tonnes.is_finite() && kg_co2e.is_finite()).then(|| kg_co2e / tonnes)
}

/// Per-machine view of a ledger.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MachineSummary {
    pub machine_id: MachineId,
    pub machine_type: MachineType,
    pub site: Option<SiteId>,
    #[serde(flatten)]
    pub totals: Totals,
}

/// Per-site view of a ledger (`site: None` gathers machines without a site).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SiteSummary {
    pub site: Option<SiteId>,
    #[serde(flatten)]
    pub totals: Totals,
}

/// Emission activity no factor covered, by kind and region: a gap to fill, reported so that a
/// missing factor never reads as zero emissions.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Uncovered {
    pub kind: ActivityKind,
    pub region: Region,
    pub unit: ActivityUnit,
    pub amount: f64,
}

/// Every accounted line of a report window, in a fixed order (machine, kind, factor id).
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Ledger {
    pub lines: Vec<LedgerLine>,
}

impl Ledger {
    /// Accounts `activity` inside `window`. Activity of machines not in `machines`, and
    /// metrics that are not accounted for the machine's type, are left out. A period that
    /// crosses the window's edge or a factor change is split pro rata by time.
    pub fn account(
        window: Period,
        machines: &[MachineRef],
        activity: &[MachineActivity],
        book: &FactorBook,
    ) -> Self {
        let by_id: BTreeMap<&MachineId, &MachineRef> =
            machines.iter().map(|m| (&m.id, m)).collect();
        type Key = (MachineId, ActivityKind, Option<i64>);
        let mut acc: BTreeMap<Key, LedgerLine> = BTreeMap::new();
        for a in activity {
            let Some(m) = by_id.get(&a.machine) else {
                continue;
            };
            let Some(kind) = ActivityKind::classify(m.machine_type, a.activity.metric.as_str())
            else {
                continue;
            };
            for (amount, factor) in split(&a.activity, window, kind, &m.region, book) {
                let key = (m.id.clone(), kind, factor.map(|f| f.id));
                let line = acc.entry(key).or_insert_with(|| LedgerLine {
                    machine: m.id.clone(),
                    machine_type: m.machine_type,
                    site: m.site.clone(),
                    kind,
                    scope: kind.scope(),
                    region: m.region.clone(),
                    unit: kind.unit(),
                    amount: 0.0,
                    factor: factor.map(FactorUse::from),
                    kg_co2e: 0.0,
                });
                line.amount += amount;
                if kind.scope().is_some() {
                    line.kg_co2e += amount * factor.map_or(0.0, |f| f.kg_co2e_per_unit);
                }
            }
        }
        Self {
            lines: acc.into_values().collect(),
        }
    }

    pub fn totals(&self) -> Totals {
        Totals::of(&self.lines)
    }

    pub fn by_machine(&self) -> Vec<MachineSummary> {
        let mut groups: BTreeMap<&MachineId, Vec<&LedgerLine>> = BTreeMap::new();
        for l in &self.lines {
            groups.entry(&l.machine).or_default().push(l);
        }
        groups
            .into_values()
            .filter_map(|lines| {
                let first = lines.first()?;
                Some(MachineSummary {
                    machine_id: first.machine.clone(),
                    machine_type: first.machine_type,
                    site: first.site.clone(),
                    totals: Totals::of(lines.iter().copied()),
                })
            })
            .collect()
    }

    pub fn by_site(&self) -> Vec<SiteSummary> {
        let mut groups: BTreeMap<Option<&SiteId>, Vec<&LedgerLine>> = BTreeMap::new();
        for l in &self.lines {
            groups.entry(l.site.as_ref()).or_default().push(l);
        }
        groups
            .into_iter()
            .map(|(site, lines)| SiteSummary {
                site: site.cloned(),
                totals: Totals::of(lines),
            })
            .collect()
    }

    pub fn uncovered(&self) -> Vec<Uncovered> {
        let mut groups: BTreeMap<(ActivityKind, &Region), f64> = BTreeMap::new();
        for l in self.lines.iter().filter(|l| l.is_uncovered()) {
            *groups.entry((l.kind, &l.region)).or_default() += l.amount;
        }
        groups
            .into_iter()
            .map(|((kind, region), amount)| Uncovered {
                kind,
                region: region.clone(),
                unit: kind.unit(),
                amount,
            })
            .collect()
    }
}

/// The share of `a` inside `window`, cut at factor changes: (amount, factor) per piece.
/// Shares are proportional to time, which is exact for the constant average rate the amount
/// stands for.
fn split<'b>(
    a: &MeteredActivity,
    window: Period,
    kind: ActivityKind,
    region: &Region,
    book: &'b FactorBook,
) -> Vec<(f64, Option<&'b EmissionFactor>)> {
    let Some(period) = a.period() else {
        return Vec::new();
    };
    let Some(inside) = period.intersect(&window) else {
        return Vec::new();
    };
    let whole = period.seconds();
    let share = |p: &Period| {
        if p.from == period.from && p.to == period.to {
            a.amount // no rounding when nothing is cut
        } else {
            a.amount * (p.seconds() / whole)
        }
    };
    if kind.scope().is_none() {
        return vec![(share(&inside), None)];
    }
    book.pieces(kind, region, inside)
        .into_iter()
        .map(|(p, f)| (share(&p), f))
        .collect()
}

/// One forecast hour.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ForecastHour {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub scope1_kg_co2e: f64,
    pub scope2_kg_co2e: f64,
    pub total_kg_co2e: f64,
}

/// Emissions expected over the next 24 hours.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Forecast {
    pub method: &'static str,
    /// How many past days the hourly means were taken over (0: no history, all zeros).
    pub basis_days: u32,
    pub hours: Vec<ForecastHour>,
}

/// How many past days the forecast looks at.
pub const FORECAST_DAYS: i64 = 7;

/// Forecasts the next 24 whole hours after `now` (the first one starts at `now` rounded down
/// to the hour).
///
/// Method (seasonal mean by hour of day): the activity of the last 7 days is spread over
/// hourly buckets per (kind, region). The expected activity of a future hour is the mean of
/// the buckets at the same hour of the day over the days that have data — counting from the
/// first day with any activity, so a fleet that started reporting three days ago is averaged
/// over three days, not diluted by four empty ones. Days after that with no activity count as
/// zero: machines that stood still emit nothing. Each expected amount is then multiplied by
/// the factor valid at that future hour, so a version scheduled to start tomorrow is used from
/// tomorrow. Activity without a factor is left out. Industrial duty cycles repeat by shift and
/// by day, which is what this captures; it does not capture trends.
pub fn forecast_next_24h(
    now: DateTime<Utc>,
    machines: &[MachineRef],
    activity: &[MachineActivity],
    book: &FactorBook,
) -> Forecast {
    let start = now.duration_trunc(TimeDelta::hours(1)).unwrap_or(now);
    let hours = (FORECAST_DAYS * 24) as usize;
    let history_from = start - TimeDelta::hours(hours as i64);
    let by_id: BTreeMap<&MachineId, &MachineRef> = machines.iter().map(|m| (&m.id, m)).collect();

    // Activity per (kind, region) and past hour.
    let mut buckets: BTreeMap<(ActivityKind, Region), Vec<f64>> = BTreeMap::new();
    let mut first_hour: Option<usize> = None;
    for a in activity {
        let Some(m) = by_id.get(&a.machine) else {
            continue;
        };
        let Some(kind) = ActivityKind::classify(m.machine_type, a.activity.metric.as_str()) else {
            continue;
        };
        if kind.scope().is_none() {
            continue;
        }
        let Some(period) = a.activity.period() else {
            continue;
        };
        let whole = period.seconds();
        let row = buckets
            .entry((kind, m.region.clone()))
            .or_insert_with(|| vec![0.0; hours]);
        // Only the hours the period overlaps: batches are short, so this is one or two.
        let lo = ((period.from - history_from).num_seconds().max(0) / 3_600) as usize;
        let hi = (((period.to - history_from).num_seconds() + 3_599).max(0) / 3_600) as usize;
        for (h, slot) in row.iter_mut().enumerate().take(hi.min(hours)).skip(lo) {
            let bucket = Period {
                from: history_from + TimeDelta::hours(h as i64),
                to: history_from + TimeDelta::hours(h as i64 + 1),
            };
            if let Some(p) = period.intersect(&bucket) {
                *slot += a.activity.amount * (p.seconds() / whole);
                if a.activity.amount > 0.0 {
                    first_hour = Some(first_hour.map_or(h, |f| f.min(h)));
                }
            }
        }
    }
    let basis_days = first_hour.map_or(0, |h| FORECAST_DAYS as usize - h / 24);

    let forecast = (0..24)
        .map(|k| {
            let from = start + TimeDelta::hours(k);
            let mut hour = ForecastHour {
                from,
                to: from + TimeDelta::hours(1),
                scope1_kg_co2e: 0.0,
                scope2_kg_co2e: 0.0,
                total_kg_co2e: 0.0,
            };
            if basis_days == 0 {
                return hour;
            }
            for ((kind, region), row) in &buckets {
                let Some(factor) = book.valid_at(*kind, region, from) else {
                    continue;
                };
                let sum: f64 = (FORECAST_DAYS as usize - basis_days..FORECAST_DAYS as usize)
                    .map(|d| row[d * 24 + k as usize])
                    .sum();
                let kg = sum / basis_days as f64 * factor.kg_co2e_per_unit;
                match kind.scope() {
                    Some(Scope::Scope1) => hour.scope1_kg_co2e += kg,
                    Some(Scope::Scope2) => hour.scope2_kg_co2e += kg,
                    None => {}
                }
            }
            hour.total_kg_co2e = hour.scope1_kg_co2e + hour.scope2_kg_co2e;
            hour
        })
        .collect();
    Forecast {
        method: "mean of the same hour of day over the last 7 days with data, times the factor valid at that hour",
        basis_days: basis_days as u32,
        hours: forecast,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(h: i64) -> DateTime<Utc> {
        // 2025-01-01T00:00:00Z plus hours.
        DateTime::<Utc>::UNIX_EPOCH + TimeDelta::seconds(1_735_689_600) + TimeDelta::hours(h)
    }

    fn at_s(s: i64) -> DateTime<Utc> {
        at(0) + TimeDelta::seconds(s)
    }

    fn region(s: &str) -> Region {
        Region::parse(s).unwrap()
    }

    fn factor(
        id: i64,
        kind: ActivityKind,
        reg: &str,
        kg: f64,
        from: DateTime<Utc>,
        to: Option<DateTime<Utc>>,
    ) -> EmissionFactor {
        EmissionFactor {
            id,
            version: id as i32,
            kind,
            region: region(reg),
            kg_co2e_per_unit: kg,
            source: FactorSource::Other,
            citation: format!("test factor {id}"),
            valid_from: from,
            valid_to: to,
            recorded_at: at(-1_000_000),
            closed_at: to.map(|_| at(-1_000_000)),
        }
    }

    fn machine(id: &str, t: MachineType, site: Option<&str>, reg: &str) -> MachineRef {
        MachineRef {
            id: MachineId::parse(id).unwrap(),
            machine_type: t,
            site: site.map(|s| SiteId::parse(s).unwrap()),
            region: region(reg),
        }
    }

    fn act(
        machine: &str,
        metric: &str,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        amount: f64,
    ) -> MachineActivity {
        MachineActivity {
            machine: MachineId::parse(machine).unwrap(),
            activity: MeteredActivity::new(MetricName::parse(metric).unwrap(), from, to, amount)
                .unwrap(),
        }
    }

    fn fleet() -> Vec<MachineRef> {
        vec![
            machine("TRUCK-1", MachineType::HaulTruck, Some("pit"), "AU-WA-NWIS"),
            machine("MILL-1", MachineType::GrindingMill, Some("plant"), "UK"),
            machine(
                "BOILER-1",
                MachineType::IndustrialBoiler,
                Some("plant"),
                "UK",
            ),
        ]
    }

    fn book() -> FactorBook {
        FactorBook::new([
            factor(1, ActivityKind::Diesel, "GLOBAL", 2.7, at(-10_000), None),
            factor(2, ActivityKind::FuelOil, "GLOBAL", 3.0, at(-10_000), None),
            factor(
                3,
                ActivityKind::Electricity,
                "UK",
                0.2,
                at(-10_000),
                Some(at(10)),
            ),
            factor(4, ActivityKind::Electricity, "UK", 0.4, at(10), None),
        ])
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() <= 1e-9 * a.abs().max(b.abs()).max(1.0)
    }

    #[test]
    fn metrics_map_to_kinds_scopes_and_units() {
        use ActivityKind as K;
        let c = |t, m| ActivityKind::classify(t, m);
        assert_eq!(c(MachineType::HaulTruck, "fuel_rate_lh"), Some(K::Diesel));
        assert_eq!(
            c(MachineType::IndustrialBoiler, "fuel_rate_lh"),
            Some(K::FuelOil)
        );
        assert_eq!(
            c(MachineType::GrindingMill, "power_kw"),
            Some(K::Electricity)
        );
        assert_eq!(
            c(MachineType::GrindingMill, "throughput_tph"),
            Some(K::OreMilled)
        );
        assert_eq!(
            c(MachineType::GrindingMill, "kwh"),
            None,
            "never count energy twice"
        );
        assert_eq!(c(MachineType::HaulTruck, "load_tons"), None);
        assert_eq!(K::Diesel.scope(), Some(Scope::Scope1));
        assert_eq!(K::FuelOil.scope(), Some(Scope::Scope1));
        assert_eq!(K::Electricity.scope(), Some(Scope::Scope2));
        assert_eq!(K::OreMilled.scope(), None);
        assert_eq!(K::Electricity.unit(), ActivityUnit::KilowattHours);
        for k in K::ALL {
            assert_eq!(K::parse(k.as_str()), Ok(k));
        }
        // Every classified metric exists in the catalogue with the rate unit of its kind.
        for t in MachineType::ALL {
            for m in t.catalogue() {
                if let Some(k) = c(t, m.name) {
                    assert_eq!(
                        crate::activity::rate_unit_integral(m.unit),
                        Some(k.unit()),
                        "{}",
                        m.name
                    );
                }
            }
        }
    }

    #[test]
    fn regions_parse_upper_case_and_refuse_junk() {
        assert_eq!(region("uk").as_str(), "UK");
        assert_eq!(region("au-wa-nwis").as_str(), "AU-WA-NWIS");
        for bad in ["", "-UK", "U K", "UK/1", &"A".repeat(33)] {
            assert!(Region::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn new_factors_are_validated() {
        let ok = |kind, kg, cite: &str| {
            NewFactor::new(kind, region("UK"), kg, FactorSource::Defra, cite, at(0))
        };
        assert!(ok(ActivityKind::Diesel, 2.66, "DEFRA 2025").is_ok());
        assert!(matches!(
            ok(ActivityKind::OreMilled, 1.0, "x"),
            Err(EsgError::NotAnEmissionKind(_))
        ));
        for bad in [f64::NAN, -0.1, f64::INFINITY, 1e9] {
            assert!(matches!(
                ok(ActivityKind::Diesel, bad, "x"),
                Err(EsgError::BadFactor { .. })
            ));
        }
        assert!(matches!(
            ok(ActivityKind::Diesel, 1.0, "  "),
            Err(EsgError::BadCitation { .. })
        ));
    }

    #[test]
    fn report_windows_are_bounded() {
        assert_eq!(Period::report(at(1), at(1)), Err(EsgError::EmptyWindow));
        assert_eq!(Period::report(at(2), at(1)), Err(EsgError::EmptyWindow));
        assert!(Period::report(at(0), at(366 * 24)).is_ok());
        assert!(matches!(
            Period::report(at(0), at(366 * 24 + 1)),
            Err(EsgError::WindowTooLong { .. })
        ));
    }

    #[test]
    fn activity_must_be_a_finite_non_negative_amount_over_time() {
        let m = MetricName::parse("fuel_rate_lh").unwrap();
        assert!(MeteredActivity::new(m.clone(), at(0), at(0), 1.0).is_err());
        assert!(MeteredActivity::new(m.clone(), at(0), at(1), -1.0).is_err());
        assert!(MeteredActivity::new(m, at(0), at(1), f64::NAN).is_err());
    }

    #[test]
    fn factor_lookup_prefers_the_region_then_global_and_respects_validity() {
        let b = FactorBook::new([
            factor(1, ActivityKind::Diesel, "GLOBAL", 2.7, at(0), None),
            factor(2, ActivityKind::Diesel, "UK", 2.6, at(5), Some(at(8))),
        ]);
        let d = ActivityKind::Diesel;
        assert_eq!(b.valid_at(d, &region("UK"), at(-1)).map(|f| f.id), None);
        assert_eq!(b.valid_at(d, &region("UK"), at(0)).map(|f| f.id), Some(1));
        assert_eq!(b.valid_at(d, &region("UK"), at(5)).map(|f| f.id), Some(2));
        assert_eq!(
            b.valid_at(d, &region("UK"), at(8)).map(|f| f.id),
            Some(1),
            "valid_to is exclusive"
        );
        assert_eq!(b.valid_at(d, &region("US"), at(6)).map(|f| f.id), Some(1));
        assert_eq!(
            b.valid_at(ActivityKind::Electricity, &region("UK"), at(6)),
            None
        );
    }

    #[test]
    fn scope_1_is_litres_integrated_over_time_times_the_factor() {
        // 100 L/h for 3 h was integrated upstream to 300 L: 300 x 2.7 kg.
        let ledger = Ledger::account(
            Period::new(at(0), at(24)).unwrap(),
            &fleet(),
            &[act("TRUCK-1", "fuel_rate_lh", at(1), at(4), 300.0)],
            &book(),
        );
        let t = ledger.totals();
        assert!(close(t.scope1_kg_co2e, 810.0), "{t:?}");
        assert_eq!(t.scope2_kg_co2e, 0.0);
        assert_eq!(
            t.intensity_kg_co2e_per_t, None,
            "no production, no intensity"
        );
    }

    #[test]
    fn a_period_straddling_a_factor_change_is_split_pro_rata() {
        // 1000 kWh over [8h, 12h): half before the change at 10h (0.2), half after (0.4).
        let ledger = Ledger::account(
            Period::new(at(0), at(24)).unwrap(),
            &fleet(),
            &[act("MILL-1", "power_kw", at(8), at(12), 1000.0)],
            &book(),
        );
        assert_eq!(ledger.lines.len(), 2);
        assert!(close(ledger.lines[0].amount, 500.0));
        assert_eq!(ledger.lines[0].factor.as_ref().map(|f| f.id), Some(3));
        assert!(close(ledger.lines[1].amount, 500.0));
        assert_eq!(ledger.lines[1].factor.as_ref().map(|f| f.id), Some(4));
        assert!(close(
            ledger.totals().scope2_kg_co2e,
            500.0 * 0.2 + 500.0 * 0.4
        ));
    }

    #[test]
    fn the_window_edge_clips_pro_rata() {
        let ledger = Ledger::account(
            Period::new(at(0), at(2)).unwrap(),
            &fleet(),
            &[act("TRUCK-1", "fuel_rate_lh", at(1), at(5), 400.0)],
            &book(),
        );
        assert!(close(ledger.totals().scope1_kg_co2e, 100.0 * 2.7));
    }

    #[test]
    fn intensity_is_per_tonne_produced_per_machine_and_site() {
        let ledger = Ledger::account(
            Period::new(at(0), at(24)).unwrap(),
            &fleet(),
            &[
                act("MILL-1", "power_kw", at(0), at(5), 1_000.0),
                act("MILL-1", "throughput_tph", at(0), at(5), 50.0),
                act("BOILER-1", "fuel_rate_lh", at(0), at(5), 10.0),
                act("TRUCK-1", "fuel_rate_lh", at(0), at(5), 100.0),
            ],
            &book(),
        );
        let machines = ledger.by_machine();
        let mill = machines
            .iter()
            .find(|m| m.machine_id.as_str() == "MILL-1")
            .unwrap();
        assert!(close(
            mill.totals.intensity_kg_co2e_per_t.unwrap(),
            200.0 / 50.0
        ));
        let sites = ledger.by_site();
        let plant = sites
            .iter()
            .find(|s| s.site.as_ref().map(|s| s.as_str()) == Some("plant"))
            .unwrap();
        assert!(close(plant.totals.total_kg_co2e, 200.0 + 30.0));
        assert!(close(
            plant.totals.intensity_kg_co2e_per_t.unwrap(),
            230.0 / 50.0
        ));
        let pit = sites
            .iter()
            .find(|s| s.site.as_ref().map(|s| s.as_str()) == Some("pit"))
            .unwrap();
        assert_eq!(pit.totals.intensity_kg_co2e_per_t, None);
        assert_eq!(carbon_intensity(10.0, 0.0), None);
    }

    #[test]
    fn activity_without_a_factor_is_reported_as_uncovered() {
        let fleet = vec![machine("MILL-9", MachineType::GrindingMill, None, "US")];
        let ledger = Ledger::account(
            Period::new(at(0), at(24)).unwrap(),
            &fleet,
            &[act("MILL-9", "power_kw", at(0), at(1), 70.0)],
            &book(),
        );
        assert_eq!(ledger.totals().scope2_kg_co2e, 0.0);
        let gaps = ledger.uncovered();
        assert_eq!(gaps.len(), 1);
        assert_eq!(
            (gaps[0].kind, gaps[0].region.as_str(), gaps[0].amount),
            (ActivityKind::Electricity, "US", 70.0)
        );
    }

    #[test]
    fn as_of_rebuilds_the_factors_known_then() {
        let mut old = factor(1, ActivityKind::Diesel, "GLOBAL", 2.7, at(0), Some(at(100)));
        old.recorded_at = at(0);
        old.closed_at = Some(at(50));
        let mut new = factor(2, ActivityKind::Diesel, "GLOBAL", 2.5, at(100), None);
        new.recorded_at = at(50);
        let before = FactorBook::as_of([old.clone(), new.clone()], at(49));
        assert_eq!(before.factors().count(), 1);
        assert_eq!(
            before
                .valid_at(ActivityKind::Diesel, &Region::global(), at(200))
                .map(|f| f.id),
            Some(1)
        );
        let after = FactorBook::as_of([old, new], at(50));
        assert_eq!(
            after
                .valid_at(ActivityKind::Diesel, &Region::global(), at(200))
                .map(|f| f.id),
            Some(2)
        );
    }

    fn hourly(machine: &str, metric: &str, day: i64, hour: i64, amount: f64) -> MachineActivity {
        act(
            machine,
            metric,
            at(day * 24 + hour),
            at(day * 24 + hour + 1),
            amount,
        )
    }

    #[test]
    fn forecast_repeats_a_daily_pattern() {
        // Seven days of a mill drawing 1000 kWh in hours 8..16 only, 0.4 kg/kWh (factor 4).
        let mut history = Vec::new();
        for d in 0..7 {
            for h in 0..24 {
                let kwh = if (8..16).contains(&h) { 1_000.0 } else { 0.0 };
                history.push(hourly("MILL-1", "power_kw", d, h, kwh));
            }
        }
        let now = at(7 * 24) + TimeDelta::minutes(20);
        let f = forecast_next_24h(now, &fleet(), &history, &book());
        assert_eq!(f.basis_days, 7);
        assert_eq!(f.hours.len(), 24);
        assert_eq!(f.hours[0].from, at(7 * 24));
        for (h, hour) in f.hours.iter().enumerate() {
            let expected = if (8..16).contains(&h) { 400.0 } else { 0.0 };
            assert!(close(hour.scope2_kg_co2e, expected), "hour {h}: {hour:?}");
            assert!(close(hour.total_kg_co2e, expected));
        }
    }

    #[test]
    fn forecast_averages_over_the_days_with_data_only() {
        // Data starts on day 5 of 7: a spike of 70 L at 03:00 on day 6 only.
        let history = vec![
            hourly("TRUCK-1", "fuel_rate_lh", 5, 10, 0.0),
            hourly("TRUCK-1", "fuel_rate_lh", 5, 3, 20.0),
            hourly("TRUCK-1", "fuel_rate_lh", 6, 3, 70.0),
        ];
        let f = forecast_next_24h(at(7 * 24), &fleet(), &history, &book());
        assert_eq!(f.basis_days, 2);
        assert!(close(f.hours[3].scope1_kg_co2e, (20.0 + 70.0) / 2.0 * 2.7));
        assert_eq!(f.hours[4].scope1_kg_co2e, 0.0);
    }

    #[test]
    fn forecast_without_history_is_zero() {
        let f = forecast_next_24h(at(0), &fleet(), &[], &book());
        assert_eq!(f.basis_days, 0);
        assert!(f.hours.iter().all(|h| h.total_kg_co2e == 0.0));
    }

    #[test]
    fn forecast_uses_the_factor_valid_at_each_future_hour() {
        let b = FactorBook::new([
            factor(
                1,
                ActivityKind::Diesel,
                "GLOBAL",
                2.0,
                at(0),
                Some(at(24 * 7 + 12)),
            ),
            factor(
                2,
                ActivityKind::Diesel,
                "GLOBAL",
                3.0,
                at(24 * 7 + 12),
                None,
            ),
        ]);
        let history: Vec<_> = (0..7)
            .flat_map(|d| (0..24).map(move |h| hourly("TRUCK-1", "fuel_rate_lh", d, h, 10.0)))
            .collect();
        let f = forecast_next_24h(at(7 * 24), &fleet(), &history, &b);
        assert!(close(f.hours[11].scope1_kg_co2e, 20.0));
        assert!(close(f.hours[12].scope1_kg_co2e, 30.0));
    }

    // --- properties ---------------------------------------------------------------------

    fn kind_strategy() -> impl Strategy<Value = (&'static str, &'static str)> {
        prop_oneof![
            Just(("TRUCK-1", "fuel_rate_lh")),
            Just(("MILL-1", "power_kw")),
            Just(("MILL-1", "throughput_tph")),
            Just(("BOILER-1", "fuel_rate_lh")),
        ]
    }

    /// Activity periods within [0 h, 48 h), in seconds.
    fn activity_strategy() -> impl Strategy<Value = Vec<MachineActivity>> {
        prop::collection::vec(
            (
                kind_strategy(),
                0i64..48 * 3_600,
                1i64..20_000,
                0.0..5_000.0f64,
            ),
            0..40,
        )
        .prop_map(|v| {
            v.into_iter()
                .map(|((m, metric), from, len, amount)| {
                    act(m, metric, at_s(from), at_s(from + len), amount)
                })
                .collect()
        })
    }

    fn window() -> Period {
        Period::new(at(0), at(60)).unwrap()
    }

    fn all_close(a: &Totals, b: &Totals) -> bool {
        close(a.scope1_kg_co2e, b.scope1_kg_co2e)
            && close(a.scope2_kg_co2e, b.scope2_kg_co2e)
            && close(a.total_kg_co2e, b.total_kg_co2e)
            && close(a.production_t, b.production_t)
    }

    proptest! {
        /// Cutting one activity period in two at any instant (amounts pro rata) gives the same
        /// totals: how ingestion batches its periods does not matter.
        #[test]
        fn splitting_a_period_never_changes_the_total(
            activity in activity_strategy(),
            which in any::<prop::sample::Index>(),
            cut in 0.0..1.0f64,
        ) {
            prop_assume!(!activity.is_empty());
            let whole = Ledger::account(window(), &fleet(), &activity, &book()).totals();
            let i = which.index(activity.len());
            let a = &activity[i].activity;
            let len = (a.to - a.from).num_seconds();
            prop_assume!(len >= 2);
            let at_cut = a.from + TimeDelta::seconds(((len as f64 * cut) as i64).clamp(1, len - 1));
            let frac = (at_cut - a.from).as_seconds_f64() / (a.to - a.from).as_seconds_f64();
            let mut split_acts = activity.clone();
            let first = act(activity[i].machine.as_str(), a.metric.as_str(), a.from, at_cut, a.amount * frac);
            let second = act(activity[i].machine.as_str(), a.metric.as_str(), at_cut, a.to, a.amount * (1.0 - frac));
            split_acts[i] = first;
            split_acts.push(second);
            let split_totals = Ledger::account(window(), &fleet(), &split_acts, &book()).totals();
            prop_assert!(all_close(&whole, &split_totals), "{:?} vs {:?}", whole, split_totals);
        }

        /// Totals add up over machines and over consecutive windows.
        #[test]
        fn totals_are_additive_over_machines_and_periods(
            activity in activity_strategy(),
            mid in 1i64..59 * 3_600,
        ) {
            let all = Ledger::account(window(), &fleet(), &activity, &book()).totals();
            let fleet = fleet();
            let mut by_machine = Totals::default();
            for m in &fleet {
                let t = Ledger::account(window(), std::slice::from_ref(m), &activity, &book()).totals();
                by_machine.scope1_kg_co2e += t.scope1_kg_co2e;
                by_machine.scope2_kg_co2e += t.scope2_kg_co2e;
                by_machine.total_kg_co2e += t.total_kg_co2e;
                by_machine.production_t += t.production_t;
            }
            prop_assert!(all_close(&all, &by_machine), "{:?} vs {:?}", all, by_machine);

            let first = Ledger::account(Period::new(at(0), at_s(mid)).unwrap(), &fleet, &activity, &book()).totals();
            let second = Ledger::account(Period::new(at_s(mid), at(60)).unwrap(), &fleet, &activity, &book()).totals();
            let joined = Totals {
                scope1_kg_co2e: first.scope1_kg_co2e + second.scope1_kg_co2e,
                scope2_kg_co2e: first.scope2_kg_co2e + second.scope2_kg_co2e,
                total_kg_co2e: first.total_kg_co2e + second.total_kg_co2e,
                production_t: first.production_t + second.production_t,
                intensity_kg_co2e_per_t: None,
            };
            prop_assert!(all_close(&all, &joined), "{:?} vs {:?}", all, joined);
        }

        /// A new version starting at or after the end of a window, for any kind and region,
        /// leaves that window's ledger exactly as it was.
        #[test]
        fn a_factor_change_after_a_period_never_changes_it(
            activity in activity_strategy(),
            end in 1i64..60,
            later in 0i64..1_000,
            kind in prop::sample::select(vec![ActivityKind::Diesel, ActivityKind::FuelOil, ActivityKind::Electricity]),
            reg in prop::sample::select(vec!["GLOBAL", "UK", "AU-WA-NWIS"]),
            kg in 0.0..100.0f64,
        ) {
            let w = Period::new(at(0), at(end)).unwrap();
            let before = Ledger::account(w, &fleet(), &activity, &book());
            let change = at(end) + TimeDelta::minutes(later);
            // Close the open version of that key (if any) at the change, add the new one.
            let mut factors: Vec<EmissionFactor> = book().factors().cloned().collect();
            for f in factors.iter_mut() {
                if f.kind == kind && f.region.as_str() == reg && f.valid_to.is_none() && f.valid_from < change {
                    f.valid_to = Some(change);
                }
            }
            factors.push(factor(99, kind, reg, kg, change, None));
            let after = Ledger::account(w, &fleet(), &activity, &FactorBook::new(factors));
            prop_assert_eq!(before, after);
        }

        /// Emissions are never negative and every line's kg is its amount times its factor.
        #[test]
        fn lines_are_amount_times_factor(activity in activity_strategy()) {
            let ledger = Ledger::account(window(), &fleet(), &activity, &book());
            for l in &ledger.lines {
                prop_assert!(l.amount >= 0.0 && l.kg_co2e >= 0.0);
                let expected = l.factor.as_ref().map_or(0.0, |f| l.amount * f.kg_co2e_per_unit);
                prop_assert!(close(l.kg_co2e, expected));
            }
        }
    }
}
