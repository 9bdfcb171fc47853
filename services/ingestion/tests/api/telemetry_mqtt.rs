use std::time::Duration;

use aurum_mqtt::telemetry_topic;
use aurum_testkit::eventually;
use chrono::Utc;
use serde_json::json;

use crate::helpers::{message, spawn_app_with, spawn_app_with_broker, TENANT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_telemetry_lands_in_the_database() {
    let app = spawn_app_with_broker().await;
    app.register("TRUCK-21", "haul_truck").await;
    let p = app.publisher().await;
    let topic = telemetry_topic(TENANT, "TRUCK-21");
    for seq in 1..=50u64 {
        let m = message(
            "TRUCK-21",
            seq,
            Utc::now(),
            json!({"rpm": 1600.0 + seq as f64, "vibration": 2.5}),
        );
        p.publish(&topic, m.to_string().into_bytes(), "application/json", None)
            .await
            .unwrap();
    }
    // And one in protobuf, told apart by the content-type property.
    let metrics = [("rpm", 1700.0)];
    let pb = aurum_proto::OutgoingMessage {
        machine_id: "TRUCK-21",
        seq: 51,
        ts: Utc::now(),
        metrics: &metrics,
    };
    p.publish(
        &topic,
        pb.encode(aurum_proto::Encoding::Protobuf),
        "application/x-protobuf",
        None,
    )
    .await
    .unwrap();
    assert!(
        eventually(Duration::from_secs(20), || async {
            app.telemetry_rows().await == 51
        })
        .await,
        "rows: {}",
        app.telemetry_rows().await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn garbage_on_mqtt_is_quarantined_and_the_service_keeps_running() {
    let app = spawn_app_with_broker().await;
    app.register("TRUCK-21", "haul_truck").await;
    let p = app.publisher().await;
    let topic = telemetry_topic(TENANT, "TRUCK-21");
    let now = Utc::now();
    let valid = message("TRUCK-21", 1, now, json!({"rpm": 1600.0})).to_string();
    let cases: Vec<(String, Vec<u8>, &str)> = vec![
        (
            topic.clone(),
            b"\x00\xff garbage".to_vec(),
            "application/json",
        ),
        (
            topic.clone(),
            valid.as_bytes()[..valid.len() / 2].to_vec(),
            "application/json",
        ),
        (topic.clone(), vec![b'{'; 100_000], "application/json"),
        (
            topic.clone(),
            br#"{"machine_id":"TRUCK-21","seq":"1","ts":1,"metrics":[]}"#.to_vec(),
            "application/json",
        ),
        (
            topic.clone(),
            message("TRUCK-21", 2, now, json!({"rpm": "fast"}))
                .to_string()
                .into_bytes(),
            "application/json",
        ),
        (
            topic.clone(),
            message("MILL-3", 3, now, json!({"rpm": 10.0}))
                .to_string()
                .into_bytes(),
            "application/json",
        ),
        (topic.clone(), b"rpm=1600".to_vec(), "text/plain"),
        (
            topic.clone(),
            vec![0x0a, 0xff, 0xff],
            "application/x-protobuf",
        ),
        (
            "aurum/v1/demo/bad machine!/telemetry".into(),
            valid.clone().into_bytes(),
            "application/json",
        ),
        (
            telemetry_topic(TENANT, "GHOST-9"),
            message("GHOST-9", 1, now, json!({"rpm": 1.0}))
                .to_string()
                .into_bytes(),
            "application/json",
        ),
    ];
    for (t, payload, ct) in &cases {
        p.publish(t, payload.clone(), ct, None).await.unwrap();
    }
    p.publish(&topic, valid.into_bytes(), "application/json", None)
        .await
        .unwrap();

    assert!(
        eventually(Duration::from_secs(20), || async {
            app.telemetry_rows().await == 1
        })
        .await
    );
    assert!(
        eventually(Duration::from_secs(20), || async {
            app.quarantine_reasons().await.len() == cases.len()
        })
        .await,
        "{:?}",
        app.quarantine_reasons().await
    );
    let mut reasons = app.quarantine_reasons().await;
    reasons.sort();
    assert_eq!(
        reasons,
        vec![
            "invalid_topic",
            "machine_mismatch",
            "malformed_payload",
            "malformed_payload",
            "malformed_payload",
            "malformed_payload",
            "not_a_number",
            "payload_too_large",
            "unknown_machine",
            "unsupported_content_type",
        ]
    );
    assert!(
        app.wait_ready(Duration::from_secs(5)).await,
        "still serving"
    );
    // Undecodable payloads keep their bytes for inspection.
    let kept = app
        .db
        .count("SELECT count(*) FROM ingestion.quarantine WHERE payload IS NOT NULL")
        .await;
    assert_eq!(kept, cases.len() as i64);
}

/// `aurum_ingest_messages_received_total{source="mqtt"}` of one replica.
async fn received_over_mqtt(address: &str) -> u64 {
    let text = crate::service::metrics(address).await;
    aurum_testkit::metric_value(
        &text,
        "aurum_ingest_messages_received_total{source=\"mqtt\"}",
    )
    .unwrap_or(0.0) as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_split_the_stream_and_store_each_message_once() {
    const N: u64 = 1_000;
    // Replicas share the work through a shared-subscription group.
    let first = spawn_app_with(true, |c| c.ingest.shared_group = "ingestion".into()).await;
    // A second replica: same database, broker and group, its own client id and spool.
    let spool = tempfile::tempdir().unwrap();
    let mut config = crate::helpers::config_for(&first.db, first.broker.as_ref(), spool.path());
    config.mqtt.client_id = format!("{}-replica-2", config.mqtt.client_id);
    config.ingest.shared_group = "ingestion".into();
    let second = aurum_ingestion::Application::build(config, prometheus::Registry::new())
        .await
        .unwrap();
    let second_address = format!("http://127.0.0.1:{}", second.port());
    tokio::spawn(second.run_until_stopped());
    let ready = eventually(Duration::from_secs(20), || async {
        first
            .client
            .get(format!("{second_address}/readyz"))
            .send()
            .await
            .map(|r| r.status().is_success())
            .unwrap_or(false)
    })
    .await;
    assert!(ready);

    first.register("TRUCK-21", "haul_truck").await;
    let p = first.publisher().await;
    let topic = telemetry_topic(TENANT, "TRUCK-21");
    for seq in 1..=N {
        let m = message("TRUCK-21", seq, Utc::now(), json!({"rpm": 1600.0}));
        p.publish(&topic, m.to_string().into_bytes(), "application/json", None)
            .await
            .unwrap();
    }
    assert!(
        eventually(Duration::from_secs(30), || async {
            first.telemetry_rows().await == N as i64
        })
        .await,
        "rows: {}",
        first.telemetry_rows().await
    );
    let a = received_over_mqtt(&first.address).await;
    let b = received_over_mqtt(&second_address).await;
    assert_eq!(a + b, N, "each message went to exactly one replica");
    assert!(a > 0 && b > 0, "both replicas took a share: {a} and {b}");
}
