//! Per-machine feature state: one window per metric, the healthy baseline being learned or
//! frozen, and one integrator per rate metric. Bounded: windows by their [`WindowSpec`],
//! metrics by the machine type's catalogue, machines by `max_machines` and idle eviction.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use aurum_domain::{
    rate_unit_integral, BaselineBuilder, FeatureVector, HealthyBaseline, MachineId, MachineType,
    MetricName, MetricWindow, RateIntegrator, SiteId, TenantId, WindowSpec,
};
use aurum_proto::features::{ActivityRecord, MachineFeatures};
use chrono::{DateTime, TimeDelta, Utc};

use super::{MachineRef, Observation};

/// How the state is bounded and what it learns.
#[derive(Debug, Clone)]
pub struct StateSettings {
    pub window: WindowSpec,
    /// How much of a machine's first data the baseline is learned from.
    pub baseline_period: TimeDelta,
    /// A fresh integrator, cloned for every rate metric (it carries the maximum gap).
    pub integrator: RateIntegrator,
    pub max_machines: usize,
    pub idle_evict: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{max} machines are tracked already and none has been idle long enough to evict")]
pub struct MachineLimit {
    pub max: usize,
}

/// The baseline while it is being learned: from the first reading seen (`start`) until
/// `until`, by device time.
#[derive(Debug)]
struct Learning {
    start: DateTime<Utc>,
    until: DateTime<Utc>,
    builders: BTreeMap<MetricName, BaselineBuilder>,
}

#[derive(Debug)]
struct MachineState {
    machine_type: MachineType,
    site: Option<SiteId>,
    windows: BTreeMap<MetricName, MetricWindow>,
    learning: Option<Learning>,
    baseline: HealthyBaseline,
    integrators: BTreeMap<MetricName, RateIntegrator>,
    /// The newest device timestamp seen: the end of the machine's windows.
    latest: Option<DateTime<Utc>>,
    /// Received data since the last emission.
    dirty: bool,
    /// Wall clock of the last data, for idle eviction.
    last_seen: Instant,
    /// The trace of the newest traced message since the last emission.
    traceparent: Option<String>,
}

impl MachineState {
    fn new(machine: &MachineRef, first: DateTime<Utc>, s: &StateSettings, now: Instant) -> Self {
        Self {
            machine_type: machine.machine_type,
            site: machine.site.clone(),
            windows: BTreeMap::new(),
            learning: Some(Learning {
                start: first,
                until: first
                    .checked_add_signed(s.baseline_period)
                    .unwrap_or(DateTime::<Utc>::MAX_UTC),
                builders: BTreeMap::new(),
            }),
            baseline: HealthyBaseline::default(),
            integrators: BTreeMap::new(),
            latest: None,
            dirty: false,
            last_seen: now,
            traceparent: None,
        }
    }

    fn observe(&mut self, obs: &Observation, s: &StateSettings, now: Instant) {
        self.last_seen = now;
        self.dirty = true;
        self.latest = Some(self.latest.map_or(obs.ts, |l| l.max(obs.ts)));
        if obs.machine.traceparent.is_some() {
            self.traceparent.clone_from(&obs.machine.traceparent);
        }
        let ts = obs.ts;

        // The baseline is frozen by the first reading past the learning period (device time),
        // so it never absorbs the drift it is meant to reveal.
        let mut learn = false;
        if let Some(learning) = &self.learning {
            if ts >= learning.until {
                self.freeze_baseline();
            } else {
                learn = ts >= learning.start;
            }
        }

        for r in &obs.readings {
            // Only catalogue metrics are tracked: that bounds the maps per machine whatever
            // reaches this far.
            let Some(spec) = self.machine_type.metric(&r.metric) else {
                continue;
            };
            if let Some(w) = self.windows.get_mut(&r.metric) {
                w.push(ts, r.value);
            } else {
                let mut w = MetricWindow::new(s.window);
                w.push(ts, r.value);
                self.windows.insert(r.metric.clone(), w);
            }
            if learn {
                if let Some(l) = self.learning.as_mut() {
                    l.builders.entry(r.metric.clone()).or_default().add(r.value);
                }
            }
            if rate_unit_integral(spec.unit).is_some() {
                self.integrators
                    .entry(r.metric.clone())
                    .or_insert_with(|| s.integrator.clone())
                    .push(ts, r.value);
            }
        }
    }

    fn freeze_baseline(&mut self) {
        if let Some(learning) = self.learning.take() {
            // A metric with too few readings gets no baseline rather than a meaningless one.
            self.baseline.metrics = learning
                .builders
                .iter()
                .filter_map(|(m, b)| Some((m.clone(), b.build()?)))
                .collect();
        }
    }

