//! `Platform::start()`: the four service binaries as separate processes, configured the way
//! a deployment configures them (environment variables, secrets in files, an auth config
//! file), against a fresh database, a Mosquitto broker with per-device accounts and an OTLP
//! receiver of the test's own. Each process logs JSON at debug level to its own file.
//!
//! `Platform::start_with(Options)` serves the soak: the services reach the database through a
//! [`TcpProxy`] it can cut, log at a level of its choosing, and can be killed and started
//! again with the same command line and environment ([`Service::kill`], [`Service::respawn`]).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use aurum_testkit::{free_port, http_ready, Broker, OtlpReceiver, TcpProxy, TestDb};
use chrono::{DateTime, SecondsFormat, Utc};
use reqwest::Method;
use serde_json::{json, Value};

use crate::simulated::{cached, simulated_runs, trained};

pub const TENANT: &str = "acme";
pub const CONSOLE: &str = "ops-console";
const INGESTION_CLIENT: &str = "aurum-ingestion";
const SERVICES: [&str; 4] = [
    "aurum-auth",
    "aurum-prediction",
    "aurum-ingestion",
    "aurum-gateway",
];

/// One haul truck's telemetry message as a device sends it: healthy around 2.9 mm/s of
/// vibration and 88 °C, anomalous well above.
pub fn truck_reading(
    machine: &str,
    seq: u64,
    ts: DateTime<Utc>,
    vibration: f64,
    temperature: f64,
) -> Value {
    json!({
        "machine_id": machine,
        "seq": seq,
        "ts": ts.to_rfc3339_opts(SecondsFormat::Millis, true),
        "metrics": {
            "rpm": 1650.0 + (seq % 7) as f64,
            "temperature": temperature,
            "vibration": vibration,
            "fuel_rate_lh": 100.0,
            "speed_kmh": 32.0 + (seq % 4) as f64,
            "load_tons": if seq % 20 < 10 { 220.0 } else { 0.0 },
            "oil_pressure": 4.2 + (seq % 3) as f64 * 0.05,
        },
    })
}

/// Every secret the platform was given or handed out, by name: no log line may contain one.
#[derive(Debug, Default)]
pub struct Secrets(pub Vec<(String, String)>);

impl Secrets {
    fn fresh(&mut self, name: &str) -> String {
        let value = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        self.add(name, &value);
        value
    }

    pub fn add(&mut self, name: &str, value: &str) {
        self.0.push((name.to_owned(), value.to_owned()));
    }
}

/// How a service process is started, kept so that it can be started again the same way.
#[derive(Debug, Clone)]
struct Launch {
    program: PathBuf,
    args: Vec<String>,
    env: Vec<(String, String)>,
}

impl Launch {
    /// Starts the process, its stdout and stderr appended to `log`.
    fn spawn(&self, log: &Path) -> Child {
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("log file");
        let err = out.try_clone().expect("log file");
        Command::new(&self.program)
            .args(&self.args)
            .env_clear()
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.program.display()))
    }
}

/// One service process; stopped with SIGTERM (then killed) when dropped.
#[derive(Debug)]
pub struct Service {
    pub name: &'static str,
    pub url: String,
    pub log: PathBuf,
    child: Option<Child>,
    launch: Launch,
}

impl Service {
    /// The running process's id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// SIGKILL, as when the kernel or the node takes the process away: nothing is flushed.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the process again with the same arguments and environment (after [`kill`]
    /// or [`stop`]); its output goes on in the same log file.
    ///
    /// [`kill`]: Self::kill
    /// [`stop`]: Self::stop
    pub fn respawn(&mut self) {
        assert!(self.child.is_none(), "{} is still running", self.name);
        self.child = Some(self.launch.spawn(&self.log));
    }

    /// SIGTERM, then up to 20 s for a graceful exit (spans are flushed on the way out).
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        aurum_testkit::sigterm(child.id());
        for _ in 0..200 {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.stop();
    }
}

pub struct Platform {
    pub otlp: OtlpReceiver,
    pub client: reqwest::Client,
    pub secrets: Secrets,
    pub broker: Broker,
    pub services: Vec<Service>,
    /// The proxy between the services and the database, when [`Options::db_proxy`].
    pub db_proxy: Option<TcpProxy>,
    console_secret: String,
    db: TestDb,
    _dir: tempfile::TempDir,
}

/// What [`Platform::start_with`] changes from the deployment-like defaults.
#[derive(Debug, Clone)]
pub struct Options {
    /// The services reach the database through a [`TcpProxy`] (migrations go direct).
    pub db_proxy: bool,
    /// The services' `AURUM_TELEMETRY__LOG_LEVEL`.
    pub log_level: String,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            db_proxy: false,
            log_level: "debug,h2=info,hyper=info,hyper_util=info,tower=info,reqwest=info,tokio_postgres=info,opentelemetry_sdk=info".to_owned(),
        }
    }
}

