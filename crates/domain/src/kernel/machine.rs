//! Machines and their types.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::catalogue::{self, MetricSpec};
use crate::ids::{MachineId, MetricName, SiteId, TenantId};
use crate::profile::ProfileId;

/// The kinds of machine the platform knows how to monitor. Each has its own metric catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MachineType {
    HaulTruck,
    GrindingMill,
    IndustrialBoiler,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown machine type {0:?}; known: haul_truck, grinding_mill, industrial_boiler")]
pub struct UnknownMachineType(pub String);

impl MachineType {
    pub const ALL: [MachineType; 3] = [
        MachineType::HaulTruck,
        MachineType::GrindingMill,
        MachineType::IndustrialBoiler,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            MachineType::HaulTruck => "haul_truck",
            MachineType::GrindingMill => "grinding_mill",
            MachineType::IndustrialBoiler => "industrial_boiler",
        }
    }

    /// The metrics a machine of this type reports, with units and plausible ranges.
    pub fn catalogue(self) -> &'static [MetricSpec] {
        catalogue::for_type(self)
    }

    pub fn metric(self, name: &MetricName) -> Option<&'static MetricSpec> {
        self.catalogue().iter().find(|m| m.name == name.as_str())
    }
}

impl FromStr for MachineType {
    type Err = UnknownMachineType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MachineType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownMachineType(s.to_owned()))
    }
}

impl fmt::Display for MachineType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A request to register a machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewMachine {
    pub tenant: TenantId,
    pub id: MachineId,
    /// The profile its readings are checked against.
    pub profile: ProfileId,
    pub site: Option<SiteId>,
    pub name: Option<String>,
}

impl NewMachine {
    /// The built-in kind, when the profile is one (the kinds the platform's models know).
    pub fn machine_type(&self) -> Option<MachineType> {
        self.profile.machine_type()
    }
}

/// A registered machine.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Machine {
    pub tenant: TenantId,
    pub id: MachineId,
    pub profile: ProfileId,
    /// The built-in kind its profile is, `None` for a tenant's own profile.
    pub machine_type: Option<MachineType>,
    pub site: Option<SiteId>,
    pub name: Option<String>,
    pub registered_at: DateTime<Utc>,
}
