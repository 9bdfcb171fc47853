//! The whole platform with no stand-in: the real auth service issues the tokens; the gateway
//! verifies them and routes; ingestion and prediction verify them again; ingestion streams
//! features to prediction with its own service token (client_credentials, audience-bound).

use std::time::Duration;

use aurum_auth::config::{BootstrapAdmin, SeedClient};
use aurum_gateway::{Application as Gateway, GatewayConfig};
use aurum_testkit::{eventually, TestDb};
use chrono::{SecondsFormat, TimeDelta, Utc};
use secrecy::SecretString;
use serde_json::{json, Value};

use crate::simulated::{cached, simulated_runs, trained};

const TENANT: &str = "acme";
const CONSOLE: &str = "ops-console";
const CONSOLE_SECRET: &str = "ops-console-secret-0123456789abcdef";
const INGESTION_CLIENT: &str = "aurum-ingestion";
const INGESTION_SECRET: &str = "ingestion-client-secret-0123456789ab";

fn client(
    id: &str,
    secret: &str,
    audiences: &[&str],
    tenant: Option<&str>,
    roles: &[&str],
) -> SeedClient {
    SeedClient {
        client_id: id.into(),
        secret: Some(SecretString::from(secret.to_owned())),
        secret_file: None,
        name: None,
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        grant_types: vec!["client_credentials".into()],
        audiences: audiences.iter().map(|a| (*a).to_owned()).collect(),
        tenant: tenant.map(str::to_owned),
        roles: roles.iter().map(|r| (*r).to_owned()).collect(),
    }
}

/// Runs a built service in the background; its base URL.
fn serve<F>(port: u16, run: F) -> String
where
    F: std::future::Future + Send + 'static,
    F::Output: Send + 'static,
{
    tokio::spawn(run);
    format!("http://127.0.0.1:{port}")
}

struct Platform {
    ingestion: String,
    prediction: String,
    gateway: String,
    auth: String,
    client: reqwest::Client,
    _db: TestDb,
    _dir: tempfile::TempDir,
}

impl Platform {
    async fn start() -> Self {
        crate::helpers::init_test_logs();
        let db = TestDb::create().await;
        crate::helpers::migrate_all(&db).await;
        let dir = tempfile::tempdir().unwrap();

        // The OpenID provider, with an operations console (tenant admin) and ingestion's
        // service client.
        let auth_port = aurum_testkit::free_port();
        let auth_url = format!("http://127.0.0.1:{auth_port}");
        let mut a = aurum_auth::AuthConfig::default();
        a.http.port = auth_port;
        a.database = db.settings("aurumai_auth");
        a.auth.issuer = auth_url.clone();
        a.auth.bootstrap_admin = Some(BootstrapAdmin {
            tenant: TENANT.into(),
            username: "admin@acme".into(),
            password: SecretString::from("an-admin-password-1234".to_owned()),
            platform_admin: false,
        });
        a.auth.clients = vec![
            client(
                CONSOLE,
                CONSOLE_SECRET,
                &["aurumai-api"],
                Some(TENANT),
                &["admin"],
            ),
            client(
                INGESTION_CLIENT,
                INGESTION_SECRET,
                &["aurumai-prediction"],
                None,
                &[],
            ),
        ];
        let app = aurum_auth::Application::build(a, prometheus::Registry::new())
            .await
            .unwrap();
        let auth = serve(app.port(), app.run_until_stopped());
        let verify = aurum_config::TokenSettings {
            issuer: auth_url.clone(),
            jwks_url: None,
            audiences: vec![],
            leeway_s: 5,
        };

        // Prediction with a model trained on simulated runs.
        let model = cached("gateway-platform-model-v1.json", || {
            trained(&simulated_runs().0, "platform-1")
                .to_json()
                .unwrap()
        });
        let model_file = dir.path().join("model.json");
        std::fs::write(&model_file, model).unwrap();
        let mut p = aurum_prediction::PredictionConfig::default();
        p.http.port = 0;
        p.database = db.settings("aurumai_prediction");
        p.prediction.bootstrap_model = Some(model_file);
        p.auth = Some(verify.clone());
        let app = aurum_prediction::Application::build(p, prometheus::Registry::new())
            .await
            .unwrap();
        let prediction = serve(app.port(), app.run_until_stopped());

        let mut i = aurum_ingestion::IngestionConfig::default();
        i.http.port = 0;
        i.database = db.settings("aurumai_ingestion");
        i.ingest.spool_dir = dir.path().join("spool");
        i.ingest.mqtt_enabled = false;
        i.ingest.batch_max_wait_ms = 5;
        i.features.prediction_url = prediction.clone();
        i.features.interval_s = 1;
        i.features.client = Some(aurum_config::ServiceClientSettings {
            token_url: format!("{auth_url}/token"),
            client_id: INGESTION_CLIENT.into(),
            client_secret: SecretString::from(INGESTION_SECRET.to_owned()),
        });
        i.auth = Some(verify);
        let app = aurum_ingestion::Application::build(i, prometheus::Registry::new())
            .await
            .unwrap();
        let ingestion = serve(app.port(), app.run_until_stopped());

        let mut g = GatewayConfig::default();
        g.http.port = 0;
        g.database = db.settings("aurumai_gateway");
        g.auth.issuer = auth_url;
        g.upstreams.ingestion.url = ingestion.clone();
        g.upstreams.prediction.url = prediction.clone();
        g.upstreams.auth.url = auth.clone();
        let app = Gateway::build(g, prometheus::Registry::new())
            .await
            .unwrap();
        let gateway = serve(app.port(), app.run_until_stopped());

        let client = reqwest::Client::new();
        assert!(aurum_testkit::http_ready(&client, &gateway, Duration::from_secs(30)).await);
        Self {
            gateway,
            auth,
            ingestion,
            prediction,
            client,
            _db: db,
            _dir: dir,
        }
    }

