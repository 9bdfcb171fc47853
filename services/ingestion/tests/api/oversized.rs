//! A device publishing huge messages cannot take ingestion down: the broker refuses packets over
//! its limit, ingestion refuses payloads over its own before copying or spooling them, and a
//! huge record an older version left in the spool is replayed without being loaded.

use std::time::Duration;

use aurum_domain::auth::DeviceGrant;
use aurum_domain::{MachineId, TenantId};
use aurum_ingestion::spool::Spool;
use aurum_mqtt::{telemetry_topic, DynsecBroker, Publisher};
use aurum_ports::auth::DeviceBroker;
use aurum_testkit::{eventually, Broker};
use chrono::Utc;
use secrecy::SecretString;
use serde_json::json;

use crate::helpers::{
    message, peak_rss_bytes, publish_until_acked, spawn_app_on, ProcessFixture, TENANT,
};

const MIB: usize = 1024 * 1024;
/// What a quarantine record keeps of a payload (docs/security.md).
const QUARANTINE_PREFIX: i32 = 4096;

/// The packet and queue limits of the demo broker (deploy/mosquitto/demo.conf), as lines for
/// a test broker's configuration: the test checks the shipped numbers, not copies of them.
fn demo_broker_limits() -> String {
    let conf = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/mosquitto/demo.conf"
    ))
    .unwrap();
    let limits: Vec<&str> = conf
        .lines()
        .filter(|l| l.starts_with("max_packet_size ") || l.starts_with("max_queued_bytes "))
        .collect();
    assert_eq!(limits.len(), 2, "demo.conf sets both limits: {limits:?}");
    limits.join("\n")
}

/// Bytes of every file in the spool directory.
fn spool_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap().len())
        .sum()
}

