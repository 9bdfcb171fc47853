//! Machine profiles: a tenant describes a new kind of machine through the API, and its
//! machines' readings are checked against it, version by version, on every replica.

use std::time::Duration;

use aurum_authn::testing::TestIssuer;
use aurum_testkit::eventually;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::{json, Value};

use crate::helpers::{message, spawn_app, spawn_app_with, spawn_app_with_auth, TestApp, TENANT};

const ADMIN: &str = "admin@demo";

fn pump(max_pressure: f64) -> Value {
    json!({
        "name": "Centrifugal pump",
        "description": "Feed pumps of the flotation circuit",
        "feature_window_s": 3600,
        "metrics": [
            {"name": "discharge_pressure", "unit": "bar", "min": 0, "max": max_pressure,
             "description": "outlet pressure"},
            {"name": "power_kw", "unit": "kW", "min": 0, "max": 400,
             "kind": "rate", "activity": "electricity"}
        ]
    })
}

impl TestApp {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        tenant: &str,
        body: Option<&Value>,
    ) -> reqwest::Response {
        let mut r = self
            .client
            .request(method, self.url(path))
            .header("X-Aurum-Tenant", tenant)
            .header("X-Aurum-User", ADMIN);
        if let Some(b) = body {
            r = r.json(b);
        }
        r.send().await.unwrap()
    }

    async fn create_profile(&self, tenant: &str, id: &str, body: &Value) -> reqwest::Response {
        let mut b = body.clone();
        b["id"] = json!(id);
        self.send(reqwest::Method::POST, "/v1/profiles", tenant, Some(&b))
            .await
    }

    async fn register_with_profile(&self, tenant: &str, id: &str, profile: &str) -> u16 {
        self.send(
            reqwest::Method::POST,
            "/v1/machines",
            tenant,
            Some(&json!({"id": id, "profile": profile})),
        )
        .await
        .status()
        .as_u16()
    }

    /// The reasons each reading of one message was refused for, as the batch answer says.
    async fn judge(&self, machine: &str, seq: u64, ts: DateTime<Utc>, metrics: Value) -> Value {
        let r = self
            .post_batch(&json!({"messages": [message(machine, seq, ts, metrics)]}))
            .await;
        assert_eq!(r.status(), 200);
        let b: Value = r.json().await.unwrap();
        b["results"][0].clone()
    }
}