    async fn console_token(&self) -> String {
        let r = self
            .client
            .post(format!("{}/token", self.auth))
            .basic_auth(CONSOLE, Some(CONSOLE_SECRET))
            .form(&[
                ("grant_type", "client_credentials"),
                ("audience", "aurumai-api"),
            ])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    fn api(&self, method: reqwest::Method, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}/api/v1{path}", self.gateway))
            .bearer_auth(token)
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_from_the_auth_service_carries_telemetry_through_to_a_prediction() {
    let platform = Platform::start().await;
    let token = platform.console_token().await;
    use reqwest::Method;

    // Nothing without a token, at the gateway.
    let r = platform
        .client
        .get(format!("{}/api/v1/machines", platform.gateway))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);

    let r = platform
        .api(Method::POST, "/machines", &token)
        .json(&json!({"id": "TRUCK-21", "machine_type": "haul_truck", "site": "pit-a"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());

    // An hour of a healthy truck, one message a minute.
    let start = Utc::now() - TimeDelta::minutes(61);
    let messages: Vec<Value> = (0..=60)
        .map(|i| {
            json!({
                "machine_id": "TRUCK-21",
                "seq": i + 1,
                "ts": (start + TimeDelta::minutes(i)).to_rfc3339_opts(SecondsFormat::Millis, true),
                "metrics": {
                    "rpm": 1650.0 + (i % 7) as f64,
                    "temperature": 88.0 + (i % 3) as f64 * 0.5,
                    "vibration": 2.8 + (i % 5) as f64 * 0.05,
                    "fuel_rate_lh": 100.0,
                    "speed_kmh": 32.0 + (i % 4) as f64,
                    "load_tons": if i % 20 < 10 { 220.0 } else { 0.0 },
                    "oil_pressure": 4.2 + (i % 3) as f64 * 0.05,
                },
            })
        })
        .collect();
    let r = platform
        .api(Method::POST, "/telemetry", &token)
        .json(&json!({ "messages": messages }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());

    // Ingestion computed the features and sent them to prediction with its own service token;
    // prediction scored them: the fleet view, read through the gateway, lists the truck.
    let fleet = || {
        let request = platform.api(Method::GET, "/fleet/health", &token).send();
        async move {
            let body: Value = request.await.ok()?.json().await.ok()?;
            (body["machines"][0]["machine_id"] == "TRUCK-21").then_some(body)
        }
    };
    assert!(
        eventually(Duration::from_secs(40), || async {
            fleet().await.is_some()
        })
        .await,
        "no prediction reached the fleet view"
    );
    let r = platform
        .api(
            Method::GET,
            "/machines/TRUCK-21/predictions?from=2000-01-01T00:00:00Z",
            &token,
        )
        .send()
        .await
        .unwrap();
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["predictions"][0]["model_version"], "platform-1");

    // The calls are in the tenant's audit log, under the console's subject.
    let audit: Value = platform
        .api(Method::GET, "/audit", &token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = audit.to_string();
    assert!(
        text.contains(CONSOLE) && text.contains("/api/v1/telemetry"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_tokens_signed_by_the_auth_service_get_through() {
    let platform = Platform::start().await;
    let token = platform.console_token().await;
    let r = platform
        .api(reqwest::Method::GET, "/machines", &token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // The same claims signed by anyone but the auth service are refused.
    let forged = aurum_authn::testing::TestKey::generate("k1").sign(
        &serde_json::from_value(json!({
            "iss": platform.auth, "sub": "x", "aud": ["aurumai-api"], "tenant": TENANT,
            "roles": ["admin"], "client_id": "x", "jti": "j", "scope": "",
            "exp": Utc::now().timestamp() + 300, "iat": Utc::now().timestamp(), "nbf": Utc::now().timestamp(),
        }))
        .unwrap(),
    );
    let r = platform
        .api(reqwest::Method::GET, "/machines", &forged)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_access_token_is_refused_by_every_resource_server_within_seconds() {
    let platform = Platform::start().await;
    let token = platform.console_token().await;
    let calls = |token: String| {
        let p = &platform;
        async move {
            let mut statuses = Vec::new();
            for url in [
                format!("{}/api/v1/machines", p.gateway),
                format!("{}/v1/machines", p.ingestion),
                format!("{}/v1/fleet/health", p.prediction),
            ] {
                let r = p.client.get(url).bearer_auth(&token).send().await.unwrap();
                statuses.push(r.status().as_u16());
            }
            statuses
        }
    };
    assert_eq!(calls(token.clone()).await, [200, 200, 200]);

    let r = platform
        .client
        .post(format!("{}/revoke", platform.auth))
        .basic_auth(CONSOLE, Some(CONSOLE_SECRET))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let start = std::time::Instant::now();
    let mut last = Vec::new();
    while start.elapsed() < Duration::from_secs(10) {
        last = calls(token.clone()).await;
        if last == [401, 401, 401] {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(last, [401, 401, 401], "after {:?}", start.elapsed());
    // Within the verifiers' poll interval (2 s) and a request or two.
    assert!(
        start.elapsed() < Duration::from_secs(5),
        "{:?}",
        start.elapsed()
    );
    // The client's next token works.
    assert_eq!(calls(platform.console_token().await).await, [200, 200, 200]);
}
