//! One simulated machine: its lifecycle, its operating state, its message counter.

use aurum_domain::{MachineId, MachineType};
use chrono::{DateTime, Utc};
use rand::rngs::StdRng;
use rand::SeedableRng;

use aurum_domain::RunPhase;

use crate::degradation::{Lifecycle, LifecycleParams};
use crate::profiles::{Metrics, OperatingState};

/// Ground truth for one message.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Label {
    pub run_index: u32,
    pub phase: RunPhase,
    /// Simulated hours until the run's breakdown; 0 during failure.
    pub time_to_failure_h: f64,
}

/// One message's worth of simulation.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    pub seq: u64,
    pub ts: DateTime<Utc>,
    pub label: Label,
    pub metrics: Metrics,
}

/// The run id of a machine's run: `TRUCK-21-r0`, `TRUCK-21-r1`, ...
pub fn run_id(machine: &str, run_index: u32) -> String {
    format!("{machine}-r{run_index}")
}

/// A simulated machine. Deterministic for a given seed and sequence of steps.
#[derive(Debug, Clone)]
pub struct SimMachine {
    id: MachineId,
    machine_type: MachineType,
    next_seq: u64,
    lifecycle: Lifecycle,
    state: OperatingState,
    rng: StdRng,
}

impl SimMachine {
    pub fn new(
        id: MachineId,
        machine_type: MachineType,
        seed: u64,
        params: LifecycleParams,
    ) -> Self {
        let mut rng = StdRng::seed_from_u64(seed);
        let lifecycle = Lifecycle::new(params, &mut rng);
        let state = OperatingState::new(machine_type, &mut rng);
        Self {
            id,
            machine_type,
            next_seq: 1,
            lifecycle,
            state,
            rng,
        }
    }

    pub fn id(&self) -> &MachineId {
        &self.id
    }

    pub fn machine_type(&self) -> MachineType {
        self.machine_type
    }

    pub fn lifecycle(&self) -> &Lifecycle {
        &self.lifecycle
    }

    /// The run the next sample belongs to.
    pub fn current_run(&self) -> u32 {
        self.lifecycle.run_index()
    }

    /// Makes the next sample's seq `first`: a live run continues above what earlier runs sent.
    pub fn start_seq_at(&mut self, first: u64) {
        self.next_seq = first;
    }

    /// The seq the next sample gets (1 for the first).
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Builds the next message, stamped `ts`, then advances simulated time by `dt_s`
    /// simulated seconds (the interval until the next message).
    pub fn step(&mut self, dt_s: f64, ts: DateTime<Utc>) -> Sample {
        let dt_h = dt_s / 3_600.0;
        let condition = self.lifecycle.condition();
        let metrics = self.state.sample(&condition, dt_h, &mut self.rng);
        let seq = self.next_seq;
        self.next_seq += 1;
        self.lifecycle.advance(dt_h, &mut self.rng);
        Sample {
            seq,
            ts,
            label: Label {
                run_index: condition.run_index,
                phase: condition.phase,
                time_to_failure_h: condition.time_to_failure_h,
            },
            metrics,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_starts_at_one_and_increments() {
        let id = MachineId::parse("MILL-3").unwrap();
        let mut m = SimMachine::new(id, MachineType::GrindingMill, 9, LifecycleParams::default());
        let now = Utc::now();
        let seqs: Vec<u64> = (0..5).map(|_| m.step(60.0, now).seq).collect();
        assert_eq!(seqs, vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn same_seed_same_samples() {
        let id = MachineId::parse("BOILER-7").unwrap();
        let ts = Utc::now();
        let mut a = SimMachine::new(
            id.clone(),
            MachineType::IndustrialBoiler,
            11,
            LifecycleParams::default(),
        );
        let mut b = SimMachine::new(
            id,
            MachineType::IndustrialBoiler,
            11,
            LifecycleParams::default(),
        );
        for _ in 0..500 {
            assert_eq!(a.step(60.0, ts), b.step(60.0, ts));
        }
    }
}
