//! MQTT adapter on paho-mqtt: MQTT v5 connections with TLS or mutual TLS, persistent sessions,
//! and a shared-subscription consumer that hands messages to the application in order.

mod connection;
mod consumer;
#[cfg(feature = "dynsec")]
mod dynsec;
mod publisher;

pub use connection::{certificate_files, connect_options, create_client, server_uri, MqttError};
pub use consumer::{Consumer, Delivery, Received};
#[cfg(feature = "dynsec")]
pub use dynsec::DynsecBroker;
pub use publisher::Publisher;

/// The telemetry topic of one machine: `aurum/v1/{tenant}/{machine}/telemetry`.
pub fn telemetry_topic(tenant: &str, machine: &str) -> String {
    format!("aurum/v1/{tenant}/{machine}/telemetry")
}

/// Every machine's telemetry topic.
pub const TELEMETRY_FILTER: &str = "aurum/v1/+/+/telemetry";

/// The filter ingestion subscribes with. With a shared-subscription `group`, each message goes
/// to one replica of the group; with an empty one, a plain subscription of the whole topic.
///
/// The plain subscription is what a single replica should use: Mosquitto 2.0 does not restore
/// a persistent session's shared subscriptions when it restarts, so until the replica is back
/// on its session the broker acknowledges telemetry and drops it, where a plain subscription
/// is restored and queues it (docs/operations.md).
pub fn telemetry_filter(group: &str) -> String {
    if group.is_empty() {
        TELEMETRY_FILTER.to_owned()
    } else {
        format!("$share/{group}/{TELEMETRY_FILTER}")
    }
}

/// Why `group` cannot name a shared-subscription group, if it cannot (MQTT 5 §4.8.2: no `/`,
/// `+` or `#`). Empty is allowed: it means a plain subscription.
pub fn shared_group_problem(group: &str) -> Option<&'static str> {
    if group.contains(['/', '+', '#']) {
        Some("must not contain '/', '+' or '#' (empty for a plain subscription)")
    } else if group.trim() != group {
        Some("must not start or end with whitespace")
    } else {
        None
    }
}

/// Splits a telemetry topic into (tenant, machine), or `None` if it is not one.
pub fn parse_telemetry_topic(topic: &str) -> Option<(&str, &str)> {
    let mut parts = topic.split('/');
    match (
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
        parts.next(),
    ) {
        (Some("aurum"), Some("v1"), Some(tenant), Some(machine), Some("telemetry"), None) => {
            Some((tenant, machine))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_group_subscribes_plainly_and_a_group_shares() {
        assert_eq!(telemetry_filter(""), "aurum/v1/+/+/telemetry");
        assert_eq!(
            telemetry_filter("ingestion"),
            "$share/ingestion/aurum/v1/+/+/telemetry"
        );
        for ok in ["", "ingestion", "ingest-2_b"] {
            assert_eq!(shared_group_problem(ok), None, "{ok:?}");
        }
        for bad in ["a/b", "+", "#", " ingestion", "ingestion "] {
            assert!(shared_group_problem(bad).is_some(), "{bad:?}");
        }
    }

    #[test]
    fn topics_roundtrip() {
        let t = telemetry_topic("demo", "TRUCK-21");
        assert_eq!(t, "aurum/v1/demo/TRUCK-21/telemetry");
        assert_eq!(parse_telemetry_topic(&t), Some(("demo", "TRUCK-21")));
        assert_eq!(parse_telemetry_topic("aurum/v1/demo/TRUCK-21/status"), None);
        assert_eq!(
            parse_telemetry_topic("aurum/v1/demo/TRUCK-21/telemetry/x"),
            None
        );
    }
}
