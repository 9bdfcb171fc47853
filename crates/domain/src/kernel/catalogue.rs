//! The metric catalogue: what each machine type reports, in which unit, within which range.
//!
//! Ranges are physical plausibility bounds, not alarm thresholds: a value outside them is a
//! broken sensor or a corrupt message, never a real reading, so it is quarantined.

use serde::Serialize;

use crate::machine::MachineType;

/// Units of measure used by the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Unit {
    #[serde(rename = "rpm")]
    Rpm,
    #[serde(rename = "degC")]
    Celsius,
    /// Vibration velocity, RMS (ISO 10816).
    #[serde(rename = "mm/s")]
    MillimetresPerSecond,
    #[serde(rename = "L/h")]
    LitresPerHour,
    #[serde(rename = "ppm")]
    PartsPerMillion,
    #[serde(rename = "bar")]
    Bar,
    #[serde(rename = "km/h")]
    KilometresPerHour,
    #[serde(rename = "t")]
    Tonnes,
    #[serde(rename = "t/h")]
    TonnesPerHour,
    #[serde(rename = "kW")]
    Kilowatts,
    /// Energy counted since the previous message.
    #[serde(rename = "kWh")]
    KilowattHours,
    #[serde(rename = "%")]
    Percent,
    #[serde(rename = "m3/h")]
    CubicMetresPerHour,
}

impl Unit {
    pub fn symbol(self) -> &'static str {
        match self {
            Unit::Rpm => "rpm",
            Unit::Celsius => "degC",
            Unit::MillimetresPerSecond => "mm/s",
            Unit::LitresPerHour => "L/h",
            Unit::PartsPerMillion => "ppm",
            Unit::Bar => "bar",
            Unit::KilometresPerHour => "km/h",
            Unit::Tonnes => "t",
            Unit::TonnesPerHour => "t/h",
            Unit::Kilowatts => "kW",
            Unit::KilowattHours => "kWh",
            Unit::Percent => "%",
            Unit::CubicMetresPerHour => "m3/h",
        }
    }
}

/// One metric of a machine type.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct MetricSpec {
    pub name: &'static str,
    pub unit: Unit,
    /// Lowest physically plausible value (inclusive).
    pub min: f64,
    /// Highest physically plausible value (inclusive).
    pub max: f64,
    pub description: &'static str,
}

impl MetricSpec {
    pub fn is_plausible(&self, value: f64) -> bool {
        value.is_finite() && value >= self.min && value <= self.max
    }
}

const fn spec(
    name: &'static str,
    unit: Unit,
    min: f64,
    max: f64,
    description: &'static str,
) -> MetricSpec {
    MetricSpec {
        name,
        unit,
        min,
        max,
        description,
    }
}

const HAUL_TRUCK: &[MetricSpec] = &[
    spec("rpm", Unit::Rpm, 0.0, 3_000.0, "diesel engine speed"),
    spec(
        "temperature",
        Unit::Celsius,
        -50.0,
        150.0,
        "engine coolant temperature",
    ),
    spec(
        "vibration",
        Unit::MillimetresPerSecond,
        0.0,
        100.0,
        "wheel-motor bearing vibration, RMS velocity",
    ),
    spec(
        "fuel_rate_lh",
        Unit::LitresPerHour,
        0.0,
        600.0,
        "diesel consumption rate",
    ),
    spec(
        "speed_kmh",
        Unit::KilometresPerHour,
        0.0,
        90.0,
        "ground speed",
    ),
    spec("load_tons", Unit::Tonnes, 0.0, 450.0, "payload in the bed"),
    spec("oil_pressure", Unit::Bar, 0.0, 10.0, "engine oil pressure"),
];

const GRINDING_MILL: &[MetricSpec] = &[
    spec("rpm", Unit::Rpm, 0.0, 30.0, "shell rotation speed"),
    spec(
        "temperature",
        Unit::Celsius,
        -20.0,
        150.0,
        "main bearing temperature",
    ),
    spec(
        "vibration",
        Unit::MillimetresPerSecond,
        0.0,
        100.0,
        "pinion bearing vibration, RMS velocity",
    ),
    spec(
        "power_kw",
        Unit::Kilowatts,
        0.0,
        30_000.0,
        "motor power draw",
    ),
    spec(
        "kwh",
        Unit::KilowattHours,
        0.0,
        10_000.0,
        "electrical energy since the previous message",
    ),
    spec(
        "throughput_tph",
        Unit::TonnesPerHour,
        0.0,
        5_000.0,
        "ore feed rate",
    ),
    spec(
        "pressure",
        Unit::Bar,
        0.0,
        200.0,
        "bearing lube oil pressure",
    ),
];

const INDUSTRIAL_BOILER: &[MetricSpec] = &[
    spec(
        "temperature",
        Unit::Celsius,
        -20.0,
        700.0,
        "steam outlet temperature",
    ),
    spec(
        "steam_pressure_bar",
        Unit::Bar,
        0.0,
        250.0,
        "drum steam pressure",
    ),
    spec(
        "fuel_rate_lh",
        Unit::LitresPerHour,
        0.0,
        20_000.0,
        "fuel oil consumption rate",
    ),
    spec(
        "co2_ppm",
        Unit::PartsPerMillion,
        0.0,
        200_000.0,
        "CO2 concentration in the flue gas",
    ),
    spec(
        "vibration",
        Unit::MillimetresPerSecond,
        0.0,
        100.0,
        "feed-water pump vibration, RMS velocity",
    ),
    spec("o2_percent", Unit::Percent, 0.0, 21.0, "O2 in the flue gas"),
    spec(
        "steam_flow_m3h",
        Unit::CubicMetresPerHour,
        0.0,
        100_000.0,
        "steam flow",
    ),
];

pub(crate) fn for_type(t: MachineType) -> &'static [MetricSpec] {
    match t {
        MachineType::HaulTruck => HAUL_TRUCK,
        MachineType::GrindingMill => GRINDING_MILL,
        MachineType::IndustrialBoiler => INDUSTRIAL_BOILER,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ids::MetricName;

    #[test]
    fn every_catalogue_entry_is_a_valid_metric_name_with_a_sane_range() {
        for t in MachineType::ALL {
            for m in t.catalogue() {
                assert!(MetricName::parse(m.name).is_ok(), "{}", m.name);
                assert!(m.min < m.max, "{} range", m.name);
            }
        }
    }

    #[test]
    fn names_are_unique_within_a_type() {
        for t in MachineType::ALL {
            let mut names: Vec<_> = t.catalogue().iter().map(|m| m.name).collect();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), t.catalogue().len(), "{t}");
        }
    }

    #[test]
    fn plausibility_rejects_non_finite_and_out_of_range() {
        let rpm = HAUL_TRUCK[0];
        assert!(rpm.is_plausible(1650.0));
        assert!(!rpm.is_plausible(f64::NAN));
        assert!(!rpm.is_plausible(f64::INFINITY));
        assert!(!rpm.is_plausible(-1.0));
        assert!(!rpm.is_plausible(3_000.1));
    }
}
