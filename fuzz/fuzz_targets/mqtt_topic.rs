//! MQTT topics as ingestion reads them: `aurum_mqtt::parse_telemetry_topic`, then the tenant
//! and machine ids (`TenantId::parse`, `MachineId::parse`) as the MQTT pipeline does.
//!
//! Properties: the parser accepts exactly `aurum/v1/{a}/{b}/telemetry` with `a` and `b` free
//! of `/` (checked against an independent reading of the form); what it returns rebuilds the
//! topic with `telemetry_topic`; when both ids parse, the device's own telemetry topic
//! (`DeviceTopics::of`, the broker ACL) is that same topic and holds no wildcard.
#![no_main]

use aurum_domain::auth::device::DeviceTopics;
use aurum_domain::{MachineId, TenantId};
use aurum_mqtt::{parse_telemetry_topic, telemetry_topic};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(topic) = std::str::from_utf8(data) else {
        return;
    };
    let parsed = parse_telemetry_topic(topic);

    let expected = topic
        .strip_prefix("aurum/v1/")
        .and_then(|rest| rest.strip_suffix("/telemetry"))
        .and_then(|middle| middle.split_once('/'))
        .filter(|(_, machine)| !machine.contains('/'));
    assert_eq!(parsed, expected, "{topic:?}");

    let Some((tenant, machine)) = parsed else {
        return;
    };
    assert_eq!(telemetry_topic(tenant, machine), topic);

    if let (Ok(t), Ok(m)) = (TenantId::parse(tenant), MachineId::parse(machine)) {
        let own = DeviceTopics::of(&t, &m);
        assert_eq!(own.telemetry, topic);
        assert!(!topic.contains(['+', '#']));
        assert_eq!(
            parse_telemetry_topic(&own.telemetry),
            Some((tenant, machine))
        );
    }
});
