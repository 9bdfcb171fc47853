//! `spawn_app()`: the gateway in front of the real ingestion and prediction services (one
//! fresh database, all migrations), a real token issuer (JWKS over HTTP, tokens per the
//! contract), and a recording HTTP upstream standing where the auth service's API goes (the
//! end-to-end test with the real auth service is separate).

use std::collections::HashMap;
use std::net::TcpListener;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use aurum_authn::testing::{TestIssuer, TestKey};
use aurum_gateway::config::Limit;
use aurum_gateway::{Application, GatewayConfig};
use aurum_testkit::TestDb;
use serde_json::{json, Value};

pub const TENANT: &str = "acme";
pub const OTHER_TENANT: &str = "globex";
pub const ORIGIN: &str = "https://app.aurum.example";

/// What the recording upstream saw of one request.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: HashMap<String, String>,
}

/// An HTTP upstream that answers every request with 200 and a JSON echo of it, and records
/// it. A request with `x-test-fail-once: KEY` gets 503 the first time KEY is seen.
#[derive(Debug, Clone)]
pub struct Recorder {
    pub address: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    failed: Arc<Mutex<Vec<String>>>,
    pub hits: Arc<AtomicUsize>,
}

impl Recorder {
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let rec = Self {
            address: format!("http://127.0.0.1:{port}"),
            seen: Arc::default(),
            failed: Arc::default(),
            hits: Arc::default(),
        };
        let state = web::Data::new(rec.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(state.clone())
                .default_service(web::to(record))
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        rec
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    pub fn last(&self, path: &str) -> Option<Seen> {
        self.seen().into_iter().rev().find(|s| s.path == path)
    }
}

async fn record(req: HttpRequest, body: web::Bytes, rec: web::Data<Recorder>) -> HttpResponse {
    rec.hits.fetch_add(1, Ordering::SeqCst);
    let headers: HashMap<String, String> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), v.to_str().unwrap_or("").to_owned()))
        .collect();
    if req.path() != "/healthz" {
        rec.seen.lock().unwrap().push(Seen {
            method: req.method().to_string(),
            path: req.path().to_owned(),
            headers: headers.clone(),
        });
    }
    if let Some(key) = headers.get("x-test-fail-once") {
        let mut failed = rec.failed.lock().unwrap();
        if !failed.contains(key) {
            failed.push(key.clone());
            return HttpResponse::ServiceUnavailable().finish();
        }
    }
    HttpResponse::Ok().json(json!({
        "method": req.method().as_str(),
        "path": req.path(),
        "query": req.query_string(),
        "tenant": headers.get("x-aurum-tenant"),
        "user": headers.get("x-aurum-user"),
        "body_len": body.len(),
    }))
}

pub struct TestApp {
    pub address: String,
    pub issuer: TestIssuer,
    pub db: TestDb,
    pub client: reqwest::Client,
    pub auth: Recorder,
    _spool: tempfile::TempDir,
}
pub use aurum_testkit::init_test_logs;

/// The gateway's tests run every service in-process: each context's schema, as each
/// service's `migrate` would create it.
pub async fn migrate_all(db: &TestDb) {
    aurum_postgres::ingestion::migrate(&db.settings("aurumai_ingestion"))
        .await
        .expect("migrate ingestion");
    aurum_postgres::prediction::migrate(&db.settings("aurumai_prediction"))
        .await
        .expect("migrate prediction");
    aurum_postgres::auth::migrate(&db.settings("aurumai_auth"))
        .await
        .expect("migrate auth");
    aurum_postgres::audit::migrate(&db.settings("aurumai_gateway"))
        .await
        .expect("migrate audit");
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut GatewayConfig)) -> TestApp {
    init_test_logs();
    let issuer = TestIssuer::start().await;
    let db = TestDb::create().await;
    migrate_all(&db).await;

    // prediction, then ingestion streaming its features to it
    let mut p = aurum_prediction::PredictionConfig::default();
    p.http.port = 0;
    p.database = db.settings("aurumai_prediction");
    let prediction_app = aurum_prediction::Application::build(p, prometheus::Registry::new())
        .await
        .expect("prediction");
    let prediction = format!("http://127.0.0.1:{}", prediction_app.port());
    tokio::spawn(prediction_app.run_until_stopped());

    let spool = tempfile::tempdir().unwrap();
    let mut i = aurum_ingestion::IngestionConfig::default();
    i.http.port = 0;
    i.database = db.settings("aurumai_ingestion");
    i.ingest.spool_dir = spool.path().to_owned();
    i.ingest.mqtt_enabled = false;
    i.features.prediction_url = prediction.clone();
    let ingestion_app = aurum_ingestion::Application::build(i, prometheus::Registry::new())
        .await
        .expect("ingestion");
    let ingestion = format!("http://127.0.0.1:{}", ingestion_app.port());
    tokio::spawn(ingestion_app.run_until_stopped());

    let auth = Recorder::start().await;

    let mut c = GatewayConfig::default();
    c.http.port = 0;
    c.database = db.settings("aurumai_gateway");
    c.auth.issuer = issuer.iss();
    c.auth.min_refetch_interval_ms = 300;
    c.upstreams.ingestion.url = ingestion.clone();
    c.upstreams.prediction.url = prediction.clone();
    c.upstreams.auth.url = auth.address.clone();
    c.upstreams.retry_backoff_ms = 10;
    let high = Limit {
        requests: 100_000,
        per_s: 60,
    };
    c.rate_limit.per_principal = high;
    c.rate_limit.per_tenant = high;
    c.rate_limit.per_ip_anonymous = high;
    c.cors.allowed_origins = vec![ORIGIN.into()];
    configure(&mut c);
    let app = Application::build(c, prometheus::Registry::new())
        .await
        .expect("gateway");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());

    TestApp {
        address,
        issuer,
        db,
        client: reqwest::Client::new(),
        auth,
        _spool: spool,
    }
}

