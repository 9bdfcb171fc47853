//! `spawn_app()` and friends: each test gets its own database, spool and (when it needs one)
//! its own broker.

use std::process::{Child, Stdio};
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

pub use aurum_testkit::init_test_logs;

pub async fn spawn_app() -> TestApp {
    spawn(None, |_| {}).await
}

pub async fn spawn_app_with_broker() -> TestApp {
    spawn(Some(Broker::start()), |_| {}).await
}

/// `spawn_app` (or with a broker), with the configuration adjusted by `configure`.
pub async fn spawn_app_with(
    with_broker: bool,
    configure: impl FnOnce(&mut IngestionConfig),
) -> TestApp {
    spawn(with_broker.then(Broker::start), configure).await
}

/// The app verifying every token against `issuer` (no broker): the production set-up, where
/// the tenant and the caller come from the token, not from headers.
pub async fn spawn_app_with_auth(issuer: &aurum_authn::testing::TestIssuer) -> TestApp {
    let iss = issuer.iss();
    spawn_app_with(false, move |c| {
        c.auth = Some(aurum_config::TokenSettings {
            issuer: iss,
            jwks_url: None,
            audiences: vec![],
            leeway_s: 5,
        });
    })
    .await
}

/// The app subscribed to a broker the test configured itself.
pub async fn spawn_app_on(broker: Broker, configure: impl FnOnce(&mut IngestionConfig)) -> TestApp {
    spawn(Some(broker), configure).await
}

async fn spawn(broker: Option<Broker>, configure: impl FnOnce(&mut IngestionConfig)) -> TestApp {
    init_test_logs();
    let db = TestDb::create().await;
    let spool = tempfile::tempdir().expect("spool dir");
    let mut config = config_for(&db, broker.as_ref(), spool.path());
    configure(&mut config);
    aurum_postgres::ingestion::migrate(&config.database)
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
        aurum_testkit::http_ready(&self.client, &self.address, timeout).await
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

    /// The value of one series on `/metrics`, e.g. `aurum_features_dropped_total{reason="queue_full"}`;
    /// 0 when absent.
    pub async fn metric(&self, series: &str) -> f64 {
        let text = self
            .client
            .get(self.url("/metrics"))
            .send()
            .await
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics text");
        text.lines()
            .filter(|l| !l.starts_with('#'))
            .find_map(|l| {
                let (name, value) = l.rsplit_once(' ')?;
                (name == series).then(|| value.parse::<f64>().ok())?
            })
            .unwrap_or(0.0)
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

/// The service as a separate process, so a test can SIGKILL it.
pub struct Process {
    pub child: Child,
}

pub fn spawn_binary(
    db: &TestDb,
    broker: &Broker,
    spool: &std::path::Path,
    port: u16,
    log: &std::path::Path,
) -> Process {
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(log)
        .unwrap();
    let child =
        crate::service::service_command(db, broker, spool, port, &format!("ingestion-{}", db.name))
            // A long batch window keeps many received messages uncommitted at any moment, so
            // the kill lands while some are in flight.
            .env("AURUM_INGEST__BATCH_MAX_WAIT_MS", "300")
            .env("AURUM_TELEMETRY__LOG_FORMAT", "json")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .stdin(Stdio::null())
            .spawn()
            .expect("start aurum-ingestion");
    Process { child }
}

pub async fn ready(port: u16) -> bool {
    let url = format!("http://127.0.0.1:{port}/readyz");
    eventually(Duration::from_secs(30), || {
        let url = url.clone();
        async move {
            reqwest::get(&url)
                .await
                .map(|r| r.status().is_success())
                .unwrap_or(false)
        }
    })
    .await
}

/// The service as a process of its own (so a test can signal it), with its database, broker,
/// spool and log file.
pub struct ProcessFixture {
    pub db: TestDb,
    pub broker: Broker,
    pub port: u16,
    dir: tempfile::TempDir,
}

impl ProcessFixture {
    /// Creates the database and broker, migrates, and starts the first process.
    pub async fn start() -> (Self, Process) {
        let f = Self::create().await;
        let p = f.spawn().await;
        (f, p)
    }

    /// Creates the database and broker and migrates; no process runs yet.
    pub async fn create() -> Self {
        let db = TestDb::create().await;
        let broker = Broker::start();
        aurum_postgres::ingestion::migrate(&db.settings("aurumai_ingestion"))
            .await
            .expect("migrate");
        Self {
            db,
            broker,
            port: aurum_testkit::free_port(),
            dir: tempfile::tempdir().expect("tempdir"),
        }
    }

    /// The spool directory every process of the fixture uses.
    pub fn spool_dir(&self) -> std::path::PathBuf {
        self.dir.path().join("spool")
    }

    /// Starts a process on the fixture's port, spool and log, and waits until it is ready.
    pub async fn spawn(&self) -> Process {
        let p = spawn_binary(
            &self.db,
            &self.broker,
            &self.spool_dir(),
            self.port,
            &self.log(),
        );
        assert!(
            ready(self.port).await,
            "service not ready; log:\n{}",
            self.log_text()
        );
        p
    }

    pub fn log(&self) -> std::path::PathBuf {
        self.dir.path().join("service.log")
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(self.log()).unwrap_or_default()
    }

    pub async fn register(&self, id: &str, machine_type: &str) {
        let r = reqwest::Client::new()
            .post(format!("http://127.0.0.1:{}/v1/machines", self.port))
            .header("X-Aurum-Tenant", TENANT)
            .json(&json!({ "id": id, "machine_type": machine_type }))
            .send()
            .await
            .expect("register");
        assert_eq!(r.status(), 201);
    }

    pub async fn publisher(&self) -> Publisher {
        let mut settings = MqttSettings::local(&format!("pub-{}", self.db.name));
        settings.url = self.broker.url();
        Publisher::connect(&settings, 100)
            .await
            .expect("publisher connects")
    }

    pub async fn rows(&self) -> i64 {
        self.db
            .count("SELECT count(*) FROM ingestion.telemetry")
            .await
    }
}

/// The peak resident memory of process `pid` so far (`VmHWM`), in bytes.
pub fn peak_rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmHWM in /proc status")
        * 1024
}
