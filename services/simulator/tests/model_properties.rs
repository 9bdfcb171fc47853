//! Properties of the physical model: plausible values, visible wear, consistent labels.

#![allow(clippy::unwrap_used)] // helpers of tests, not #[test] functions

use aurum_domain::{MachineId, MachineType, RunPhase};
use aurum_simulator::degradation::{Condition, LifecycleParams};
use aurum_simulator::machine::{Sample, SimMachine};
use aurum_simulator::profiles::OperatingState;
use chrono::{TimeDelta, Utc};
use proptest::prelude::*;
use rand::rngs::StdRng;
use rand::SeedableRng;

fn machine_type() -> impl Strategy<Value = MachineType> {
    prop::sample::select(MachineType::ALL.to_vec())
}

fn phase() -> impl Strategy<Value = RunPhase> {
    prop::sample::select(RunPhase::ALL.to_vec())
}

fn new_machine(t: MachineType, seed: u64) -> SimMachine {
    let id = MachineId::parse(&format!("{}-1", t.as_str().replace('_', "-"))).unwrap();
    SimMachine::new(id, t, seed, LifecycleParams::default())
}

/// Steps a machine through its whole first run (until the second run starts).
fn first_run(t: MachineType, seed: u64, dt_s: f64) -> Vec<Sample> {
    let mut m = new_machine(t, seed);
    let mut ts = Utc::now();
    let mut out = Vec::new();
    while m.current_run() == 0 {
        out.push(m.step(dt_s, ts));
        ts += TimeDelta::milliseconds((dt_s * 1000.0) as i64);
    }
    out
}

fn assert_plausible(t: MachineType, sample: &Sample) -> Result<(), TestCaseError> {
    let catalogue = t.catalogue();
    prop_assert_eq!(sample.metrics.len(), catalogue.len());
    for spec in catalogue {
        let value = sample
            .metrics
            .iter()
            .find(|(n, _)| *n == spec.name)
            .map(|(_, v)| *v);
        prop_assert!(value.is_some(), "{} lacks {}", t, spec.name);
        let v = value.unwrap_or_default();
        prop_assert!(
            spec.is_plausible(v),
            "{} {} = {} outside [{}, {}] in {}",
            t,
            spec.name,
            v,
            spec.min,
            spec.max,
            sample.label.phase
        );
    }
    Ok(())
}

fn mean_vibration(t: MachineType, wear: f64, seed: u64, n: usize) -> f64 {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut state = OperatingState::new(t, &mut rng);
    let phase = if wear > 0.0 {
        RunPhase::Drift
    } else {
        RunPhase::Normal
    };
    let c = Condition {
        run_index: 0,
        phase,
        wear,
        time_to_failure_h: 1.0,
        hours_since_failure: 0.0,
    };
    let total: f64 = (0..n)
        .map(|_| {
            let m = state.sample(&c, 1.0 / 60.0, &mut rng);
            m.iter()
                .find(|(k, _)| *k == "vibration")
                .map(|(_, v)| *v)
                .unwrap()
        })
        .sum();
    total / n as f64
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, ..ProptestConfig::default() })]

    /// Every value of every message of a whole run is within the catalogue's range, for every
    /// machine type, in every phase, at any message interval.
    #[test]
    fn every_value_of_a_run_is_plausible(t in machine_type(), seed in any::<u64>(), dt_s in 5.0f64..900.0) {
        let run = first_run(t, seed, dt_s);
        for phase in RunPhase::ALL {
            prop_assert!(run.iter().any(|s| s.label.phase == phase), "{} never in {}", t, phase);
        }
        for sample in &run {
            assert_plausible(t, sample)?;
        }
    }

    /// The operating state stays plausible under any condition, even extreme ones.
    #[test]
    fn any_condition_gives_plausible_values(
        t in machine_type(),
        phase in phase(),
        wear in 0.0f64..=1.0,
        hours_since_failure in 0.0f64..3.0,
        dt_h in 0.0f64..12.0,
        seed in any::<u64>(),
    ) {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut state = OperatingState::new(t, &mut rng);
        let c = Condition { run_index: 0, phase, wear, time_to_failure_h: 0.5, hours_since_failure };
        for _ in 0..20 {
            let metrics = state.sample(&c, dt_h, &mut rng);
            let sample = Sample {
                seq: 1,
                ts: Utc::now(),
                label: aurum_simulator::machine::Label { run_index: 0, phase, time_to_failure_h: 0.0 },
                metrics,
            };
            assert_plausible(t, &sample)?;
        }
    }

    /// time_to_failure_h decreases strictly until the breakdown, where it is 0 and stays 0;
    /// the phases come in order; the last message before the breakdown is within one
    /// interval of it.
    #[test]
    fn time_to_failure_counts_down_to_zero(t in machine_type(), seed in any::<u64>(), dt_s in 5.0f64..900.0) {
        let run = first_run(t, seed, dt_s);
        let dt_h = dt_s / 3600.0;
        let rank = |p: RunPhase| RunPhase::ALL.iter().position(|q| *q == p).unwrap_or(0);
        for pair in run.windows(2) {
            let (a, b) = (&pair[0].label, &pair[1].label);
            prop_assert!(rank(a.phase) <= rank(b.phase), "phase went back from {} to {}", a.phase, b.phase);
            if a.time_to_failure_h > 0.0 {
                prop_assert!(b.time_to_failure_h < a.time_to_failure_h);
            } else {
                prop_assert_eq!(b.time_to_failure_h, 0.0);
            }
            prop_assert_eq!(pair[1].seq, pair[0].seq + 1);
        }
        for s in &run {
            prop_assert_eq!(s.label.time_to_failure_h == 0.0, s.label.phase == RunPhase::Failure);
        }
        let last_before = run.iter().rev().find(|s| s.label.phase != RunPhase::Failure);
        prop_assert!(last_before.is_some_and(|s| s.label.time_to_failure_h <= dt_h + 1e-9));
        prop_assert_eq!(run.last().map(|s| s.label.phase), Some(RunPhase::Failure));
    }

    /// Late in drift, vibration is clearly above normal (averaged over many samples).
    #[test]
    fn late_drift_vibrates_clearly_more(t in machine_type(), seed in any::<u64>()) {
        let normal = mean_vibration(t, 0.0, seed, 500);
        let late = mean_vibration(t, 0.9, seed, 500);
        prop_assert!(late > 2.5 * normal, "{}: normal {} late drift {}", t, normal, late);
    }
}

