//! Maintenance events: operators record what happened to a machine, with when and who, and
//! anyone of the tenant reads the log back.

use aurum_authn::testing::TestIssuer;
use chrono::{TimeDelta, Utc};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, spawn_app_with_auth, TestApp, TENANT};

impl TestApp {
    async fn record_event(&self, tenant: &str, machine: &str, body: &Value) -> reqwest::Response {
        self.client
            .post(self.url(&format!("/v1/machines/{machine}/events")))
            .header("X-Aurum-Tenant", tenant)
            .header("X-Aurum-User", "planner@demo")
            .json(body)
            .send()
            .await
            .unwrap()
    }

    async fn events(&self, tenant: &str, machine: &str, query: &str) -> reqwest::Response {
        self.client
            .get(self.url(&format!("/v1/machines/{machine}/events{query}")))
            .header("X-Aurum-Tenant", tenant)
            .send()
            .await
            .unwrap()
    }
}

fn at(hours_ago: i64) -> String {
    (Utc::now() - TimeDelta::hours(hours_ago)).to_rfc3339()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_and_its_repair_are_recorded_with_who_and_read_back_newest_first() {
    let app = spawn_app().await;
    assert_eq!(app.register("MILL-3", "grinding_mill").await.status(), 201);
    let r = app
        .record_event(
            TENANT,
            "MILL-3",
            &json!({"kind": "failure", "failure_mode": "bearing_wear", "occurred_at": at(30),
                    "note": "drive-end bearing seized"}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let failure: Value = r.json().await.unwrap();
    assert_eq!(failure["recorded_by"], "planner@demo");
    assert_eq!(failure["failure_mode"], "bearing_wear");
    for (kind, hours) in [("repair", 20), ("inspection", 2)] {
        let r = app
            .record_event(
                TENANT,
                "MILL-3",
                &json!({"kind": kind, "occurred_at": at(hours)}),
            )
            .await;
        assert_eq!(r.status(), 201);
    }

    let r = app.events(TENANT, "MILL-3", "").await;
    assert_eq!(r.status(), 200);
    let log: Value = r.json().await.unwrap();
    let kinds: Vec<&str> = log["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["inspection", "repair", "failure"]);

    // A time window and a limit.
    let from = (Utc::now() - TimeDelta::hours(25)).format("%Y-%m-%dT%H:%M:%SZ");
    let r = app
        .events(TENANT, "MILL-3", &format!("?from={from}&limit=1"))
        .await;
    let window: Value = r.json().await.unwrap();
    assert_eq!(window["events"].as_array().unwrap().len(), 1);
    assert_eq!(window["events"][0]["kind"], "inspection");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_event_is_a_422_naming_each_field_and_an_unknown_machine_a_404() {
    let app = spawn_app().await;
    assert_eq!(app.register("TRUCK-21", "haul_truck").await.status(), 201);
    let r = app
        .record_event(
            TENANT,
            "TRUCK-21",
            &json!({"kind": "failure", "occurred_at": "soon"}),
        )
        .await;
    assert_eq!(r.status(), 422);
    let p: Value = r.json().await.unwrap();
    let fields: Vec<&str> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["failure_mode", "occurred_at"]);
    let future = (Utc::now() + TimeDelta::hours(2)).to_rfc3339();
    let r = app
        .record_event(
            TENANT,
            "TRUCK-21",
            &json!({"kind": "repair", "occurred_at": future}),
        )
        .await;
    assert_eq!(r.status(), 422);

    let r = app
        .record_event(
            TENANT,
            "GHOST-1",
            &json!({"kind": "repair", "occurred_at": at(1)}),
        )
        .await;
    assert_eq!(r.status(), 404);
    assert_eq!(app.events(TENANT, "GHOST-1", "").await.status(), 404);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_neither_reads_nor_writes_another_tenants_log() {
    let app = spawn_app().await;
    assert_eq!(
        app.register_as("acme", "PUMP-1", "haul_truck")
            .await
            .status(),
        201
    );
    let event = json!({"kind": "inspection", "occurred_at": at(1)});
    assert_eq!(
        app.record_event("acme", "PUMP-1", &event).await.status(),
        201
    );
    assert_eq!(
        app.record_event("globex", "PUMP-1", &event).await.status(),
        404
    );
    assert_eq!(app.events("globex", "PUMP-1", "").await.status(), 404);
    let acme: Value = app.events("acme", "PUMP-1", "").await.json().await.unwrap();
    assert_eq!(acme["events"].as_array().unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operators_record_events_viewers_read_them_and_the_recorder_is_the_tokens_subject() {
    let issuer = TestIssuer::start().await;
    let app = spawn_app_with_auth(&issuer).await;
    let operator = issuer.token("operator-of-acme", "acme", &["operator"]);
    let viewer = issuer.token("viewer-of-acme", "acme", &["viewer"]);
    let register = app
        .client
        .post(app.url("/v1/machines"))
        .bearer_auth(&operator)
        .json(&json!({"id": "MILL-1", "profile": "grinding_mill"}))
        .send()
        .await
        .unwrap();
    assert_eq!(register.status(), 201);
    let post = |token: &str| {
        app.client
            .post(app.url("/v1/machines/MILL-1/events"))
            .bearer_auth(token)
            // A header the caller sets is not who the service records.
            .header("X-Aurum-User", "someone-else")
            .json(&json!({"kind": "part_replaced", "failure_mode": "liner", "occurred_at": at(3)}))
            .send()
    };
    assert_eq!(post(&viewer).await.unwrap().status(), 403);
    let r = post(&operator).await.unwrap();
    assert_eq!(r.status(), 201);
    let recorded: Value = r.json().await.unwrap();
    assert_eq!(recorded["recorded_by"], "operator-of-acme");
    let r = app
        .client
        .get(app.url("/v1/machines/MILL-1/events"))
        .bearer_auth(&viewer)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