    /// The machine's features now, and the activity since the previous emission; `None` when
    /// nothing is left to describe.
    fn emit(&mut self, tenant: &TenantId, id: &MachineId) -> Option<MachineFeatures> {
        self.dirty = false;
        let end = self.latest?;
        // The machine's own newest timestamp ends its windows, not the wall clock: back-fill
        // and clock skew still give full windows, while a metric that stopped reporting (and
        // others go on) ages out.
        for w in self.windows.values_mut() {
            w.advance_to(end);
        }
        let features = FeatureVector::from_windows(end, &self.windows, &self.baseline);
        let activity: Vec<ActivityRecord> = self
            .integrators
            .iter_mut()
            .filter_map(|(metric, i)| {
                i.take().map(|a| ActivityRecord {
                    metric: metric.clone(),
                    from: a.from,
                    to: a.to,
                    amount: a.amount,
                })
            })
            .collect();
        let traceparent = self.traceparent.take();
        if features.metrics.is_empty() && activity.is_empty() {
            return None;
        }
        Some(MachineFeatures {
            tenant_id: tenant.clone(),
            machine_id: id.clone(),
            machine_type: self.machine_type,
            site_id: self.site.clone(),
            features,
            activity,
            traceparent,
        })
    }
}

/// All machines' feature state, owned by the feature task.
#[derive(Debug)]
pub struct FeatureState {
    settings: StateSettings,
    machines: HashMap<(TenantId, MachineId), MachineState>,
    /// When the table was last found full with nothing to evict: sweeping on every message
    /// while overloaded would cost O(machines) each.
    full_since: Option<Instant>,
}

impl FeatureState {
    pub fn new(settings: StateSettings) -> Self {
        Self {
            settings,
            machines: HashMap::new(),
            full_since: None,
        }
    }

    pub fn settings(&self) -> &StateSettings {
        &self.settings
    }

    pub fn len(&self) -> usize {
        self.machines.len()
    }

    pub fn is_empty(&self) -> bool {
        self.machines.is_empty()
    }

    /// Feeds one committed message. A machine not yet tracked is refused when the table is
    /// full and no machine is idle enough to evict.
    pub fn observe(&mut self, obs: &Observation, now: Instant) -> Result<(), MachineLimit> {
        let key = (obs.machine.tenant.clone(), obs.machine.id.clone());
        if let Some(m) = self.machines.get_mut(&key) {
            m.observe(obs, &self.settings, now);
            return Ok(());
        }
        if self.machines.len() >= self.settings.max_machines {
            let recently_swept = self
                .full_since
                .is_some_and(|t| now.saturating_duration_since(t) < Duration::from_secs(1));
            if recently_swept || self.evict_idle(now) == 0 {
                self.full_since.get_or_insert(now);
                return Err(MachineLimit {
                    max: self.settings.max_machines,
                });
            }
        }
        self.full_since = None;
        let mut m = MachineState::new(&obs.machine, obs.ts, &self.settings, now);
        m.observe(obs, &self.settings, now);
        self.machines.insert(key, m);
        Ok(())
    }

    /// Forgets machines not heard from for `idle_evict`; returns how many.
    pub fn evict_idle(&mut self, now: Instant) -> usize {
        let before = self.machines.len();
        let idle = self.settings.idle_evict;
        self.machines
            .retain(|_, m| now.saturating_duration_since(m.last_seen) < idle);
        before - self.machines.len()
    }

