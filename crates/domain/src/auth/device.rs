//! Devices: the machines' own MQTT identities, and the only topics each may use.

use crate::ids::{MachineId, TenantId};

/// The topics of one machine. A device may publish its telemetry and status and subscribe to
/// its commands; it may touch no other machine's topics and no wildcard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceTopics {
    pub telemetry: String,
    pub status: String,
    pub commands: String,
}

impl DeviceTopics {
    /// `aurum/v1/{tenant}/{machine}/{telemetry,status,commands}`. Both ids are parsed slugs, so
    /// neither can carry `/`, `+` or `#` into a topic or an ACL pattern.
    pub fn of(tenant: &TenantId, machine: &MachineId) -> Self {
        let base = format!("aurum/v1/{}/{}", tenant.as_str(), machine.as_str());
        Self {
            telemetry: format!("{base}/telemetry"),
            status: format!("{base}/status"),
            commands: format!("{base}/commands"),
        }
    }
}

/// What the broker must let one device do: log in with a username and password and use its
/// machine's topics.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceGrant {
    pub username: String,
    pub tenant: TenantId,
    pub machine: MachineId,
}

impl DeviceGrant {
    pub fn topics(&self) -> DeviceTopics {
        DeviceTopics::of(&self.tenant, &self.machine)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn topics_name_one_machine_of_one_tenant() {
        let t = TenantId::parse("acme").unwrap_or_else(|e| panic!("{e}"));
        let m = MachineId::parse("TRUCK-7").unwrap_or_else(|e| panic!("{e}"));
        let topics = DeviceTopics::of(&t, &m);
        assert_eq!(topics.telemetry, "aurum/v1/acme/TRUCK-7/telemetry");
        assert_eq!(topics.status, "aurum/v1/acme/TRUCK-7/status");
        assert_eq!(topics.commands, "aurum/v1/acme/TRUCK-7/commands");
    }

    proptest! {
        #[test]
        fn no_id_widens_a_device_topic(tenant in "\\PC{1,40}", machine in "\\PC{1,40}") {
            if let (Ok(t), Ok(m)) = (TenantId::parse(&tenant), MachineId::parse(&machine)) {
                let topics = DeviceTopics::of(&t, &m);
                for topic in [&topics.telemetry, &topics.status, &topics.commands] {
                    prop_assert!(!topic.contains('+') && !topic.contains('#'));
                    prop_assert_eq!(topic.split('/').count(), 5);
                }
            }
        }
    }
}
