//! `spawn_app()` and the fixture model: each test gets its own database; the model and
//! sample feature vectors are trained once per build and cached in the target directory.

use std::time::Duration;

use aurum_domain::{FeatureVector, MachineType};
use aurum_models::ModelArtifact;
use aurum_prediction::{Application, PredictionConfig};
use aurum_testkit::TestDb;

use crate::simulated::{cached, simulated_runs, trained};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

pub const TENANT: &str = "demo";
pub const PLANNER: &str = "planner@demo";

/// A trained model and feature vectors of each machine type far from and close to a
/// failure, from held-out simulated runs.
#[derive(Debug, Serialize, Deserialize)]
pub struct Fixture {
    pub model: Vec<u8>,
    pub healthy: Vec<(MachineType, FeatureVector)>,
    pub failing: Vec<(MachineType, FeatureVector)>,
}

fn build_fixture() -> Fixture {
    let (train_set, test_set) = simulated_runs();
    let artifact = trained(&train_set, "fixture-1");
    let pick = |failing: bool| -> Vec<(MachineType, FeatureVector)> {
        MachineType::ALL
            .iter()
            .map(|t| {
                let sample = test_set
                    .samples
                    .iter()
                    .rev()
                    .filter(|s| s.machine_type == *t && s.hours_since_run_start > 12.0)
                    .find(|s| {
                        let p = artifact.score(*t, &s.features).unwrap().failure_probability;
                        let threshold = artifact.alert_threshold(*t).unwrap();
                        if failing {
                            s.time_to_failure_h > 0.0 && s.time_to_failure_h < 24.0 && p > threshold
                        } else {
                            s.time_to_failure_h > 300.0 && p < 0.5 * threshold
                        }
                    })
                    .expect("a sample of each kind");
                (*t, sample.features.clone())
            })
            .collect()
    };
    Fixture {
        healthy: pick(false),
        failing: pick(true),
        model: artifact.to_json().unwrap(),
    }
}

/// The fixture, built by the first test that needs it and read from the cache after.
pub fn fixture() -> &'static Fixture {
    static FIXTURE: std::sync::OnceLock<Fixture> = std::sync::OnceLock::new();
    FIXTURE.get_or_init(|| cached("prediction-fixture-v2.json", build_fixture))
}

/// The fixture model under another version (re-signed), for registry tests.
pub fn model_as_version(version: &str) -> Vec<u8> {
    let mut artifact = ModelArtifact::from_json(&fixture().model).unwrap();
    artifact.version = version.into();
    artifact.to_json().unwrap()
}

pub struct TestApp {
    pub address: String,
    pub db: TestDb,
    pub client: reqwest::Client,
}

pub fn config_for(db: &TestDb) -> PredictionConfig {
    let mut c = PredictionConfig::default();
    c.http.port = 0;
    c.database = db.settings("aurumai_prediction");
    c.prediction.model_poll_s = 1;
    c.http.body_limit_bytes = 16 * 1024 * 1024;
    c
}

pub use aurum_testkit::init_test_logs;

/// A service on a fresh database with the fixture model registered and active.
pub async fn spawn_app() -> TestApp {
    let app = spawn_app_without_model().await;
    let version = app.upload_model(&fixture().model).await;
    app.activate(&version).await.error_for_status().unwrap();
    app
}

pub async fn spawn_app_without_model() -> TestApp {
    init_test_logs();
    let db = TestDb::create().await;
    let config = config_for(&db);
    aurum_postgres::prediction::migrate(&config.database)
        .await
        .expect("migrate");
    let address = start(&db).await;
    TestApp {
        address,
        db,
        client: reqwest::Client::new(),
    }
}

/// Starts a replica on `db` and returns its address.
pub async fn start(db: &TestDb) -> String {
    let app = Application::build(config_for(db), prometheus::Registry::new())
        .await
        .expect("build app");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    address
}

/// One machine's entry of a feature batch.
pub fn vector(machine: &str, t: MachineType, features: &FeatureVector) -> Value {
    json!({
        "tenant_id": TENANT,
        "machine_id": machine,
        "machine_type": t,
        "site_id": "pit-a",
        "features": features,
    })
}

/// The fixture's vector of type `t`, healthy or failing, at `window_end`.
pub fn sample(t: MachineType, failing: bool, window_end: DateTime<Utc>) -> FeatureVector {
    let set = if failing {
        &fixture().failing
    } else {
        &fixture().healthy
    };
    let mut f = set.iter().find(|(ty, _)| *ty == t).unwrap().1.clone();
    f.window_end = window_end;
    f
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub async fn wait_ready(&self, timeout: Duration) -> bool {
        aurum_testkit::http_ready(&self.client, &self.address, timeout).await
    }

    pub async fn upload_model(&self, bytes: &[u8]) -> String {
        let r = self
            .client
            .post(self.url("/v1/models"))
            .header("content-type", "application/json")
            .body(bytes.to_vec())
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
        r.json::<Value>().await.unwrap()["version"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn activate(&self, version: &str) -> reqwest::Response {
        self.client
            .post(self.url(&format!("/v1/models/{version}/activate")))
            .header("x-aurum-user", "ml-engineer@demo")
            .send()
            .await
            .unwrap()
    }

    pub async fn post_features(&self, vectors: Vec<Value>) -> reqwest::Response {
        self.client
            .post(self.url("/v1/features"))
            .json(&json!({ "vectors": vectors }))
            .send()
            .await
            .unwrap()
    }

    pub async fn get_as(&self, tenant: &str, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .header("x-aurum-tenant", tenant)
            .send()
            .await
            .unwrap()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.get_as(TENANT, path).await
    }

    pub async fn post_as(
        &self,
        tenant: &str,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut r = self
            .client
            .post(self.url(path))
            .header("x-aurum-tenant", tenant)
            .header("x-aurum-user", PLANNER);
        if let Some(b) = body {
            r = r.json(&b);
        }
        r.send().await.unwrap()
    }

    pub async fn alerts(&self, query: &str) -> Vec<Value> {
        let r = self.get(&format!("/v1/alerts{query}")).await;
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()["alerts"]
            .as_array()
            .unwrap()
            .clone()
    }
}
