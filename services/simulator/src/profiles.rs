//! Per machine type operating points: how each metric behaves around the type's typical
//! operating point, how the metrics correlate, and how wear and breakdown show in them.
//!
//! Values are produced with Gaussian noise and then clamped to the catalogue's plausible
//! range, so a simulated machine never sends a reading ingestion would quarantine.

use aurum_domain::MachineType;
use rand::Rng;

use aurum_domain::RunPhase;

use crate::degradation::Condition;
use crate::noise::{gaussian, lag, mean_reverting_step, uniform};

/// The readings of one message, in catalogue order.
pub type Metrics = Vec<(&'static str, f64)>;

/// Ambient temperature a stopped machine cools towards (degC).
const AMBIENT_C: f64 = 25.0;

/// Vibration RMS multiplier as wear develops: `1 + 3 w^2`.
pub fn vibration_factor(wear: f64) -> f64 {
    1.0 + 3.0 * wear * wear
}

/// A transient that is `peak` at the breakdown and decays with time constant `tau_h`.
fn breakdown_spike(c: &Condition, peak: f64, tau_h: f64) -> f64 {
    if c.phase == RunPhase::Failure {
        peak * (-c.hours_since_failure / tau_h).exp()
    } else {
        0.0
    }
}

/// The slowly changing state of one machine between messages.
#[derive(Debug, Clone, PartialEq)]
pub enum OperatingState {
    HaulTruck(TruckState),
    GrindingMill(MillState),
    IndustrialBoiler(BoilerState),
}

/// A haul truck's duty cycle: loaded haul up the ramp, empty return, repeat.
#[derive(Debug, Clone, PartialEq)]
pub struct TruckState {
    loaded: bool,
    leg_remaining_h: f64,
    payload_t: f64,
    coolant_c: f64,
}

/// A grinding mill: fixed shell speed, ore feed wandering with hardness and supply.
#[derive(Debug, Clone, PartialEq)]
pub struct MillState {
    shell_rpm: f64,
    feed_tph: f64,
    bearing_c: f64,
}

/// A boiler: firing rate following steam demand; pressure and temperature lag it.
#[derive(Debug, Clone, PartialEq)]
pub struct BoilerState {
    firing: f64,
    steam_c: f64,
    pressure_bar: f64,
}

impl OperatingState {
    /// A machine at its operating point, as it is after start-up.
    pub fn new<R: Rng + ?Sized>(machine_type: MachineType, rng: &mut R) -> Self {
        match machine_type {
            MachineType::HaulTruck => {
                let loaded = rng.random_bool(0.5);
                OperatingState::HaulTruck(TruckState {
                    loaded,
                    leg_remaining_h: truck_leg_h(loaded, rng),
                    payload_t: truck_payload(rng),
                    coolant_c: 88.0,
                })
            }
            MachineType::GrindingMill => OperatingState::GrindingMill(MillState {
                shell_rpm: uniform(rng, (10.5, 13.5)),
                feed_tph: uniform(rng, (1_300.0, 1_700.0)),
                bearing_c: 60.0,
            }),
            MachineType::IndustrialBoiler => OperatingState::IndustrialBoiler(BoilerState {
                firing: uniform(rng, (0.65, 0.9)),
                steam_c: 480.0,
                pressure_bar: 64.0,
            }),
        }
    }

    pub fn machine_type(&self) -> MachineType {
        match self {
            OperatingState::HaulTruck(_) => MachineType::HaulTruck,
            OperatingState::GrindingMill(_) => MachineType::GrindingMill,
            OperatingState::IndustrialBoiler(_) => MachineType::IndustrialBoiler,
        }
    }

    /// Evolves the state by `dt_h` simulated hours under `condition` and returns the readings
    /// of a message sent now, each within the catalogue's range.
    pub fn sample<R: Rng + ?Sized>(
        &mut self,
        condition: &Condition,
        dt_h: f64,
        rng: &mut R,
    ) -> Metrics {
        let dt_h = if dt_h.is_finite() { dt_h.max(0.0) } else { 0.0 };
        let mut metrics = match self {
            OperatingState::HaulTruck(s) => s.sample(condition, dt_h, rng),
            OperatingState::GrindingMill(s) => s.sample(condition, dt_h, rng),
            OperatingState::IndustrialBoiler(s) => s.sample(condition, dt_h, rng),
        };
        clamp_to_catalogue(self.machine_type(), &mut metrics);
        metrics
    }
}

/// Rounds to what a sensor reports (3 decimals) and clamps into the catalogue's range.
/// Non-finite values (never produced, but cheap to guard) become the range's minimum.
pub fn clamp_to_catalogue(machine_type: MachineType, metrics: &mut Metrics) {
    let catalogue = machine_type.catalogue();
    for (name, value) in metrics.iter_mut() {
        if let Some(spec) = catalogue.iter().find(|s| s.name == *name) {
            let v = if value.is_finite() { *value } else { spec.min };
            *value = ((v * 1_000.0).round() / 1_000.0).clamp(spec.min, spec.max);
        }
    }
}

fn truck_leg_h<R: Rng + ?Sized>(loaded: bool, rng: &mut R) -> f64 {
    if loaded {
        uniform(rng, (0.12, 0.25))
    } else {
        uniform(rng, (0.10, 0.20))
    }
}

fn truck_payload<R: Rng + ?Sized>(rng: &mut R) -> f64 {
    uniform(rng, (220.0, 360.0))
}

impl TruckState {
    fn sample<R: Rng + ?Sized>(&mut self, c: &Condition, dt_h: f64, rng: &mut R) -> Metrics {
        let w = c.wear;
        if c.phase == RunPhase::Failure {
            // Stopped where it broke down; the duty cycle restarts empty after repair.
            self.loaded = false;
            self.leg_remaining_h = truck_leg_h(false, rng);
            self.coolant_c = lag(self.coolant_c, AMBIENT_C, 0.4, dt_h);
            return vec![
                ("rpm", 0.0),
                (
                    "temperature",
                    self.coolant_c + breakdown_spike(c, 22.0, 0.08) + gaussian(rng, 0.0, 0.3),
                ),
                (
                    "vibration",
                    breakdown_spike(c, 30.0, 0.03) + gaussian(rng, 0.08, 0.03),
                ),
                ("fuel_rate_lh", 0.0),
                ("speed_kmh", 0.0),
                ("load_tons", 0.0),
                ("oil_pressure", 0.0),
            ];
        }

        self.leg_remaining_h -= dt_h;
        if self.leg_remaining_h <= 0.0 {
            self.loaded = !self.loaded;
            if self.loaded {
                self.payload_t = truck_payload(rng);
            }
            self.leg_remaining_h = truck_leg_h(self.loaded, rng);
        }

        let load = if self.loaded {
            self.payload_t + gaussian(rng, 0.0, 1.5)
        } else {
            gaussian(rng, 0.5, 0.4).abs()
        };
        let rpm = if self.loaded {
            gaussian(rng, 1_780.0, 40.0 * (1.0 + w))
        } else {
            gaussian(rng, 1_650.0, 50.0 * (1.0 + w))
        };
        // Loaded trucks climb the ramp slowly; empty ones come back fast.
        let speed = 50.0 - 0.075 * load + gaussian(rng, 0.0, 2.5);
        let fuel =
            (0.09 * (rpm - 600.0) + 0.32 * load) * (1.0 + 0.12 * w) + gaussian(rng, 0.0, 4.0);
        let coolant_target = 84.0 + 0.012 * load + 22.0 * w;
        self.coolant_c = lag(self.coolant_c, coolant_target, 0.15, dt_h);
        let oil = 1.5 + 0.0018 * rpm - 1.2 * w + gaussian(rng, 0.0, 0.08);
        let vibration =
            (2.2 + 0.004 * load) * vibration_factor(w) + gaussian(rng, 0.0, 0.15 * (1.0 + w));
        vec![
            ("rpm", rpm),
            ("temperature", self.coolant_c + gaussian(rng, 0.0, 0.4)),
            ("vibration", vibration),
            ("fuel_rate_lh", fuel),
            ("speed_kmh", speed),
            ("load_tons", load),
            ("oil_pressure", oil),
        ]
    }
}

impl MillState {
    fn sample<R: Rng + ?Sized>(&mut self, c: &Condition, dt_h: f64, rng: &mut R) -> Metrics {
        let w = c.wear;
        if c.phase == RunPhase::Failure {
            self.bearing_c = lag(self.bearing_c, AMBIENT_C, 0.8, dt_h);
            return vec![
                ("rpm", 0.0),
                (
                    "temperature",
                    self.bearing_c + breakdown_spike(c, 25.0, 0.1) + gaussian(rng, 0.0, 0.3),
                ),
                (
                    "vibration",
                    breakdown_spike(c, 25.0, 0.03) + gaussian(rng, 0.06, 0.02),
                ),
                ("power_kw", 0.0),
                ("kwh", 0.0),
                ("throughput_tph", 0.0),
                // Lube pumps on standby while the mill is down.
                ("pressure", gaussian(rng, 2.0, 0.3)),
            ];
        }

        self.feed_tph = mean_reverting_step(rng, self.feed_tph, 1_500.0, 2.0, 150.0, dt_h)
            .clamp(800.0, 2_500.0);
        let throughput = self.feed_tph + gaussian(rng, 0.0, 15.0);
        // A worn pinion bearing wastes energy as friction: more power for the same ore.
        let power = (1_800.0 + 4.2 * throughput) * (1.0 + 0.10 * w) + gaussian(rng, 0.0, 60.0);
        let bearing_target = 48.0 + 0.0015 * power + 30.0 * w;
        self.bearing_c = lag(self.bearing_c, bearing_target, 0.3, dt_h);
        let vibration = (1.8 + 0.0003 * throughput) * vibration_factor(w)
            + gaussian(rng, 0.0, 0.12 * (1.0 + w));
        vec![
            ("rpm", self.shell_rpm + gaussian(rng, 0.0, 0.05)),
            ("temperature", self.bearing_c + gaussian(rng, 0.0, 0.3)),
            ("vibration", vibration),
            ("power_kw", power),
            // Energy since the previous message.
            ("kwh", power.max(0.0) * dt_h),
            ("throughput_tph", throughput),
            ("pressure", 62.0 - 12.0 * w + gaussian(rng, 0.0, 0.6)),
        ]
    }
}

impl BoilerState {
    fn sample<R: Rng + ?Sized>(&mut self, c: &Condition, dt_h: f64, rng: &mut R) -> Metrics {
        let w = c.wear;
        if c.phase == RunPhase::Failure {
            // The feed-water pump seized: the burner trips, the drum depressurises and cools,
            // the flue fills with air.
            self.steam_c = lag(self.steam_c, AMBIENT_C, 0.6, dt_h);
            self.pressure_bar = lag(self.pressure_bar, 0.0, 0.4, dt_h);
            return vec![
                (
                    "temperature",
                    self.steam_c + breakdown_spike(c, 45.0, 0.05) + gaussian(rng, 0.0, 0.5),
                ),
                (
                    "steam_pressure_bar",
                    self.pressure_bar + gaussian(rng, 0.0, 0.1),
                ),
                ("fuel_rate_lh", 0.0),
                ("co2_ppm", gaussian(rng, 420.0, 10.0)),
                (
                    "vibration",
                    breakdown_spike(c, 28.0, 0.03) + gaussian(rng, 0.07, 0.02),
                ),
                ("o2_percent", gaussian(rng, 20.9, 0.02)),
                ("steam_flow_m3h", 0.0),
            ];
        }

        self.firing = mean_reverting_step(rng, self.firing, 0.78, 1.5, 0.12, dt_h).clamp(0.35, 1.0);
        let f = self.firing;
        self.steam_c = lag(self.steam_c, 430.0 + 70.0 * f + 25.0 * w, 0.2, dt_h);
        self.pressure_bar = lag(self.pressure_bar, 58.0 + 8.0 * f, 0.1, dt_h);
        // Fouling and air leaks: more fuel for the same steam, more excess oxygen.
        let fuel = (3_200.0 * f + 250.0) * (1.0 + 0.08 * w) + gaussian(rng, 0.0, 25.0);
        let vibration = (1.6 + 0.8 * f) * vibration_factor(w) + gaussian(rng, 0.0, 0.1 * (1.0 + w));
        vec![
            ("temperature", self.steam_c + gaussian(rng, 0.0, 1.5)),
            (
                "steam_pressure_bar",
                self.pressure_bar + gaussian(rng, 0.0, 0.4),
            ),
            ("fuel_rate_lh", fuel),
            (
                "co2_ppm",
                95_000.0 + 30_000.0 * f - 8_000.0 * w + gaussian(rng, 0.0, 800.0),
            ),
            ("vibration", vibration),
            (
                "o2_percent",
                5.0 - 2.2 * f + 1.5 * w + gaussian(rng, 0.0, 0.1),
            ),
            ("steam_flow_m3h", 38_000.0 * f + gaussian(rng, 0.0, 300.0)),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::rngs::StdRng;
    use rand::SeedableRng;

    fn condition(phase: RunPhase, wear: f64) -> Condition {
        Condition {
            run_index: 0,
            phase,
            wear,
            time_to_failure_h: 1.0,
            hours_since_failure: 0.0,
        }
    }

    #[test]
    fn every_type_reports_exactly_its_catalogue() {
        let mut rng = StdRng::seed_from_u64(1);
        for t in MachineType::ALL {
            let mut state = OperatingState::new(t, &mut rng);
            for phase in RunPhase::ALL {
                let m = state.sample(&condition(phase, 0.5), 1.0 / 60.0, &mut rng);
                let names: Vec<_> = m.iter().map(|(n, _)| *n).collect();
                let expected: Vec<_> = t.catalogue().iter().map(|s| s.name).collect();
                assert_eq!(names, expected, "{t} {phase}");
            }
        }
    }

    #[test]
    fn haul_truck_load_is_bimodal_and_speed_follows_it() {
        let mut rng = StdRng::seed_from_u64(2);
        let mut state = OperatingState::new(MachineType::HaulTruck, &mut rng);
        let (mut loaded, mut empty) = (Vec::new(), Vec::new());
        for _ in 0..5_000 {
            let m = state.sample(&condition(RunPhase::Normal, 0.0), 1.0 / 60.0, &mut rng);
            let get = |k: &str| m.iter().find(|(n, _)| *n == k).map(|(_, v)| *v).unwrap();
            let load = get("load_tons");
            assert!(load < 5.0 || (210.0..=370.0).contains(&load), "load {load}");
            if load > 100.0 {
                loaded.push(get("speed_kmh"));
            } else {
                empty.push(get("speed_kmh"));
            }
        }
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        assert!(!loaded.is_empty() && !empty.is_empty());
        assert!(mean(&loaded) + 10.0 < mean(&empty));
    }

    #[test]
    fn a_stopped_machine_reports_zero_speed() {
        let mut rng = StdRng::seed_from_u64(3);
        for t in MachineType::ALL {
            let mut state = OperatingState::new(t, &mut rng);
            let m = state.sample(&condition(RunPhase::Failure, 1.0), 0.01, &mut rng);
            for key in [
                "rpm",
                "speed_kmh",
                "load_tons",
                "power_kw",
                "fuel_rate_lh",
                "steam_flow_m3h",
            ] {
                if let Some((_, v)) = m.iter().find(|(n, _)| *n == key) {
                    assert_eq!(*v, 0.0, "{t} {key}");
                }
            }
        }
    }
}
