//! The lifecycle of a simulated machine: `normal` -> `drift` (a developing fault such as
//! bearing wear) -> `failure` (the machine is stopped and repaired), then maintenance starts a
//! new run in `normal`.
//!
//! Pure: time is simulated hours passed in by the caller, randomness comes from the caller's
//! seeded generator. The failure time of a run is drawn when the run starts, so the ground
//! truth `time_to_failure_h` is known for every message, including those in `normal`.

use rand::Rng;

use crate::noise::uniform;

use aurum_domain::RunPhase;

/// Ranges (simulated hours) the phase durations of a run are drawn from, uniformly.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LifecycleParams {
    pub normal_h: (f64, f64),
    pub drift_h: (f64, f64),
    pub repair_h: (f64, f64),
    /// Curvature of the wear growth in drift: 0 is linear, larger values keep wear low for
    /// longer and then accelerate it towards failure.
    pub wear_growth: f64,
}

impl Default for LifecycleParams {
    /// Short enough that a demo at `--time-scale 60` (one simulated minute per wall second)
    /// shows a full cycle in a few minutes.
    fn default() -> Self {
        Self {
            normal_h: (2.0, 6.0),
            drift_h: (1.0, 3.0),
            repair_h: (0.25, 0.75),
            wear_growth: 3.0,
        }
    }
}

impl LifecycleParams {
    /// The live-demo profile (the default): a whole run in a few simulated hours.
    pub fn demo() -> Self {
        Self::default()
    }

    /// A field-like profile for training data, where a 72 h prediction horizon makes sense.
    ///
    /// - normal 300-900 h: two to five weeks of healthy operation between overhauls;
    /// - drift 96-240 h: a bearing or pump fault takes four to ten days to go from onset to
    ///   breakdown, so even the shortest drift starts a day before the 72 h horizon opens;
    /// - repair 4-24 h: a shift to a day of downtime;
    /// - wear growth 2.0: still convex (slow onset, accelerating towards the breakdown) but
    ///   gentler than the demo's 3.0, so that wear is a few percent of its final effect when
    ///   the horizon opens: visible in hour-long windows, yet buried in the operating noise
    ///   of a single reading.
    pub fn field() -> Self {
        Self {
            normal_h: (300.0, 900.0),
            drift_h: (96.0, 240.0),
            repair_h: (4.0, 24.0),
            wear_growth: 2.0,
        }
    }
}

/// The drawn schedule of one run.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunPlan {
    /// 0 for a machine's first run, then 1, 2, ...
    pub index: u32,
    pub normal_h: f64,
    pub drift_h: f64,
    pub repair_h: f64,
}

impl RunPlan {
    pub fn draw<R: Rng + ?Sized>(index: u32, params: &LifecycleParams, rng: &mut R) -> Self {
        // Every phase lasts a little: a degenerate range must not make a phase vanish.
        const MIN_H: f64 = 1.0 / 60.0;
        Self {
            index,
            normal_h: uniform(rng, params.normal_h).max(MIN_H),
            drift_h: uniform(rng, params.drift_h).max(MIN_H),
            repair_h: uniform(rng, params.repair_h).max(MIN_H),
        }
    }

    /// Hours from the start of the run until the breakdown.
    pub fn failure_at_h(&self) -> f64 {
        self.normal_h + self.drift_h
    }

    /// Hours from the start of the run until the repair is done.
    pub fn end_h(&self) -> f64 {
        self.failure_at_h() + self.repair_h
    }

    pub fn phase_at(&self, t_h: f64) -> RunPhase {
        if t_h < self.normal_h {
            RunPhase::Normal
        } else if t_h < self.failure_at_h() {
            RunPhase::Drift
        } else {
            RunPhase::Failure
        }
    }
}

/// Wear as a function of progress through drift (`frac` in [0, 1]): 0 at the onset, 1 at the
/// breakdown, convex (slow start, accelerating) like spalling bearings.
pub fn wear_curve(frac: f64, growth: f64) -> f64 {
    let frac = frac.clamp(0.0, 1.0);
    if growth.abs() < 1e-9 {
        return frac;
    }
    (((growth * frac).exp() - 1.0) / (growth.exp() - 1.0)).clamp(0.0, 1.0)
}

/// The machine's condition at one instant: what the physical model needs, and the ground
/// truth labels.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Condition {
    pub run_index: u32,
    pub phase: RunPhase,
    /// 0 in normal, growing to 1 at the breakdown, 1 during failure.
    pub wear: f64,
    /// Simulated hours until the breakdown; 0 once broken down.
    pub time_to_failure_h: f64,
    /// Simulated hours since the breakdown (0 unless in failure).
    pub hours_since_failure: f64,
}