    /// One [`MachineFeatures`] per machine that received data since the previous call, in
    /// (tenant, machine) order.
    pub fn emit(&mut self) -> Vec<MachineFeatures> {
        let mut out: Vec<MachineFeatures> = self
            .machines
            .iter_mut()
            .filter(|(_, m)| m.dirty)
            .filter_map(|((tenant, id), m)| m.emit(tenant, id))
            .collect();
        out.sort_by(|a, b| (&a.tenant_id, &a.machine_id).cmp(&(&b.tenant_id, &b.machine_id)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aurum_domain::Reading;

    fn settings(max_machines: usize) -> StateSettings {
        StateSettings {
            window: WindowSpec::new(TimeDelta::hours(1), 3_600).unwrap(),
            baseline_period: TimeDelta::minutes(10),
            integrator: RateIntegrator::new(TimeDelta::minutes(5)).unwrap(),
            max_machines,
            idle_evict: Duration::from_secs(60),
        }
    }

    fn at(s: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + TimeDelta::seconds(1_700_000_000 + s)
    }

    fn obs(machine: &str, s: i64, metrics: &[(&str, f64)]) -> Observation {
        Observation {
            machine: MachineRef {
                tenant: TenantId::parse("demo").unwrap(),
                id: MachineId::parse(machine).unwrap(),
                machine_type: MachineType::HaulTruck,
                site: None,
                traceparent: None,
            },
            ts: at(s),
            readings: metrics
                .iter()
                .map(|&(m, value)| Reading {
                    metric: MetricName::parse(m).unwrap(),
                    value,
                })
                .collect(),
        }
    }

    fn metric(m: &str) -> MetricName {
        MetricName::parse(m).unwrap()
    }

    #[test]
    fn features_and_activity_of_the_machines_that_reported() {
        let mut state = FeatureState::new(settings(10));
        let now = Instant::now();
        for s in 0..=60 {
            let o = obs(
                "T-1",
                s * 60,
                &[("fuel_rate_lh", 100.0), ("rpm", 1_500.0 + s as f64)],
            );
            state.observe(&o, now).unwrap();
        }
        state.observe(&obs("T-2", 0, &[("rpm", 1.0)]), now).unwrap();
        let out = state.emit();
        assert_eq!(out.len(), 2);
        let t1 = &out[0];
        assert_eq!(t1.machine_id.as_str(), "T-1");
        assert_eq!(t1.features.window_end, at(3_600));
        assert_eq!(t1.features.metrics[&metric("rpm")].stats.count, 61);
        assert_eq!(t1.activity.len(), 1);
        assert_eq!(t1.activity[0].metric, metric("fuel_rate_lh"));
        assert!((t1.activity[0].amount - 100.0).abs() < 1e-9);
        assert_eq!((t1.activity[0].from, t1.activity[0].to), (at(0), at(3_600)));
        assert!(state.emit().is_empty(), "nothing new, nothing sent");
    }

    #[test]
    fn features_carry_the_site_the_machine_is_registered_at() {
        let mut state = FeatureState::new(settings(10));
        let mut at_site = obs("T-1", 0, &[("rpm", 1.0)]);
        at_site.machine.site = Some(SiteId::parse("pit-north").unwrap());
        state.observe(&at_site, Instant::now()).unwrap();
        state
            .observe(&obs("T-2", 0, &[("rpm", 1.0)]), Instant::now())
            .unwrap();
        let out = state.emit();
        assert_eq!(
            out[0].site_id.as_ref().map(|s| s.as_str()),
            Some("pit-north")
        );
        assert_eq!(out[1].site_id, None);
    }

    #[test]
    fn the_baseline_freezes_after_the_learning_period() {
        let mut state = FeatureState::new(settings(10));
        let now = Instant::now();
        // Ten minutes of healthy data at 1 reading per 10 s, then a hot bearing.
        for s in 0..60 {
            let t = 50.0 + (s % 3) as f64;
            state
                .observe(&obs("T-1", s * 10, &[("temperature", t)]), now)
                .unwrap();
        }
        assert!(state.emit()[0].features.metrics[&metric("temperature")]
            .baseline_deviation
            .is_none());
        for s in 60..70 {
            state
                .observe(&obs("T-1", s * 10, &[("temperature", 90.0)]), now)
                .unwrap();
        }
        let z = state.emit()[0].features.metrics[&metric("temperature")]
            .baseline_deviation
            .unwrap();
        assert!(z > 3.0, "{z}");
    }

    #[test]
    fn non_catalogue_metrics_are_not_tracked() {
        let mut state = FeatureState::new(settings(10));
        state
            .observe(&obs("T-1", 0, &[("warp_drive", 1.0)]), Instant::now())
            .unwrap();
        assert!(state.emit().is_empty());
    }

    #[test]
    fn the_machine_limit_holds_and_idle_machines_make_room() {
        let mut state = FeatureState::new(settings(2));
        let t0 = Instant::now();
        state.observe(&obs("A", 0, &[("rpm", 1.0)]), t0).unwrap();
        state.observe(&obs("B", 0, &[("rpm", 1.0)]), t0).unwrap();
        assert_eq!(
            state.observe(&obs("C", 0, &[("rpm", 1.0)]), t0),
            Err(MachineLimit { max: 2 })
        );
        // Known machines still update.
        state.observe(&obs("A", 1, &[("rpm", 1.0)]), t0).unwrap();
        let later = t0 + Duration::from_secs(61);
        state.observe(&obs("A", 2, &[("rpm", 1.0)]), later).unwrap();
        state.observe(&obs("C", 0, &[("rpm", 1.0)]), later).unwrap();
        assert_eq!(state.len(), 2);
        let ids: Vec<_> = state
            .emit()
            .iter()
            .map(|m| m.machine_id.to_string())
            .collect();
        assert_eq!(ids, ["A", "C"]);
    }
}