/// The same, through the lifecycle: the last tenth of drift against normal.
#[test]
fn late_drift_vibration_in_whole_runs() {
    for t in MachineType::ALL {
        let (mut normal, mut late) = (Vec::new(), Vec::new());
        for seed in 0..10 {
            let run = first_run(t, seed, 30.0);
            let drift: Vec<&Sample> = run
                .iter()
                .filter(|s| s.label.phase == RunPhase::Drift)
                .collect();
            let vib = |s: &Sample| {
                s.metrics
                    .iter()
                    .find(|(k, _)| *k == "vibration")
                    .map(|(_, v)| *v)
                    .unwrap()
            };
            normal.extend(
                run.iter()
                    .filter(|s| s.label.phase == RunPhase::Normal)
                    .map(vib),
            );
            late.extend(drift[drift.len() * 9 / 10..].iter().map(|s| vib(s)));
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        assert!(
            mean(&late) > 2.0 * mean(&normal),
            "{t}: normal {} late {}",
            mean(&normal),
            mean(&late)
        );
    }
}

/// Temperature rises with wear and spikes at the breakdown; the machine stops.
#[test]
fn breakdown_spikes_then_stops() {
    for t in MachineType::ALL {
        let run = first_run(t, 4, 30.0);
        let get = |s: &Sample, k: &str| s.metrics.iter().find(|(n, _)| *n == k).map(|(_, v)| *v);
        let first_failure = run
            .iter()
            .position(|s| s.label.phase == RunPhase::Failure)
            .unwrap();
        let normal_vib = get(&run[0], "vibration").unwrap();
        assert!(
            get(&run[first_failure], "vibration").unwrap() > 3.0 * normal_vib,
            "{t}"
        );
        let normal_temp: f64 = run
            .iter()
            .filter(|s| s.label.phase == RunPhase::Normal)
            .filter_map(|s| get(s, "temperature"))
            .sum::<f64>()
            / run
                .iter()
                .filter(|s| s.label.phase == RunPhase::Normal)
                .count() as f64;
        assert!(
            get(&run[first_failure], "temperature").unwrap() > normal_temp + 10.0,
            "{t}"
        );
        for s in &run[first_failure..] {
            for k in [
                "rpm",
                "load_tons",
                "speed_kmh",
                "power_kw",
                "fuel_rate_lh",
                "steam_flow_m3h",
            ] {
                if let Some(v) = get(s, k) {
                    assert_eq!(v, 0.0, "{t} {k} while broken down");
                }
            }
        }
    }
}
