//! What a restarted Mosquitto keeps of a persistent session's subscription, on the real broker:
//! the reason ingestion subscribes plainly unless several replicas share the work.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use aurum_mqtt::{telemetry_filter, telemetry_topic, Publisher};
use aurum_testkit::Broker;
use paho_mqtt as mqtt;

/// Connects ingestion's way (clean start off, a week's session expiry) and subscribes with
/// `filter`, as ingestion does on every connection.
async fn ingestion_session(
    broker: &Broker,
    filter: &str,
) -> (
    mqtt::AsyncClient,
    mqtt::AsyncReceiver<Option<mqtt::Message>>,
) {
    let mut client = mqtt::CreateOptionsBuilder::new()
        .server_uri(format!("tcp://127.0.0.1:{}", broker.port))
        .client_id("ingestion-1")
        .mqtt_version(mqtt::MQTT_VERSION_5)
        .persistence(None)
        .create_client()
        .unwrap();
    let stream = client.get_stream(100);
    let opts = mqtt::ConnectOptionsBuilder::new_v5()
        .clean_start(false)
        .properties(mqtt::properties![mqtt::PropertyCode::SessionExpiryInterval => 604_800])
        .finalize();
    client.connect(opts).await.unwrap();
    client.subscribe(filter, mqtt::QOS_1).await.unwrap();
    (client, stream)
}

/// Mosquitto 2.0 restores a persistent session's plain subscriptions from its saved state, but
/// not its shared ones: what a device publishes after a restart, before the subscriber is back,
/// is queued for a plain subscription and acknowledged and dropped for a shared one. A broker
/// that restores both fails this test, and ingestion's multi-replica gap (docs/operations.md)
/// is gone with it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restarted_broker_keeps_messages_for_a_plain_subscription_but_not_a_shared_one() {
    for (group, kept) in [("", true), ("ingestion", false)] {
        let mut broker = Broker::start();
        let (ingestion, _) = ingestion_session(&broker, &telemetry_filter(group)).await;
        broker.stop();
        drop(ingestion);
        broker.start_again();

        let device = Publisher::connect(&broker.settings("device-1", None), 10)
            .await
            .unwrap();
        device
            .publish(
                &telemetry_topic("acme", "MILL-1"),
                b"{}".to_vec(),
                "application/json",
                None,
            )
            .await
            .expect("the broker acknowledges either way");

        let (_ingestion, stream) = ingestion_session(&broker, &telemetry_filter(group)).await;
        let received = tokio::time::timeout(Duration::from_secs(2), stream.recv()).await;
        let got = matches!(received, Ok(Ok(Some(_))));
        assert_eq!(got, kept, "group {group:?}: {received:?}");
    }
}
