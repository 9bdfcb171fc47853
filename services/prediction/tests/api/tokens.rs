//! Defence in depth: with `auth` configured the service verifies every API call's access
//! token itself, takes the tenant from the token (never from a header), and applies its own
//! role rules, whatever a gateway in front of it already checked.

use aurum_authn::testing::TestIssuer;
use aurum_domain::MachineType;
use aurum_prediction::Application;
use aurum_testkit::TestDb;
use chrono::Utc;
use serde_json::{json, Value};

use crate::helpers::{config_for, fixture, init_test_logs, sample, vector, TENANT};

struct SecuredApp {
    address: String,
    issuer: TestIssuer,
    client: reqwest::Client,
    _db: TestDb,
}

impl SecuredApp {
    async fn spawn() -> Self {
        init_test_logs();
        let issuer = TestIssuer::start().await;
        let db = TestDb::create().await;
        let mut config = config_for(&db);
        config.auth = Some(aurum_config::TokenSettings {
            issuer: issuer.iss(),
            jwks_url: None,
            audiences: vec![],
            leeway_s: 5,
        });
        aurum_postgres::prediction::migrate(&config.database)
            .await
            .unwrap();
        let app = Application::build(config, prometheus::Registry::new())
            .await
            .unwrap();
        let address = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());
        Self {
            address,
            issuer,
            client: reqwest::Client::new(),
            _db: db,
        }
    }

    fn user(&self, tenant: &str, role: &str) -> String {
        self.issuer
            .token(&format!("{role}-of-{tenant}"), tenant, &[role])
    }

    /// A platform service client's token for this service (no tenant, no roles).
    fn service(&self, audience: &str) -> String {
        let mut claims = self.issuer.claims("aurum-ingestion", None, &[]);
        claims.insert("aud".into(), json!([audience]));
        claims.insert("client_id".into(), json!("aurum-ingestion"));
        self.issuer.sign(&claims)
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
    ) -> reqwest::Response {
        let mut r = self
            .client
            .request(method, format!("{}{path}", self.address));
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        r.send().await.unwrap()
    }

    async fn post_features(&self, token: &str) -> reqwest::Response {
        let now = Utc::now();
        let vectors = vec![vector(
            "TRUCK-1",
            MachineType::HaulTruck,
            &sample(MachineType::HaulTruck, false, now),
        )];
        self.client
            .post(format!("{}/v1/features", self.address))
            .bearer_auth(token)
            .json(&json!({ "vectors": vectors }))
            .send()
            .await
            .unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_api_call_needs_a_valid_token_but_health_does_not() {
    let app = SecuredApp::spawn().await;
    let get = reqwest::Method::GET;
    assert_eq!(app.call(get.clone(), "/healthz", None).await.status(), 200);
    let r = app.call(get.clone(), "/v1/fleet/health", None).await;
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));

    let mut expired = app.issuer.claims("u", Some(TENANT), &["admin"]);
    expired.insert("exp".into(), json!(Utc::now().timestamp() - 600));
    let mut other_audience = app.issuer.claims("u", Some(TENANT), &["admin"]);
    other_audience.insert("aud".into(), json!(["aurumai-ingestion"]));
    let forged = aurum_authn::testing::TestKey::generate("k1").sign(&app.issuer.claims(
        "u",
        Some(TENANT),
        &["admin"],
    ));
    for bad in [
        app.issuer.sign(&expired),
        app.issuer.sign(&other_audience),
        forged,
    ] {
        let r = app.call(get.clone(), "/v1/fleet/health", Some(&bad)).await;
        assert_eq!(r.status(), 401);
    }
    let viewer = app.user(TENANT, "viewer");
    assert_eq!(
        app.call(get, "/v1/fleet/health", Some(&viewer))
            .await
            .status(),
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_tenant_comes_from_the_token_not_from_a_header() {
    let app = SecuredApp::spawn().await;
    assert_eq!(
        app.post_features(&app.service("aurumai-prediction"))
            .await
            .status(),
        200
    );

    // A user of another tenant who names the demo tenant in the header sees only their own
    // (empty) fleet, and the demo machine is 404 to them.
    let outsider = app.user("globex", "admin");
    let fleet: Value = app
        .client
        .get(format!("{}/v1/fleet/health", app.address))
        .bearer_auth(&outsider)
        .header("x-aurum-tenant", TENANT)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        fleet["machines"].as_array().map(Vec::len),
        Some(0),
        "{fleet}"
    );
    let r = app
        .call(
            reqwest::Method::GET,
            "/v1/machines/TRUCK-1/predictions",
            Some(&outsider),
        )
        .await;
    assert_eq!(r.status(), 404);

    let insider = app.user(TENANT, "viewer");
    let r = app
        .call(
            reqwest::Method::GET,
            "/v1/machines/TRUCK-1/predictions",
            Some(&insider),
        )
        .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_and_service_routes_are_enforced_by_the_service_itself() {
    let app = SecuredApp::spawn().await;
    let post = reqwest::Method::POST;
    // Feature batches: only a platform service client addressed to prediction.
    assert_eq!(
        app.post_features(&app.user(TENANT, "admin")).await.status(),
        403
    );
    assert_eq!(
        app.post_features(&app.service("aurumai-api"))
            .await
            .status(),
        403
    );
    assert_eq!(
        app.post_features(&app.service("aurumai-ingestion"))
            .await
            .status(),
        401
    );
    assert_eq!(
        app.post_features(&app.service("aurumai-prediction"))
            .await
            .status(),
        200
    );

    // Model registry: the platform operator only, not a tenant's admin.
    let upload = |token: String| {
        app.client
            .post(format!("{}/v1/models", app.address))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(fixture().model.clone())
            .send()
    };
    assert_eq!(
        upload(app.user(TENANT, "operator")).await.unwrap().status(),
        403
    );
    assert_eq!(
        upload(app.user(TENANT, "admin")).await.unwrap().status(),
        403
    );
    assert_eq!(
        upload(app.user("ops", "platform_admin"))
            .await
            .unwrap()
            .status(),
        201
    );

    // Alert handling: operators, not viewers (an unknown alert is 404 once allowed).
    let path = "/v1/alerts/00000000-0000-0000-0000-000000000000/ack";
    assert_eq!(
        app.call(post.clone(), path, Some(&app.user(TENANT, "viewer")))
            .await
            .status(),
        403
    );
    assert_eq!(
        app.call(post, path, Some(&app.user(TENANT, "operator")))
            .await
            .status(),
        404
    );
}

fn concrete(path: &str) -> String {
    path.split('/')
        .map(|s| if s.starts_with('{') { "TRUCK-1" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_rule_is_the_matched_routes_however_its_path_is_encoded() {
    use aurum_contract::{prediction::ROUTES, Access};

    let app = SecuredApp::spawn().await;
    let admin = app.user(TENANT, "admin");
    let other_admin = app.user("globex", "admin");
    let mut checked = 0;
    for route in ROUTES {
        let plain = format!("/v1{}", concrete(route.path));
        let method = reqwest::Method::from_bytes(route.method.as_str().as_bytes()).unwrap();
        for token in [&admin, &other_admin] {
            let mut statuses = Vec::new();
            for path in [
                plain.clone(),
                aurum_testkit::percent_encoded_path(&plain, 2, false),
                aurum_testkit::percent_encoded_path(&plain, 2, true),
            ] {
                let r = app
                    .client
                    .request(method.clone(), format!("{}{path}", app.address))
                    .bearer_auth(token)
                    .json(&json!({}))
                    .send()
                    .await
                    .unwrap();
                statuses.push((path, r.status().as_u16()));
            }
            let first = statuses[0].1;
            assert!(
                statuses.iter().all(|(_, s)| *s == first),
                "{} {}: {statuses:?}",
                route.method,
                route.path
            );
            if matches!(route.access, Access::Service | Access::Platform) {
                assert_eq!(first, 403, "{} {}: {statuses:?}", route.method, route.path);
            } else {
                assert_ne!(first, 403, "{} {}: {statuses:?}", route.method, route.path);
            }
            checked += 1;
        }
    }
    assert_eq!(checked, ROUTES.len() * 2);
}