/// A machine's lifecycle, run after run.
#[derive(Debug, Clone)]
pub struct Lifecycle {
    params: LifecycleParams,
    plan: RunPlan,
    /// Simulated hours since the start of the current run.
    t_h: f64,
}

impl Lifecycle {
    pub fn new<R: Rng + ?Sized>(params: LifecycleParams, rng: &mut R) -> Self {
        let plan = RunPlan::draw(0, &params, rng);
        Self {
            params,
            plan,
            t_h: 0.0,
        }
    }

    pub fn plan(&self) -> &RunPlan {
        &self.plan
    }

    pub fn run_index(&self) -> u32 {
        self.plan.index
    }

    pub fn phase(&self) -> RunPhase {
        self.plan.phase_at(self.t_h)
    }

    pub fn condition(&self) -> Condition {
        let phase = self.phase();
        let failure_at = self.plan.failure_at_h();
        let wear = match phase {
            RunPhase::Normal => 0.0,
            RunPhase::Drift => wear_curve(
                (self.t_h - self.plan.normal_h) / self.plan.drift_h,
                self.params.wear_growth,
            ),
            RunPhase::Failure => 1.0,
        };
        Condition {
            run_index: self.plan.index,
            phase,
            wear,
            time_to_failure_h: (failure_at - self.t_h).max(0.0),
            hours_since_failure: if phase == RunPhase::Failure {
                self.t_h - failure_at
            } else {
                0.0
            },
        }
    }

    /// Advances simulated time by `dt_h` hours. Returns `true` when the repair finished and a
    /// new run started.
    ///
    /// A step never jumps over a whole phase: a step that would skip drift lands at its onset,
    /// one that would skip the breakdown lands on it, so every run is seen to fail even when
    /// the message interval is long compared with the phases.
    pub fn advance<R: Rng + ?Sized>(&mut self, dt_h: f64, rng: &mut R) -> bool {
        let dt_h = if dt_h.is_finite() { dt_h.max(0.0) } else { 0.0 };
        let before = self.phase();
        let t = self.t_h + dt_h;
        match before {
            RunPhase::Normal if t >= self.plan.failure_at_h() => self.t_h = self.plan.normal_h,
            RunPhase::Drift if t >= self.plan.end_h() => self.t_h = self.plan.failure_at_h(),
            RunPhase::Failure if t >= self.plan.end_h() => {
                self.plan = RunPlan::draw(self.plan.index.saturating_add(1), &self.params, rng);
                self.t_h = 0.0;
                return true;
            }
            _ => self.t_h = t,
        }
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    #[test]
    fn wear_curve_is_monotone_from_zero_to_one() {
        for growth in [0.0, 1.0, 3.0, 6.0] {
            assert_eq!(wear_curve(0.0, growth), 0.0);
            assert!((wear_curve(1.0, growth) - 1.0).abs() < 1e-12);
            let mut prev = 0.0;
            for i in 1..=100 {
                let w = wear_curve(f64::from(i) / 100.0, growth);
                assert!(w >= prev);
                prev = w;
            }
        }
        // Convex: a developing fault stays small for most of the drift.
        assert!(wear_curve(0.5, 3.0) < 0.5);
    }

    #[test]
    fn a_run_goes_through_every_phase_in_order_then_restarts() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut life = Lifecycle::new(LifecycleParams::default(), &mut rng);
        let mut seen = vec![life.phase()];
        let mut restarted = false;
        for _ in 0..100_000 {
            if life.advance(1.0 / 60.0, &mut rng) {
                restarted = true;
                break;
            }
            if seen.last() != Some(&life.phase()) {
                seen.push(life.phase());
            }
        }
        assert!(restarted);
        assert_eq!(seen, RunPhase::ALL.to_vec());
        assert_eq!(life.run_index(), 1);
        assert_eq!(life.phase(), RunPhase::Normal);
    }

    #[test]
    fn the_field_profile_lasts_weeks_and_drifts_for_days() {
        let mut rng = StdRng::seed_from_u64(11);
        let field = LifecycleParams::field();
        for index in 0..200 {
            let plan = RunPlan::draw(index, &field, &mut rng);
            assert!((300.0..900.0).contains(&plan.normal_h));
            // Wear has started before the 72 h horizon opens.
            assert!(plan.drift_h > 72.0 && plan.drift_h < 240.0);
            assert!((4.0..24.0).contains(&plan.repair_h));
        }
        assert_eq!(LifecycleParams::demo(), LifecycleParams::default());
    }

    #[test]
    fn long_steps_never_skip_the_breakdown() {
        let mut rng = StdRng::seed_from_u64(5);
        let mut life = Lifecycle::new(LifecycleParams::default(), &mut rng);
        let mut phases = vec![life.phase()];
        while !life.advance(100.0, &mut rng) {
            phases.push(life.phase());
        }
        assert_eq!(phases, RunPhase::ALL.to_vec());
    }
}