/// (reason, bytes of payload kept, detail) of every quarantine row.
async fn quarantine_rows(db: &aurum_testkit::TestDb) -> Vec<(String, Option<i32>, String)> {
    db.client()
        .await
        .query(
            "SELECT reason, octet_length(payload), detail FROM ingestion.quarantine ORDER BY id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect()
}

async fn rows(db: &aurum_testkit::TestDb) -> i64 {
    db.count("SELECT count(*) FROM ingestion.telemetry").await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mb_publish_with_a_device_login_is_refused_by_the_broker_and_ingestion_carries_on() {
    let broker = Broker::start_with_extra_config(true, &demo_broker_limits());
    let (user, password) = broker
        .admin()
        .map(|(u, p)| (u.to_owned(), p.to_owned()))
        .unwrap();
    DynsecBroker::new(
        broker.settings("aurum-auth-test", broker.admin()),
        Duration::from_secs(5),
    )
    .grant(
        &DeviceGrant {
            username: "dev-truck-21".into(),
            tenant: TenantId::parse(TENANT).unwrap(),
            machine: MachineId::parse("TRUCK-21").unwrap(),
        },
        &SecretString::from("truck-21-device-pass"),
    )
    .await
    .unwrap();
    let device_login = broker.settings(
        "dev-truck-21-client",
        Some(("dev-truck-21", "truck-21-device-pass")),
    );
    let app = spawn_app_on(broker, |c| {
        c.mqtt.username = Some(user);
        c.mqtt.password = Some(SecretString::from(password));
    })
    .await;
    app.register("TRUCK-21", "haul_truck").await;
    let device = Publisher::connect(&device_login, 10).await.unwrap();
    let topic = telemetry_topic(TENANT, "TRUCK-21");

    // The bound only keeps a broken broker from hanging the test; it says nothing about speed.
    let huge = vec![b' '; 100 * MIB];
    let outcome = tokio::time::timeout(
        Duration::from_secs(120),
        device.publish(&topic, huge, "application/json", None),
    )
    .await;
    assert!(
        matches!(outcome, Ok(Err(_))),
        "the broker must refuse the packet, not acknowledge it: {outcome:?}"
    );

    // The device reconnects by itself, and its next message is stored as usual.
    let m = message("TRUCK-21", 1, Utc::now(), json!({"rpm": 1600.0}));
    publish_until_acked(&device, &topic, m.to_string().into_bytes()).await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            app.telemetry_rows().await == 1
        })
        .await,
        "rows: {}",
        app.telemetry_rows().await
    );
    // The huge message never reached ingestion.
    assert_eq!(
        app.metric("aurum_ingest_messages_received_total{source=\"mqtt\"}")
            .await,
        1.0
    );
    assert!(app.quarantine_reasons().await.is_empty());
    assert!(app.wait_ready(Duration::from_secs(5)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_broker_limit_an_oversized_payload_is_quarantined_unspooled_and_a_restart_succeeds(
) {
    const PAYLOAD: usize = 20 * MIB;
    crate::helpers::init_test_logs();
    // This broker has no max_packet_size: ingestion's own check is all there is.
    let (f, mut first) = ProcessFixture::start().await;
    f.register("TRUCK-21", "haul_truck").await;
    let p = f.publisher().await;
    let topic = telemetry_topic(TENANT, "TRUCK-21");
    let pid = first.child.id();
    let peak_before = peak_rss_bytes(pid);

    p.publish(&topic, vec![b' '; PAYLOAD], "application/json", None)
        .await
        .unwrap();
    let m = message("TRUCK-21", 1, Utc::now(), json!({"rpm": 1600.0}));
    p.publish(&topic, m.to_string().into_bytes(), "application/json", None)
        .await
        .unwrap();
    assert!(
        eventually(Duration::from_secs(30), || async {
            rows(&f.db).await == 1 && quarantine_rows(&f.db).await.len() == 1
        })
        .await,
        "rows: {}; quarantine: {:?}; log:\n{}",
        rows(&f.db).await,
        quarantine_rows(&f.db).await,
        f.log_text()
    );

    let growth = peak_rss_bytes(pid).saturating_sub(peak_before);
    // Shown with TEST_LOG=1.
    tracing::info!(
        peak_before_mib = peak_before / MIB as u64,
        growth_mib = growth / MIB as u64,
        payload_mib = PAYLOAD / MIB,
        "peak RSS while an oversized payload is refused"
    );
    // The MQTT client library holds a received packet up to three times while it hands it
    // over (its socket buffer, its own copy of the message, the copy it gives the callback);
    // ingestion adds none. Copying and spooling it, as before, took three more.
    assert!(
        growth < 4 * PAYLOAD as u64,
        "peak RSS grew by {growth} bytes for a {PAYLOAD}-byte payload"
    );
    let quarantine = quarantine_rows(&f.db).await;
    let (reason, kept, detail) = &quarantine[0];
    assert_eq!(reason, "payload_too_large");
    assert_eq!(
        *kept,
        Some(QUARANTINE_PREFIX),
        "only the first bytes are kept"
    );
    assert!(detail.contains(&PAYLOAD.to_string()), "{detail}");
    let metrics = crate::service::metrics(&format!("http://127.0.0.1:{}", f.port)).await;
    assert_eq!(
        aurum_testkit::metric_value(
            &metrics,
            "aurum_ingest_rejected_total{reason=\"payload_too_large\"}"
        ),
        Some(1.0)
    );
    let spooled = spool_bytes(&f.spool_dir());
    assert!(spooled < MIB as u64, "the spool holds {spooled} bytes");

    // A crash, and a start on the same spool: ready, nothing quarantined twice, and the next
    // message stored.
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    let mut second = f.spawn().await;
    let m = message("TRUCK-21", 2, Utc::now(), json!({"rpm": 1610.0}));
    publish_until_acked(&p, &topic, m.to_string().into_bytes()).await;
    let stored = eventually(Duration::from_secs(30), || async { rows(&f.db).await == 2 }).await;
    let quarantined = quarantine_rows(&f.db).await.len();
    let spooled = spool_bytes(&f.spool_dir());
    second.child.kill().ok();
    second.child.wait().ok();
    assert!(
        stored,
        "rows: {}; log:\n{}",
        rows(&f.db).await,
        f.log_text()
    );
    assert_eq!(quarantined, 1);
    assert!(spooled < MIB as u64, "the spool holds {spooled} bytes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mb_record_an_older_version_spooled_is_quarantined_at_start_without_being_loaded() {
    const PAYLOAD: usize = 100 * MIB;
    crate::helpers::init_test_logs();
    let (f, mut first) = ProcessFixture::start().await;
    f.register("TRUCK-21", "haul_truck").await;
    first.child.kill().unwrap();
    first.child.wait().unwrap();
    // What a version that spooled before checking the size left behind when it died: the huge
    // message, and a good one received after it.
    let topic = telemetry_topic(TENANT, "TRUCK-21");
    {
        let (mut spool, _) = Spool::open(&f.spool_dir(), 0, usize::MAX).unwrap();
        spool
            .append(&topic, Some("application/json"), None, &vec![b' '; PAYLOAD])
            .1
            .unwrap();
        let m = message("TRUCK-21", 1, Utc::now(), json!({"rpm": 1600.0})).to_string();
        spool
            .append(&topic, Some("application/json"), None, m.as_bytes())
            .1
            .unwrap();
    }
    assert!(spool_bytes(&f.spool_dir()) > PAYLOAD as u64);

    // The start succeeds (spawn waits for /readyz).
    let mut second = f.spawn().await;
    let done = eventually(Duration::from_secs(30), || async {
        rows(&f.db).await == 1 && spool_bytes(&f.spool_dir()) < MIB as u64
    })
    .await;
    let peak = peak_rss_bytes(second.child.id());
    let quarantine = quarantine_rows(&f.db).await;
    second.child.kill().ok();
    second.child.wait().ok();
    assert!(
        done,
        "rows: {}; spool: {} bytes; log:\n{}",
        rows(&f.db).await,
        spool_bytes(&f.spool_dir()),
        f.log_text()
    );
    tracing::info!(
        peak_mib = peak / MIB as u64,
        record_mib = PAYLOAD / MIB,
        "peak RSS replaying an oversized record"
    );
    assert!(
        peak < PAYLOAD as u64,
        "peak RSS {peak} bytes: the record was loaded"
    );
    assert_eq!(quarantine.len(), 1, "{quarantine:?}");
    assert_eq!(quarantine[0].0, "payload_too_large");
    assert_eq!(quarantine[0].1, Some(QUARANTINE_PREFIX));
}