/// The directory the workspace's binaries are built into: the test executable lives in its
/// `deps/` folder.
fn binary_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    exe.parent()
        .and_then(Path::parent)
        .map(Path::to_path_buf)
        .expect("target/<profile>/deps/<test>")
}

/// The service binaries, built first if this run has not built them (`cargo test -p
/// aurum-e2e` alone builds no other package's binaries; `make test` builds them all).
/// A release test (`cargo test --release`) builds and runs release binaries.
fn binaries() -> PathBuf {
    let dir = binary_dir();
    if SERVICES.iter().any(|s| !dir.join(s).is_file()) {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let mut build = Command::new(cargo);
        build.arg("build");
        if dir.file_name().is_some_and(|n| n == "release") {
            build.arg("--release");
        }
        for s in SERVICES {
            build.args(["-p", s]);
        }
        let status = build
            .current_dir(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
            .status()
            .expect("cargo build of the services");
        assert!(status.success(), "cargo build of the services failed");
    }
    dir
}

fn write_secret(dir: &Path, name: &str, value: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, value).expect("write a secret file");
    path
}

impl Platform {
    pub async fn start() -> Self {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(options: Options) -> Self {
        let otlp = OtlpReceiver::start().await;
        let db = TestDb::create().await;
        let broker = Broker::start_with_dynsec();
        let dir = tempfile::tempdir().expect("tempdir");
        let bin = binaries();
        let mut secrets = Secrets::default();

        let kek = secrets.fresh("key-encryption-key");
        let admin_password = secrets.fresh("bootstrap-admin-password");
        let console_secret = secrets.fresh("console-client-secret");
        let ingestion_secret = secrets.fresh("ingestion-client-secret");
        let (broker_user, broker_password) = broker.admin().expect("a dynamic-security broker");
        let (broker_user, broker_password) = (broker_user.to_owned(), broker_password.to_owned());
        secrets.add("broker-admin-password", &broker_password);
        let files = dir.path().join("secrets");
        std::fs::create_dir(&files).expect("secrets dir");
        let kek_file = write_secret(&files, "kek", &kek);
        let admin_file = write_secret(&files, "admin", &admin_password);
        let console_file = write_secret(&files, "console", &console_secret);
        let ingestion_file = write_secret(&files, "ingestion", &ingestion_secret);
        let broker_file = write_secret(&files, "broker", &broker_password);

        let model = cached("e2e-platform-model-v1.json", || {
            trained(&simulated_runs().0, "e2e-1")
                .to_json()
                .expect("model JSON")
        });
        let model_file = dir.path().join("model.json");
        std::fs::write(&model_file, model).expect("write the model");

        let db_settings = db.settings("aurumai_ingestion");
        let db_proxy = if options.db_proxy {
            Some(TcpProxy::start(format!("{}:{}", db_settings.host, db_settings.port)).await)
        } else {
            None
        };
        // Where the serving processes find the database; migrations go direct.
        let serve_db = match &db_proxy {
            Some(p) => ("127.0.0.1".to_owned(), p.port),
            None => (db_settings.host.clone(), db_settings.port),
        };
        let common = |role: &str, port: u16, (db_host, db_port): (String, u16)| {
            let mut env = vec![
                ("AURUM_PROFILE", "dev".to_owned()),
                ("AURUM_HTTP__HOST", "127.0.0.1".to_owned()),
                ("AURUM_HTTP__PORT", port.to_string()),
                ("AURUM_DATABASE__HOST", db_host),
                ("AURUM_DATABASE__PORT", db_port.to_string()),
                ("AURUM_DATABASE__NAME", db_settings.name.clone()),
                ("AURUM_DATABASE__USER", role.to_owned()),
                ("AURUM_DATABASE__SSLMODE", "disable".to_owned()),
                ("AURUM_TELEMETRY__LOG_FORMAT", "json".to_owned()),
                ("AURUM_TELEMETRY__LOG_LEVEL", options.log_level.clone()),
                // The standard variables, not the services' own settings.
                ("OTEL_EXPORTER_OTLP_ENDPOINT", otlp.endpoint().to_owned()),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf".to_owned()),
                ("OTEL_TRACES_SAMPLER", "parentbased_always_on".to_owned()),
                ("OTEL_BSP_SCHEDULE_DELAY", "200".to_owned()),
            ];
            if let Ok(path) = std::env::var("PATH") {
                env.push(("PATH", path));
            }
            env.into_iter()
                .map(|(k, v)| (k.to_owned(), v))
                .collect::<Vec<(String, String)>>()
        };
        let direct_db = (db_settings.host.clone(), db_settings.port);
        let run = |name: &'static str, args: &[&str], env: Vec<(String, String)>| {
            let log = dir.path().join(format!("{name}.log"));
            let launch = Launch {
                program: bin.join(name),
                args: args.iter().map(|a| (*a).to_owned()).collect(),
                env,
            };
            (launch.spawn(&log), log, launch)
        };

        // Migrations, as the chart's migration Job runs them: each service's `migrate`, as
        // the administrator, creates its own schema.
        for (name, role) in [
            ("aurum-ingestion", "aurumai_ingestion"),
            ("aurum-prediction", "aurumai_prediction"),
            ("aurum-auth", "aurumai_auth"),
            ("aurum-gateway", "aurumai_gateway"),
        ] {
            let mut env = common(role, free_port(), direct_db.clone());
            env.push((
                "AURUM_DATABASE__ADMIN_USER".into(),
                db_settings.admin_user.clone().expect("an admin user"),
            ));
            let (mut migrate, log, _) = run(name, &["migrate"], env);
            let status = migrate.wait().expect("migrate");
            assert!(
                status.success(),
                "{name} migrate failed: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }

        let client = reqwest::Client::new();
        let mut services = Vec::new();
        let mut start = |name: &'static str, env: Vec<(String, String)>, port: u16| {
            let (child, log, launch) = run(name, &["serve"], env);
            let url = format!("http://127.0.0.1:{port}");
            services.push(Service {
                name,
                url: url.clone(),
                log,
                child: Some(child),
                launch,
            });
            url
        };

        let auth_port = free_port();
        let auth_url = format!("http://127.0.0.1:{auth_port}");
        let auth_config = dir.path().join("auth.toml");
        std::fs::write(
            &auth_config,
            format!(
                r#"[auth]
issuer = "{auth_url}"

[auth.bootstrap_admin]
tenant = "{TENANT}"
username = "admin@{TENANT}"

[[auth.clients]]
client_id = "{CONSOLE}"
secret_file = "{console}"
grant_types = ["client_credentials"]
audiences = ["aurumai-api"]
tenant = "{TENANT}"
roles = ["admin"]

[[auth.clients]]
client_id = "{INGESTION_CLIENT}"
secret_file = "{ingestion}"
grant_types = ["client_credentials"]
audiences = ["aurumai-prediction"]

[devices.broker]
url = "{broker_url}"
client_id = "aurum-auth-e2e"
username = "{broker_user}"
keep_alive_s = 30
session_expiry_s = 0
"#,
                console = console_file.display(),
                ingestion = ingestion_file.display(),
                broker_url = broker.url(),
            ),
        )
        .expect("auth.toml");
        let mut env = common("aurumai_auth", auth_port, serve_db.clone());
        env.extend([
            ("AURUM_CONFIG".to_owned(), auth_config.display().to_string()),
            (
                "AURUM_AUTH__KEY_ENCRYPTION_KEY_FILE".to_owned(),
                kek_file.display().to_string(),
            ),
            (
                "AURUM_AUTH__BOOTSTRAP_ADMIN__PASSWORD_FILE".to_owned(),
                admin_file.display().to_string(),
            ),
            (
                "AURUM_DEVICES__BROKER__PASSWORD_FILE".to_owned(),
                broker_file.display().to_string(),
            ),
        ]);
        start("aurum-auth", env, auth_port);
        assert!(
            http_ready(&client, &auth_url, Duration::from_secs(60)).await,
            "auth did not become ready"
        );
        let issuer = ("AURUM_AUTH__ISSUER".to_owned(), auth_url.clone());

        let prediction_port = free_port();
        let mut env = common("aurumai_prediction", prediction_port, serve_db.clone());
        env.extend([
            issuer.clone(),
            (
                "AURUM_PREDICTION__BOOTSTRAP_MODEL".to_owned(),
                model_file.display().to_string(),
            ),
            // An anomalous prediction raises an alert at once: the trace shows it.
            (
                "AURUM_PREDICTION__ALERT_RAISE_AFTER".to_owned(),
                "1".to_owned(),
            ),
            (
                "AURUM_PREDICTION__ANOMALY_ALERT_THRESHOLD".to_owned(),
                "0.5".to_owned(),
            ),
        ]);
        let prediction_url = start("aurum-prediction", env, prediction_port);

        let ingestion_port = free_port();
        let mut env = common("aurumai_ingestion", ingestion_port, serve_db.clone());
        env.extend([
            issuer.clone(),
            ("AURUM_MQTT__URL".to_owned(), broker.url()),
            (
                "AURUM_MQTT__CLIENT_ID".to_owned(),
                "aurum-ingestion-e2e".to_owned(),
            ),
            ("AURUM_MQTT__USERNAME".to_owned(), broker_user.clone()),
            (
                "AURUM_MQTT__PASSWORD_FILE".to_owned(),
                broker_file.display().to_string(),
            ),
            (
                "AURUM_INGEST__SPOOL_DIR".to_owned(),
                dir.path().join("spool").display().to_string(),
            ),
            ("AURUM_INGEST__BATCH_MAX_WAIT_MS".to_owned(), "5".to_owned()),
            (
                "AURUM_FEATURES__PREDICTION_URL".to_owned(),
                prediction_url.clone(),
            ),
            ("AURUM_FEATURES__INTERVAL_S".to_owned(), "1".to_owned()),
            (
                "AURUM_FEATURES__CLIENT__TOKEN_URL".to_owned(),
                format!("{auth_url}/token"),
            ),
            (
                "AURUM_FEATURES__CLIENT__CLIENT_ID".to_owned(),
                INGESTION_CLIENT.to_owned(),
            ),
            (
                "AURUM_FEATURES__CLIENT__CLIENT_SECRET_FILE".to_owned(),
                ingestion_file.display().to_string(),
            ),
        ]);
        let ingestion_url = start("aurum-ingestion", env, ingestion_port);

        let gateway_port = free_port();
        let mut env = common("aurumai_gateway", gateway_port, serve_db.clone());
        env.extend([
            issuer,
            ("AURUM_UPSTREAMS__INGESTION__URL".to_owned(), ingestion_url),
            (
                "AURUM_UPSTREAMS__PREDICTION__URL".to_owned(),
                prediction_url,
            ),
            ("AURUM_UPSTREAMS__AUTH__URL".to_owned(), auth_url),
        ]);
        start("aurum-gateway", env, gateway_port);

        for s in &services {
            assert!(
                http_ready(&client, &s.url, Duration::from_secs(60)).await,
                "{} did not become ready: {}",
                s.name,
                std::fs::read_to_string(&s.log).unwrap_or_default()
            );
        }
        Self {
            otlp,
            client,
            secrets,
            broker,
            services,
            db_proxy,
            console_secret,
            db,
            _dir: dir,
        }
    }

    /// The platform's database, for assertions as the superuser.
    pub fn db(&self) -> &TestDb {
        &self.db
    }

    pub fn service_mut(&mut self, service: &str) -> &mut Service {
        self.services
            .iter_mut()
            .find(|s| s.name == service)
            .unwrap_or_else(|| panic!("no service {service}"))
    }

    /// Registers a machine through the gateway.
    pub async fn register_machine(&self, token: &str, id: &str, machine_type: &str) {
        let r = self
            .api(Method::POST, "/machines", token)
            .json(&json!({"id": id, "machine_type": machine_type, "site": "pit-a"}))
            .send()
            .await
            .expect("register a machine");
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
    }

    /// Provisions a device of `machine` through the gateway: its MQTT username and password
    /// (the password is added to the secrets that no log may contain).
    pub async fn provision_device(&mut self, token: &str, machine: &str) -> (String, String) {
        let r = self
            .api(Method::POST, "/devices", token)
            .json(&json!({ "machine_id": machine }))
            .send()
            .await
            .expect("provision a device");
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap_or_default());
        let device: Value = r.json().await.expect("device JSON");
        let username = device["username"].as_str().expect("username").to_owned();
        let password = device["password"].as_str().expect("password").to_owned();
        self.secrets.add("device-mqtt-password", &password);
        (username, password)
    }

    pub fn url(&self, service: &str) -> &str {
        self.services
            .iter()
            .find(|s| s.name == service)
            .map(|s| s.url.as_str())
            .unwrap_or_else(|| panic!("no service {service}"))
    }

    /// A tenant-admin access token of the operations console (client_credentials).
    pub async fn console_token(&mut self) -> String {
        let r = self
            .client
            .post(format!("{}/token", self.url("aurum-auth")))
            .basic_auth(CONSOLE, Some(&self.console_secret))
            .form(&[
                ("grant_type", "client_credentials"),
                ("audience", "aurumai-api"),
            ])
            .send()
            .await
            .expect("token request");
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.expect("token JSON");
        let token = body["access_token"]
            .as_str()
            .expect("access_token")
            .to_owned();
        self.secrets.add("console-access-token", &token);
        token
    }

    pub fn api(&self, method: reqwest::Method, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.client
            .request(
                method,
                format!("{}/api/v1{path}", self.url("aurum-gateway")),
            )
            .bearer_auth(token)
    }

    /// Stops every service (SIGTERM, newest first) so their logs and spans are complete.
    pub fn stop(&mut self) {
        for s in self.services.iter_mut().rev() {
            s.stop();
        }
    }
}
