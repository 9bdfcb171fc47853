//! Which machines are simulated: the demo fleet or a numbered fleet of any size.

use aurum_domain::{MachineId, MachineType};
use serde::Serialize;

use crate::degradation::LifecycleParams;
use crate::error::SimError;
use crate::machine::SimMachine;

/// The demo fleet the seed data registers.
pub const SEED_FLEET: [(&str, MachineType); 3] = [
    ("TRUCK-21", MachineType::HaulTruck),
    ("MILL-3", MachineType::GrindingMill),
    ("BOILER-7", MachineType::IndustrialBoiler),
];

/// A machine of the fleet, as `--print-machines` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MachineInfo {
    pub id: MachineId,
    pub machine_type: MachineType,
}

/// How the fleet is chosen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FleetSpec {
    /// Exactly TRUCK-21, MILL-3, BOILER-7.
    Seed,
    /// `n` machines cycling through the types: TRUCK-001, MILL-001, BOILER-001, TRUCK-002, ...
    Numbered(usize),
}

fn prefix(t: MachineType) -> &'static str {
    match t {
        MachineType::HaulTruck => "TRUCK",
        MachineType::GrindingMill => "MILL",
        MachineType::IndustrialBoiler => "BOILER",
    }
}

impl FleetSpec {
    pub fn machines(self) -> Result<Vec<MachineInfo>, SimError> {
        match self {
            FleetSpec::Seed => SEED_FLEET
                .iter()
                .map(|(id, t)| {
                    Ok(MachineInfo {
                        id: MachineId::parse(id)?,
                        machine_type: *t,
                    })
                })
                .collect(),
            FleetSpec::Numbered(n) => (0..n)
                .map(|i| {
                    let t = MachineType::ALL[i % MachineType::ALL.len()];
                    let number = i / MachineType::ALL.len() + 1;
                    Ok(MachineInfo {
                        id: MachineId::parse(&format!("{}-{number:03}", prefix(t)))?,
                        machine_type: t,
                    })
                })
                .collect(),
        }
    }
}

/// The seed of the `index`-th machine's generator, derived from the fleet seed so that
/// machines are independent but the whole fleet is reproducible.
pub fn machine_seed(fleet_seed: u64, index: usize) -> u64 {
    // SplitMix64 finaliser over (seed, index): neighbouring indices get unrelated seeds.
    let mut z = fleet_seed
        ^ (index as u64)
            .wrapping_add(1)
            .wrapping_mul(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Builds the simulated machines of a fleet.
pub fn build(machines: &[MachineInfo], seed: u64, params: LifecycleParams) -> Vec<SimMachine> {
    machines
        .iter()
        .enumerate()
        .map(|(i, m)| SimMachine::new(m.id.clone(), m.machine_type, machine_seed(seed, i), params))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_fleet_is_the_demo_fleet() {
        let ids: Vec<String> = FleetSpec::Seed
            .machines()
            .unwrap()
            .into_iter()
            .map(|m| format!("{}:{}", m.id, m.machine_type))
            .collect();
        assert_eq!(
            ids,
            [
                "TRUCK-21:haul_truck",
                "MILL-3:grinding_mill",
                "BOILER-7:industrial_boiler"
            ]
        );
    }

    #[test]
    fn numbered_fleet_cycles_types() {
        let ids: Vec<String> = FleetSpec::Numbered(5)
            .machines()
            .unwrap()
            .into_iter()
            .map(|m| m.id.to_string())
            .collect();
        assert_eq!(
            ids,
            [
                "TRUCK-001",
                "MILL-001",
                "BOILER-001",
                "TRUCK-002",
                "MILL-002"
            ]
        );
        let big = FleetSpec::Numbered(5_000).machines().unwrap();
        let mut unique: Vec<_> = big.iter().map(|m| m.id.clone()).collect();
        unique.sort();
        unique.dedup();
        assert_eq!(unique.len(), 5_000);
    }

    #[test]
    fn machine_info_serialises_for_registration_scripts() {
        let m = &FleetSpec::Seed.machines().unwrap()[0];
        assert_eq!(
            serde_json::to_string(m).unwrap(),
            r#"{"id":"TRUCK-21","machine_type":"haul_truck"}"#
        );
    }

    #[test]
    fn machine_seeds_differ() {
        assert_ne!(machine_seed(1, 0), machine_seed(1, 1));
        assert_ne!(machine_seed(1, 0), machine_seed(2, 0));
    }
}
