//! `spawn_app()` and friends: each test gets its own database, spool and (when it needs one)
//! its own broker.

use std::time::Duration;

use aurum_config::MqttSettings;
use aurum_ingestion::{Application, IngestionConfig};
use aurum_mqtt::Publisher;
use aurum_testkit::{eventually, Broker, TestDb};
use chrono::{DateTime, SecondsFormat, Utc};
use serde_json::{json, Value};

pub const TENANT: &str = "demo";

pub struct TestApp {
    pub address: String,
    pub db: TestDb,
    pub broker: Option<Broker>,
    /// Kept so the spool directory lives as long as the app.
    pub _spool: tempfile::TempDir,
    pub client: reqwest::Client,
}

/// A configuration pointing at the test's database, broker (or none) and spool.
pub fn config_for(
    db: &TestDb,
    broker: Option<&Broker>,
    spool: &std::path::Path,
) -> IngestionConfig {
    let mut c = IngestionConfig::default();
    c.http.port = 0;
    c.database = db.settings("aurumai_ingestion");
    c.ingest.spool_dir = spool.to_owned();
    c.ingest.batch_max_wait_ms = 5;
    match broker {
        Some(b) => {
            c.mqtt.url = b.url();
            c.mqtt.client_id = format!("ingestion-{}", db.name);
        }
        None => c.ingest.mqtt_enabled = false,
    }
    c
}

/// `TEST_LOG=1 cargo test ...` shows the service's logs.
pub fn init_test_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
                .with_test_writer()
                .try_init();
        }
    });
}

pub async fn spawn_app() -> TestApp {
    spawn(false).await
}

pub async fn spawn_app_with_broker() -> TestApp {
    spawn(true).await
}

async fn spawn(with_broker: bool) -> TestApp {
    init_test_logs();
    let db = TestDb::create().await;
    let broker = with_broker.then(Broker::start);
    let spool = tempfile::tempdir().expect("spool dir");
    let config = config_for(&db, broker.as_ref(), spool.path());
    aurum_postgres::migrate(&config.database)
        .await
        .expect("migrate");
    let app = Application::build(config, prometheus::Registry::new())
        .await
        .expect("build app");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let t = TestApp {
        address,
        db,
        broker,
        _spool: spool,
        client: reqwest::Client::new(),
    };
    assert!(
        t.wait_ready(Duration::from_secs(20)).await,
        "service never became ready"
    );
    t
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        let client = self.client.clone();
        let url = self.url("/readyz");
        eventually(timeout, || {
            let client = client.clone();
            let url = url.clone();
            async move {
                client
                    .get(&url)
                    .send()
                    .await
                    .map(|r| r.status().is_success())
                    .unwrap_or(false)
            }
        })
        .await
    }

    pub async fn register(&self, id: &str, machine_type: &str) -> reqwest::Response {
        self.register_as(TENANT, id, machine_type).await
    }

    pub async fn register_as(
        &self,
        tenant: &str,
        id: &str,
        machine_type: &str,
    ) -> reqwest::Response {
        self.client
            .post(self.url("/v1/machines"))
            .header("X-Aurum-Tenant", tenant)
            .json(&json!({ "id": id, "machine_type": machine_type, "site": "pit-north" }))
            .send()
            .await
            .expect("register")
    }

    pub async fn post_batch(&self, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url("/v1/telemetry"))
            .header("X-Aurum-Tenant", TENANT)
            .json(body)
            .send()
            .await
            .expect("post telemetry")
    }

    pub async fn telemetry_rows(&self) -> i64 {
        self.db
            .count("SELECT count(*) FROM ingestion.telemetry")
            .await
    }

    pub async fn quarantine_reasons(&self) -> Vec<String> {
        self.db
            .client()
            .await
            .query("SELECT reason FROM ingestion.quarantine ORDER BY id", &[])
            .await
            .expect("quarantine")
            .iter()
            .map(|r| r.get(0))
            .collect()
    }

    pub fn mqtt_settings(&self, client_id: &str) -> MqttSettings {
        let mut s = MqttSettings::local(client_id);
        s.url = self.broker.as_ref().expect("a broker").url();
        s
    }

    pub async fn publisher(&self) -> Publisher {
        Publisher::connect(&self.mqtt_settings(&format!("pub-{}", self.db.name)), 100)
            .await
            .expect("publisher connects")
    }
}

/// A JSON message for `machine` at `ts`.
pub fn message(machine: &str, seq: u64, ts: DateTime<Utc>, metrics: Value) -> Value {
    json!({
        "machine_id": machine,
        "seq": seq,
        "ts": ts.to_rfc3339_opts(SecondsFormat::Millis, true),
        "metrics": metrics,
    })
}

/// Publishes, retrying until the broker acknowledges (it may be restarting).
pub async fn publish_until_acked(p: &Publisher, topic: &str, payload: Vec<u8>) {
    for _ in 0..600 {
        if p.publish(topic, payload.clone(), "application/json", None)
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the broker never acknowledged a message");
}
