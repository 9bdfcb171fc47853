//! Nothing published is lost, and nothing is stored twice, when the service is killed, the
//! broker restarts, or the database goes away for a while.

use std::time::Duration;

use aurum_mqtt::telemetry_topic;
use aurum_testkit::{eventually, Broker, TcpProxy, TestDb};
use chrono::Utc;
use serde_json::json;

use crate::helpers::{
    config_for, message, publish_until_acked, spawn_app_with_broker, ProcessFixture, TestApp,
    TENANT,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sigkilled_service_loses_nothing_and_duplicates_nothing() {
    const N: u64 = 3_000;
    let (f, mut first) = ProcessFixture::start().await;
    f.register("TRUCK-21", "haul_truck").await;
    let publisher = f.publisher().await;
    let topic = telemetry_topic(TENANT, "TRUCK-21");
    let publishing = tokio::spawn(async move {
        for seq in 1..=N {
            let m = message(
                "TRUCK-21",
                seq,
                Utc::now(),
                json!({"rpm": 1600.0, "vibration": 2.0}),
            );
            publish_until_acked(&publisher, &topic, m.to_string().into_bytes()).await;
            if seq % 100 == 0 {
                tokio::time::sleep(Duration::from_millis(30)).await;
            }
        }
    });

    // Kill mid-stream, once rows are flowing.
    assert!(eventually(Duration::from_secs(20), || async { f.rows().await > 300 }).await);
    first.child.kill().unwrap(); // SIGKILL
    first.child.wait().unwrap();
    assert!(
        f.rows().await < N as i64,
        "the kill came too late to prove anything"
    );
    tokio::time::sleep(Duration::from_millis(500)).await;

    let mut second = f.spawn().await;
    publishing.await.unwrap();
    let all = eventually(Duration::from_secs(60), || async {
        f.rows().await == N as i64
    })
    .await;
    let rows = f.rows().await;
    let distinct =
        f.db.count("SELECT count(DISTINCT seq) FROM ingestion.telemetry")
            .await;
    second.child.kill().ok();
    second.child.wait().ok();
    assert!(
        all,
        "{rows} of {N} rows after the restart; log:\n{}",
        f.log_text()
    );
    assert_eq!(distinct, N as i64);
    assert_eq!(
        f.db.count("SELECT count(*) FROM ingestion.quarantine")
            .await,
        0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broker_restart_mid_stream_loses_nothing() {
    const N: u64 = 2_000;
    let mut app: TestApp = spawn_app_with_broker().await;
    app.register("MILL-3", "grinding_mill").await;
    let topic = telemetry_topic(TENANT, "MILL-3");
    let p = app.publisher().await;
    for seq in 1..=N / 2 {
        let m = message("MILL-3", seq, Utc::now(), json!({"rpm": 12.0}));
        publish_until_acked(&p, &topic, m.to_string().into_bytes()).await;
    }
    app.broker.as_mut().unwrap().restart();
    for seq in N / 2 + 1..=N {
        let m = message("MILL-3", seq, Utc::now(), json!({"rpm": 12.0}));
        publish_until_acked(&p, &topic, m.to_string().into_bytes()).await;
    }
    assert!(
        eventually(Duration::from_secs(60), || async {
            app.telemetry_rows().await == N as i64
        })
        .await,
        "rows: {}",
        app.telemetry_rows().await
    );
    assert!(app.wait_ready(Duration::from_secs(10)).await);
}

/// Devices often reconnect to a restarted broker before ingestion does. Mosquitto 2.0 does not
/// restore a persistent session's shared subscription from its saved state, so with one the
/// broker acknowledged what they published in that gap and dropped it; ingestion's plain
/// subscription (the default, `ingest.shared_group` empty) is restored and queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_devices_publish_before_ingestion_is_back_on_a_restarted_broker_is_kept() {
    const N: u64 = 200;
    let mut app: TestApp = spawn_app_with_broker().await;
    app.register("MILL-4", "grinding_mill").await;
    let topic = telemetry_topic(TENANT, "MILL-4");
    let first = app.publisher().await;
    let m = message("MILL-4", 1, Utc::now(), json!({"rpm": 12.0}));
    publish_until_acked(&first, &topic, m.to_string().into_bytes()).await;
    assert!(
        eventually(Duration::from_secs(20), || async {
            app.telemetry_rows().await == 1
        })
        .await
    );

    // Down long enough for ingestion's reconnect backoff (250 ms doubling to 5 s) to pass 2 s:
    // its next attempt comes well after the device below has published everything.
    drop(first);
    let broker = app.broker.as_mut().unwrap();
    broker.stop();
    tokio::time::sleep(Duration::from_secs(4)).await;
    broker.start_again();
    let device = app.publisher().await;
    for seq in 2..=N {
        let m = message("MILL-4", seq, Utc::now(), json!({"rpm": 12.0}));
        publish_until_acked(&device, &topic, m.to_string().into_bytes()).await;
    }

    assert!(
        eventually(Duration::from_secs(60), || async {
            app.telemetry_rows().await == N as i64
        })
        .await,
        "rows: {} of {N}",
        app.telemetry_rows().await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_reported_and_ridden_out() {
    const N: u64 = 500;
    crate::helpers::init_test_logs();
    let db = TestDb::create().await;
    let broker = Broker::start();
    let spool = tempfile::tempdir().unwrap();
    let mut config = config_for(&db, Some(&broker), spool.path());
    aurum_postgres::ingestion::migrate(&config.database)
        .await
        .unwrap();
    let proxy = TcpProxy::start(format!("{}:{}", config.database.host, config.database.port)).await;
    config.database.port = proxy.port;
    let app = aurum_ingestion::Application::build(config, prometheus::Registry::new())
        .await
        .unwrap();
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let t = TestApp {
        address,
        db,
        broker: Some(broker),
        _spool: spool,
        client: reqwest::Client::new(),
    };
    assert!(t.wait_ready(Duration::from_secs(20)).await);
    assert_eq!(
        t.register("BOILER-7", "industrial_boiler").await.status(),
        201
    );
    // Warm the machine cache: lookups need the database too.
    let r = t
        .post_batch(&json!({"messages": [message("BOILER-7", 1, Utc::now(), json!({"temperature": 400.0}))]}))
        .await;
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["results"][0]["status"], "stored", "{body}");

    proxy.cut();
    let not_ready = eventually(Duration::from_secs(15), || async {
        t.client
            .get(t.url("/readyz"))
            .send()
            .await
            .map(|r| r.status() == 503)
            .unwrap_or(false)
    })
    .await;
    assert!(not_ready, "/readyz must report the database down");

    let p = t.publisher().await;
    let topic = telemetry_topic(TENANT, "BOILER-7");
    for seq in 2..=N + 1 {
        let m = message("BOILER-7", seq, Utc::now(), json!({"temperature": 400.0}));
        publish_until_acked(&p, &topic, m.to_string().into_bytes()).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        t.telemetry_rows().await,
        1,
        "nothing can be written during the outage"
    );

    proxy.restore();
    assert!(
        eventually(Duration::from_secs(60), || async {
            t.telemetry_rows().await == N as i64 + 1
        })
        .await,
        "rows: {}",
        t.telemetry_rows().await
    );
    assert!(t.wait_ready(Duration::from_secs(20)).await);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_what_was_received_and_exits_cleanly() {
    const N: u64 = 2_000;
    let (f, mut first) = ProcessFixture::start().await;
    f.register("MILL-3", "grinding_mill").await;
    let publisher = f.publisher().await;
    let topic = telemetry_topic(TENANT, "MILL-3");
    for seq in 1..=N / 2 {
        let m = message("MILL-3", seq, Utc::now(), json!({"rpm": 12.0}));
        publish_until_acked(&publisher, &topic, m.to_string().into_bytes()).await;
    }
    assert!(aurum_testkit::sigterm(first.child.id()));
    // The rest arrives while the service is stopping or gone: the broker queues it.
    for seq in N / 2 + 1..=N {
        let m = message("MILL-3", seq, Utc::now(), json!({"rpm": 12.0}));
        publish_until_acked(&publisher, &topic, m.to_string().into_bytes()).await;
    }
    let exit = first.child.wait().unwrap();
    assert!(
        exit.success(),
        "SIGTERM must end the service cleanly: {exit:?}"
    );
    assert!(f.log_text().contains("shutting down"), "{}", f.log_text());

    let mut second = f.spawn().await;
    let all = eventually(Duration::from_secs(30), || async {
        f.rows().await == N as i64
    })
    .await;
    second.child.kill().ok();
    second.child.wait().ok();
    assert!(all, "rows: {}", f.rows().await);
    assert!(
        !f.log_text().contains("replaying spooled messages"),
        "a clean stop leaves nothing to replay"
    );
}
