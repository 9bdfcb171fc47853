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

/// The filter ingestion replicas share: each message goes to one replica of the group.
pub fn shared_telemetry_filter(group: &str) -> String {
    format!("$share/{group}/aurum/v1/+/+/telemetry")
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
