//! Alerts: raised when the risk stays above the model's threshold, one per machine and
//! category, escalated in place, cleared with hysteresis, acknowledged and resolved by people.

use aurum_domain::MachineType;
use chrono::{DateTime, TimeDelta, Utc};
use serde_json::Value;

use crate::helpers::{sample, spawn_app, vector, TestApp, PLANNER};

/// Posts the fixture vector of `t` for `machine`, failing or healthy, one window later each
/// time.
async fn post(app: &TestApp, machine: &str, t: MachineType, failing: bool, at: DateTime<Utc>) {
    let r = app
        .post_features(vec![vector(machine, t, &sample(t, failing, at))])
        .await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

fn predictive(alerts: &[Value]) -> Vec<&Value> {
    alerts
        .iter()
        .filter(|a| a["category"] == "predictive")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sustained_risk_raises_one_alert_that_is_updated_not_repeated() {
    let app = spawn_app().await;
    let t0 = Utc::now() - TimeDelta::hours(10);
    // One risky window is not enough (raise_after = 2).
    post(&app, "MILL-3", MachineType::GrindingMill, true, t0).await;
    assert!(predictive(&app.alerts("").await).is_empty());
    for i in 1..6 {
        post(
            &app,
            "MILL-3",
            MachineType::GrindingMill,
            true,
            t0 + TimeDelta::hours(i),
        )
        .await;
    }
    let alerts = app.alerts("?state=open").await;
    let open = predictive(&alerts);
    assert_eq!(open.len(), 1, "{alerts:?}");
    let a = open[0];
    assert_eq!(a["machine_id"], "MILL-3");
    assert_eq!(a["model_version"], "fixture-1");
    assert!(a["message"]
        .as_str()
        .unwrap()
        .contains("failure within 72 h"));
    assert!(["warning", "critical", "emergency"].contains(&a["severity"].as_str().unwrap()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_is_acknowledged_then_resolved_with_who_and_when() {
    let app = spawn_app().await;
    let t0 = Utc::now() - TimeDelta::hours(10);
    for i in 0..3 {
        post(
            &app,
            "TRUCK-4",
            MachineType::HaulTruck,
            true,
            t0 + TimeDelta::hours(i),
        )
        .await;
    }
    let alerts = app.alerts("?state=open").await;
    let id = predictive(&alerts)[0]["id"].as_i64().unwrap();

    let r = app
        .post_as("demo", &format!("/v1/alerts/{id}/ack"), None)
        .await;
    assert_eq!(r.status(), 200);
    let acked: Value = r.json().await.unwrap();
    assert_eq!(acked["state"], "acknowledged");
    assert_eq!(acked["acknowledged_by"], PLANNER);
    assert!(acked["acknowledged_at"].is_string());

    // Still risky: the acknowledged alert is updated, no second one opens.
    post(
        &app,
        "TRUCK-4",
        MachineType::HaulTruck,
        true,
        t0 + TimeDelta::hours(4),
    )
    .await;
    let all = app.alerts("").await;
    assert_eq!(predictive(&all).len(), 1);
    assert_eq!(predictive(&all)[0]["state"], "acknowledged");

    let r = app
        .post_as(
            "demo",
            &format!("/v1/alerts/{id}/resolve"),
            Some(serde_json::json!({"note": "bearing replaced"})),
        )
        .await;
    assert_eq!(r.status(), 200);
    let resolved: Value = r.json().await.unwrap();
    assert_eq!(resolved["state"], "resolved");
    assert_eq!(resolved["resolved_by"], PLANNER);
    assert_eq!(resolved["resolution_note"], "bearing replaced");
    // The lifecycle only moves forward.
    let r = app
        .post_as("demo", &format!("/v1/alerts/{id}/ack"), None)
        .await;
    assert_eq!(r.status(), 409);
    assert_eq!(app.alerts("?state=resolved").await.len(), 1);
    assert!(predictive(&app.alerts("?state=open").await).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_alert_clears_only_after_the_risk_stays_low() {
    let app = spawn_app().await;
    let t0 = Utc::now() - TimeDelta::hours(20);
    for i in 0..3 {
        post(
            &app,
            "BOILER-7",
            MachineType::IndustrialBoiler,
            true,
            t0 + TimeDelta::hours(i),
        )
        .await;
    }
    assert_eq!(predictive(&app.alerts("?state=open").await).len(), 1);
    // Five healthy windows are not enough (clear_after = 6)...
    for i in 3..8 {
        post(
            &app,
            "BOILER-7",
            MachineType::IndustrialBoiler,
            false,
            t0 + TimeDelta::hours(i),
        )
        .await;
    }
    assert_eq!(predictive(&app.alerts("?state=open").await).len(), 1);
    // ...the sixth is.
    post(
        &app,
        "BOILER-7",
        MachineType::IndustrialBoiler,
        false,
        t0 + TimeDelta::hours(8),
    )
    .await;
    let resolved = app.alerts("?state=resolved").await;
    let cleared = predictive(&resolved);
    assert_eq!(cleared.len(), 1);
    assert_eq!(cleared[0]["resolved_by"], "system");
    assert!(predictive(&app.alerts("?state=open").await).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_are_filtered_and_isolated_per_tenant() {
    let app = spawn_app().await;
    let t0 = Utc::now() - TimeDelta::hours(5);
    for i in 0..2 {
        post(
            &app,
            "MILL-3",
            MachineType::GrindingMill,
            true,
            t0 + TimeDelta::hours(i),
        )
        .await;
    }
    let alerts = app.alerts("?state=open").await;
    let id = predictive(&alerts)[0]["id"].as_i64().unwrap();
    assert!(app.alerts("?state=resolved").await.is_empty());
    assert!(app.alerts("?severity=info").await.is_empty());
    assert_eq!(app.get("/v1/alerts?state=closed").await.status(), 400);
    // Another tenant sees none of it and cannot touch it.
    let r = app.get_as("other", "/v1/alerts").await;
    assert_eq!(
        r.json::<Value>().await.unwrap()["alerts"],
        serde_json::json!([])
    );
    assert_eq!(
        app.post_as("other", &format!("/v1/alerts/{id}/ack"), None)
            .await
            .status(),
        404
    );
    assert_eq!(
        app.post_as("other", &format!("/v1/alerts/{id}/resolve"), None)
            .await
            .status(),
        404
    );
    // Acting needs to say who acts.
    let r = app
        .client
        .post(app.url(&format!("/v1/alerts/{id}/ack")))
        .header("x-aurum-tenant", "demo")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_planner_confirms_or_rejects_an_alert_against_a_maintenance_event_and_the_list_counts_it()
{
    let app = spawn_app().await;
    let t0 = Utc::now() - TimeDelta::hours(10);
    for i in 0..3 {
        post(
            &app,
            "MILL-7",
            MachineType::GrindingMill,
            true,
            t0 + TimeDelta::hours(i),
        )
        .await;
    }
    let id = predictive(&app.alerts("?state=open").await)[0]["id"]
        .as_i64()
        .unwrap();
    let counts = |body: Value| body["feedback"].clone();
    let listed = app.get("/v1/alerts").await.json::<Value>().await.unwrap();
    assert_eq!(counts(listed)["unreviewed"], 1);

    let r = app
        .post_as(
            "demo",
            &format!("/v1/alerts/{id}/feedback"),
            Some(serde_json::json!({"verdict": "confirmed", "event_id": 41,
                                    "note": "liner bolts found loose"})),
        )
        .await;
    assert_eq!(r.status(), 200);
    let judged: Value = r.json().await.unwrap();
    assert_eq!(judged["feedback"]["verdict"], "confirmed");
    assert_eq!(judged["feedback"]["event_id"], 41);
    assert_eq!(judged["feedback"]["by"], PLANNER);
    assert_eq!(
        judged["state"], "open",
        "a verdict does not move the lifecycle"
    );
    let listed = app.get("/v1/alerts").await.json::<Value>().await.unwrap();
    assert_eq!(
        counts(listed),
        serde_json::json!({"confirmed": 1, "rejected": 0, "unreviewed": 0})
    );

    // A second verdict replaces the first.
    let r = app
        .post_as(
            "demo",
            &format!("/v1/alerts/{id}/feedback"),
            Some(serde_json::json!({"verdict": "rejected"})),
        )
        .await;
    assert_eq!(r.status(), 200);
    let listed = app.get("/v1/alerts").await.json::<Value>().await.unwrap();
    assert_eq!(counts(listed)["rejected"], 1);

    let r = app
        .post_as(
            "demo",
            &format!("/v1/alerts/{id}/feedback"),
            Some(serde_json::json!({"verdict": "maybe", "event_id": 0})),
        )
        .await;
    assert_eq!(r.status(), 422);
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["errors"][0]["field"], "verdict");
    assert_eq!(p["errors"][1]["field"], "event_id");
    let verdict = Some(serde_json::json!({"verdict": "confirmed"}));
    assert_eq!(
        app.post_as(
            "other",
            &format!("/v1/alerts/{id}/feedback"),
            verdict.clone()
        )
        .await
        .status(),
        404
    );
    assert_eq!(
        app.post_as("demo", "/v1/alerts/999999/feedback", verdict)
            .await
            .status(),
        404
    );
}