/// The kinds of caller of the matrix test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    NoToken,
    Expired,
    WrongSignature,
    WrongAudience,
    Viewer,
    Operator,
    Admin,
    /// An admin of another tenant.
    OtherTenant,
    /// The platform operator (`platform_admin`), of a tenant of its own.
    PlatformAdmin,
}

impl Caller {
    pub const ALL: [Caller; 9] = [
        Caller::NoToken,
        Caller::Expired,
        Caller::WrongSignature,
        Caller::WrongAudience,
        Caller::Viewer,
        Caller::Operator,
        Caller::Admin,
        Caller::OtherTenant,
        Caller::PlatformAdmin,
    ];
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A user token of `TENANT` with `role`; the subject is `user-{role}`.
    pub fn token(&self, role: &str) -> String {
        self.issuer.token(&format!("user-{role}"), TENANT, &[role])
    }

    pub fn token_for(&self, caller: Caller) -> Option<String> {
        let now = chrono::Utc::now().timestamp();
        match caller {
            Caller::NoToken => None,
            Caller::Expired => {
                let mut c = self.issuer.claims("user-admin", Some(TENANT), &["admin"]);
                c.insert("exp".into(), json!(now - 3_600));
                c.insert("nbf".into(), json!(now - 7_200));
                Some(self.issuer.sign(&c))
            }
            Caller::WrongSignature => {
                let impostor = TestKey::generate(&self.issuer.current_key().kid);
                Some(impostor.sign(&self.issuer.claims("user-admin", Some(TENANT), &["admin"])))
            }
            Caller::WrongAudience => {
                let mut c = self.issuer.claims("user-admin", Some(TENANT), &["admin"]);
                c.insert("aud".into(), json!(["aurumai-ingestion"]));
                Some(self.issuer.sign(&c))
            }
            Caller::Viewer => Some(self.token("viewer")),
            Caller::Operator => Some(self.token("operator")),
            Caller::Admin => Some(self.token("admin")),
            Caller::OtherTenant => Some(self.issuer.token("other-admin", OTHER_TENANT, &["admin"])),
            Caller::PlatformAdmin => Some(self.issuer.token(
                "operator-of-platform",
                "ops",
                &["platform_admin"],
            )),
        }
    }

    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let mut r = self.client.request(method, self.url(path));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r
    }

    pub async fn get(&self, path: &str, token: &str) -> reqwest::Response {
        self.request(reqwest::Method::GET, path, Some(token))
            .send()
            .await
            .unwrap()
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> reqwest::Response {
        self.request(reqwest::Method::POST, path, Some(token))
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    /// Registers a machine of `TENANT` through the gateway.
    pub async fn register_machine(&self, id: &str) {
        let r = self
            .post(
                "/api/v1/machines",
                &self.token("operator"),
                json!({"id": id, "machine_type": "haul_truck", "site": "pit-a"}),
            )
            .await;
        assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    }

    /// The tenant's audit entries once at least `n` are stored.
    pub async fn audit_entries(&self, n: usize) -> Value {
        self.audit_log_where(&format!("at least {n} entries"), |entries| {
            entries.len() >= n
        })
        .await
    }

    /// The tenant's audit log once `ready` holds for its entries (they are written
    /// asynchronously, and reading the log is itself recorded, so counting alone can be
    /// satisfied early).
    pub async fn audit_log_where(&self, what: &str, ready: impl Fn(&[Value]) -> bool) -> Value {
        let token = self.token("admin");
        let mut last = Value::Null;
        for _ in 0..100 {
            let r = self.get("/api/v1/audit?limit=1000", &token).await;
            assert_eq!(r.status(), 200);
            last = r.json().await.unwrap();
            if ready(last["entries"].as_array().unwrap()) {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the audit log never had {what}: {last}");
    }
}