fn reasons(result: &Value) -> Vec<String> {
    result["rejections"]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|r| {
                    format!(
                        "{}:{}",
                        r["metric"].as_str().unwrap_or("-"),
                        r["reason"].as_str().unwrap()
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_onboards_a_new_kind_of_machine_and_its_readings_are_checked_against_it() {
    let app = spawn_app().await;
    let r = app
        .create_profile(TENANT, "centrifugal_pump", &pump(40.0))
        .await;
    assert_eq!(r.status(), 201);
    assert_eq!(r.headers()["location"], "/v1/profiles/centrifugal_pump");
    let created: Value = r.json().await.unwrap();
    assert_eq!(created["version"], 1);
    assert_eq!(created["builtin"], false);
    assert_eq!(created["metrics"][1]["activity"], "electricity");

    assert_eq!(
        app.register_with_profile(TENANT, "PUMP-1", "centrifugal_pump")
            .await,
        201
    );
    let machine: Value = app
        .send(reqwest::Method::GET, "/v1/machines/PUMP-1", TENANT, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(machine["machine"]["profile"], "centrifugal_pump");
    assert_eq!(machine["machine"]["machine_type"], Value::Null);
    assert_eq!(machine["metrics"][0]["name"], "discharge_pressure");

    let now = Utc::now();
    let ok = app
        .judge(
            "PUMP-1",
            1,
            now,
            json!({"discharge_pressure": 12.5, "power_kw": 180.0}),
        )
        .await;
    assert_eq!(ok["status"], "stored", "{ok}");
    let mixed = app
        .judge(
            "PUMP-1",
            2,
            now,
            json!({"discharge_pressure": 55.0, "rpm": 1500.0, "power_kw": 1.0}),
        )
        .await;
    assert_eq!(
        reasons(&mixed),
        ["discharge_pressure:implausible_value", "rpm:unknown_metric"]
    );
    assert_eq!(app.telemetry_rows().await, 2);
    let mut quarantined = app.quarantine_reasons().await;
    quarantined.sort();
    assert_eq!(quarantined, ["implausible_value", "unknown_metric"]);

    // The series API knows the new metric and its unit.
    let series: Value = app
        .send(
            reqwest::Method::GET,
            "/v1/machines/PUMP-1/telemetry?metric=discharge_pressure",
            TENANT,
            None,
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(series["unit"], "bar", "{series}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_wrong_field_of_a_profile_is_a_422_naming_it() {
    let app = spawn_app().await;
    let r = app
        .create_profile(
            TENANT,
            "Pump!",
            &json!({
                "name": "",
                "metrics": [
                    {"name": "pressure", "unit": "bar", "min": 10, "max": 1},
                    {"name": "fuel", "unit": "L/h", "min": 0, "max": 90, "activity": "diesel"}
                ]
            }),
        )
        .await;
    assert_eq!(r.status(), 422);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let p: Value = r.json().await.unwrap();
    let fields: Vec<&str> = p["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["id", "name", "metrics[0].max", "metrics[1].kind"]);

    // A machine of a profile nobody defined.
    assert_eq!(
        app.register_with_profile(TENANT, "PUMP-9", "no_such_pump")
            .await,
        422
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_is_a_new_version_and_a_reading_is_judged_by_the_version_in_force_when_measured() {
    let app = spawn_app().await;
    assert_eq!(
        app.create_profile(TENANT, "pump", &pump(40.0))
            .await
            .status(),
        201
    );
    assert_eq!(
        app.register_with_profile(TENANT, "PUMP-2", "pump").await,
        201
    );
    let before_v2 = Utc::now() - TimeDelta::seconds(1);

    // Version 2: a narrower pressure range and a new flow metric.
    let mut v2 = pump(20.0);
    v2["metrics"]
        .as_array_mut()
        .unwrap()
        .push(json!({"name": "flow_m3h", "unit": "m3/h", "min": 0, "max": 900, "kind": "rate"}));
    let r = app
        .send(reqwest::Method::PUT, "/v1/profiles/pump", TENANT, Some(&v2))
        .await;
    assert_eq!(r.status(), 200);
    let updated: Value = r.json().await.unwrap();
    assert_eq!(updated["version"], 2);

    let now = Utc::now();
    let fresh = app
        .judge(
            "PUMP-2",
            1,
            now,
            json!({"discharge_pressure": 30.0, "flow_m3h": 400.0}),
        )
        .await;
    assert_eq!(reasons(&fresh), ["discharge_pressure:implausible_value"]);
    // Back-filled from before version 2: judged by version 1.
    let backfill = app
        .judge(
            "PUMP-2",
            2,
            before_v2,
            json!({"discharge_pressure": 30.0, "flow_m3h": 400.0}),
        )
        .await;
    assert_eq!(reasons(&backfill), ["flow_m3h:unknown_metric"]);

    let got: Value = app
        .send(reqwest::Method::GET, "/v1/profiles/pump", TENANT, None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(got["profile"]["version"], 2);
    let versions: Vec<i64> = got["versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, [1, 2]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_built_in_profiles_are_listed_for_everyone_and_read_only() {
    let app = spawn_app().await;
    assert_eq!(
        app.create_profile(TENANT, "pump", &pump(40.0))
            .await
            .status(),
        201
    );
    let list: Value = app
        .send(reqwest::Method::GET, "/v1/profiles", TENANT, None)
        .await
        .json()
        .await
        .unwrap();
    let ids: Vec<(&str, bool)> = list["profiles"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| (p["id"].as_str().unwrap(), p["builtin"].as_bool().unwrap()))
        .collect();
    assert_eq!(
        ids,
        [
            ("haul_truck", true),
            ("grinding_mill", true),
            ("industrial_boiler", true),
            ("pump", false)
        ]
    );
    let truck = &list["profiles"][0];
    assert!(truck["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .any(|m| m["name"] == "fuel_rate_lh" && m["activity"] == "diesel"));

    for (method, body) in [
        (reqwest::Method::PUT, Some(pump(40.0))),
        (reqwest::Method::DELETE, None),
    ] {
        let r = app
            .send(method, "/v1/profiles/haul_truck", TENANT, body.as_ref())
            .await;
        assert_eq!(r.status(), 409);
    }
    assert_eq!(
        app.create_profile(TENANT, "haul_truck", &pump(40.0))
            .await
            .status(),
        409
    );
    // Machines of a built-in kind register by profile or by the older machine_type alike.
    assert_eq!(
        app.register_with_profile(TENANT, "TRUCK-1", "haul_truck")
            .await,
        201
    );
    assert_eq!(app.register("TRUCK-2", "haul_truck").await.status(), 201);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_profile_in_use_cannot_be_deleted_and_one_unused_can() {
    let app = spawn_app().await;
    assert_eq!(
        app.create_profile(TENANT, "pump", &pump(40.0))
            .await
            .status(),
        201
    );
    assert_eq!(
        app.create_profile(TENANT, "conveyor", &pump(10.0))
            .await
            .status(),
        201
    );
    assert_eq!(
        app.create_profile(TENANT, "pump", &pump(40.0))
            .await
            .status(),
        409
    );
    assert_eq!(
        app.register_with_profile(TENANT, "PUMP-3", "pump").await,
        201
    );

    let r = app
        .send(reqwest::Method::DELETE, "/v1/profiles/pump", TENANT, None)
        .await;
    assert_eq!(r.status(), 409);
    let r = app
        .send(
            reqwest::Method::DELETE,
            "/v1/profiles/conveyor",
            TENANT,
            None,
        )
        .await;
    assert_eq!(r.status(), 204);
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let r = app
            .send(method, "/v1/profiles/conveyor", TENANT, None)
            .await;
        assert_eq!(r.status(), 404);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenants_profiles_are_its_own() {
    let app = spawn_app().await;
    assert_eq!(
        app.create_profile("acme", "pump", &pump(40.0))
            .await
            .status(),
        201
    );
    let r = app
        .send(reqwest::Method::GET, "/v1/profiles/pump", "globex", None)
        .await;
    assert_eq!(r.status(), 404);
    let list: Value = app
        .send(reqwest::Method::GET, "/v1/profiles", "globex", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        list["profiles"].as_array().unwrap().len(),
        3,
        "built-ins only"
    );
    assert_eq!(
        app.register_with_profile("globex", "PUMP-1", "pump").await,
        422
    );
    for method in [reqwest::Method::PUT, reqwest::Method::DELETE] {
        let r = app
            .send(method, "/v1/profiles/pump", "globex", Some(&pump(1.0)))
            .await;
        assert_eq!(r.status(), 404);
    }
    // The same id, independently.
    assert_eq!(
        app.create_profile("globex", "pump", &pump(5.0))
            .await
            .status(),
        201
    );
    let acme: Value = app
        .send(reqwest::Method::GET, "/v1/profiles/pump", "acme", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(acme["profile"]["metrics"][0]["max"], 40.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_through_one_replica_is_in_force_on_another_within_seconds() {
    let a = spawn_app_with(false, |c| c.ingest.profile_refresh_ms = 200).await;
    // A second replica on the same database.
    let spool = tempfile::tempdir().unwrap();
    let mut config = crate::helpers::config_for(&a.db, None, spool.path());
    config.ingest.profile_refresh_ms = 200;
    let replica = aurum_ingestion::Application::build(config, prometheus::Registry::new())
        .await
        .unwrap();
    let b_address = format!("http://127.0.0.1:{}", replica.port());
    tokio::spawn(replica.run_until_stopped());

    assert_eq!(
        a.create_profile(TENANT, "pump", &pump(40.0)).await.status(),
        201
    );
    assert_eq!(a.register_with_profile(TENANT, "PUMP-4", "pump").await, 201);
    let on_b = |seq: u64| {
        let client = a.client.clone();
        let url = format!("{b_address}/v1/telemetry");
        async move {
            let body = json!({"messages": [message("PUMP-4", seq, Utc::now(), json!({"discharge_pressure": 30.0}))]});
            let r: Value = client
                .post(&url)
                .header("X-Aurum-Tenant", TENANT)
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            r["results"][0]["status"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        }
    };
    // Replica B reads version 1 (and caches it): 30 bar is plausible.
    assert!(
        eventually(Duration::from_secs(10), || async {
            on_b(1).await == "stored"
        })
        .await,
        "replica B never accepted the reading"
    );

    assert_eq!(
        a.send(
            reqwest::Method::PUT,
            "/v1/profiles/pump",
            TENANT,
            Some(&pump(20.0))
        )
        .await
        .status(),
        200
    );
    let mut seq = 2;
    let changed = eventually(Duration::from_secs(5), || {
        seq += 1;
        let s = seq;
        let attempt = on_b(s);
        async move { attempt.await == "rejected" }
    })
    .await;
    assert!(changed, "replica B still judged by version 1 after 5 s");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viewers_read_profiles_and_only_admins_write_them() {
    let issuer = TestIssuer::start().await;
    let app = spawn_app_with_auth(&issuer).await;
    let mut body = pump(40.0);
    body["id"] = json!("pump");
    let as_role = |role: &'static str, method: reqwest::Method, path: &'static str| {
        let token = issuer.token(&format!("{role}-of-acme"), "acme", &[role]);
        let request = app
            .client
            .request(method, app.url(path))
            .bearer_auth(token)
            .json(&body);
        async move { request.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(
        as_role("viewer", reqwest::Method::POST, "/v1/profiles").await,
        403
    );
    assert_eq!(
        as_role("operator", reqwest::Method::POST, "/v1/profiles").await,
        403
    );
    assert_eq!(
        as_role("admin", reqwest::Method::POST, "/v1/profiles").await,
        201
    );
    assert_eq!(
        as_role("viewer", reqwest::Method::GET, "/v1/profiles/pump").await,
        200
    );
    assert_eq!(
        as_role("operator", reqwest::Method::PUT, "/v1/profiles/pump").await,
        403
    );
    assert_eq!(
        as_role("viewer", reqwest::Method::DELETE, "/v1/profiles/pump").await,
        403
    );
    assert_eq!(
        as_role("admin", reqwest::Method::DELETE, "/v1/profiles/pump").await,
        204
    );
}
