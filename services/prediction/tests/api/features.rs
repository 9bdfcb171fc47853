//! Feature batches from ingestion: scored, stored, refused when they do not fit the model.

use aurum_domain::MachineType;
use chrono::{TimeDelta, Utc};
use serde_json::{json, Value};

use crate::helpers::{sample, spawn_app, spawn_app_without_model, vector};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_scored_with_the_active_model_and_stored() {
    let app = spawn_app().await;
    let now = Utc::now();
    let vectors = vec![
        vector(
            "TRUCK-1",
            MachineType::HaulTruck,
            &sample(MachineType::HaulTruck, false, now),
        ),
        vector(
            "MILL-1",
            MachineType::GrindingMill,
            &sample(MachineType::GrindingMill, true, now),
        ),
    ];
    let r = app.post_features(vectors).await;
    assert_eq!(r.status(), 200);
    let report: Value = r.json().await.unwrap();
    assert_eq!(report["received"], 2);
    assert_eq!(report["scored"], 2);
    assert_eq!(report["model_version"], "fixture-1");

    let r = app
        .get("/v1/machines/MILL-1/predictions?from=2000-01-01T00:00:00Z")
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let predictions = body["predictions"].as_array().unwrap();
    assert_eq!(predictions.len(), 1);
    let p = &predictions[0];
    assert_eq!(p["model_version"], "fixture-1");
    assert_eq!(p["horizon_h"], 72.0);
    let prob = p["failure_probability"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&prob));
    assert!((p["risk_score"].as_f64().unwrap() - 100.0 * prob).abs() < 1e-9);
    assert!(p["rul_hours"].as_f64().unwrap() >= 0.0);
    assert!(!p["top_features"].as_array().unwrap().is_empty());
    // The failing mill is riskier than the healthy truck.
    let truck: Value = app
        .get("/v1/machines/TRUCK-1/predictions?from=2000-01-01T00:00:00Z")
        .await
        .json()
        .await
        .unwrap();
    assert!(
        truck["predictions"][0]["risk_score"].as_f64().unwrap() < p["risk_score"].as_f64().unwrap()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vector_missing_a_metric_of_the_schema_is_refused_with_the_reason() {
    let app = spawn_app().await;
    let mut features = sample(MachineType::HaulTruck, false, Utc::now());
    let vibration = aurum_domain::MetricName::parse("vibration").unwrap();
    features.metrics.remove(&vibration);
    let r = app
        .post_features(vec![vector("TRUCK-1", MachineType::HaulTruck, &features)])
        .await;
    assert_eq!(r.status(), 422);
    assert_eq!(
        r.headers()["content-type"].to_str().unwrap(),
        "application/problem+json"
    );
    let problem: Value = r.json().await.unwrap();
    let detail = problem["detail"].as_str().unwrap();
    assert!(
        detail.contains("TRUCK-1") && detail.contains("vibration"),
        "{detail}"
    );
    // Nothing was stored for it.
    assert_eq!(
        app.get("/v1/machines/TRUCK-1/predictions").await.status(),
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_bad_vector_does_not_sink_the_good_ones() {
    let app = spawn_app().await;
    let now = Utc::now();
    let mut bad = sample(MachineType::IndustrialBoiler, false, now);
    bad.metrics.clear();
    let r = app
        .post_features(vec![
            vector("BOILER-1", MachineType::IndustrialBoiler, &bad),
            vector(
                "BOILER-2",
                MachineType::IndustrialBoiler,
                &sample(MachineType::IndustrialBoiler, false, now),
            ),
        ])
        .await;
    assert_eq!(r.status(), 200);
    let report: Value = r.json().await.unwrap();
    assert_eq!(report["scored"], 1);
    assert_eq!(report["rejected"][0]["machine_id"], "BOILER-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_batches_are_problems_not_crashes() {
    let app = spawn_app().await;
    for body in [
        "not json",
        r#"{"vectors": [{"tenant_id": "demo"}]}"#,
        r#"{"vectors": [], "extra": 1}"#,
    ] {
        let r = app
            .client
            .post(app.url("/v1/features"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{body}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_model_features_are_kept_and_scoring_waits() {
    let app = spawn_app_without_model().await;
    let now = Utc::now();
    let r = app
        .post_features(vec![vector(
            "TRUCK-1",
            MachineType::HaulTruck,
            &sample(MachineType::HaulTruck, false, now),
        )])
        .await;
    assert_eq!(r.status(), 200);
    let report: Value = r.json().await.unwrap();
    assert_eq!(report["unscored"], 1);
    assert!(report["model_version"].is_null());
    let r = app
        .post_as("demo", "/v1/machines/TRUCK-1/predict", None)
        .await;
    assert_eq!(r.status(), 503);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_demand_prediction_scores_the_latest_features() {
    let app = spawn_app().await;
    let t0 = Utc::now() - TimeDelta::hours(1);
    app.post_features(vec![vector(
        "MILL-7",
        MachineType::GrindingMill,
        &sample(MachineType::GrindingMill, false, t0),
    )])
    .await;
    let t1 = Utc::now();
    app.post_features(vec![vector(
        "MILL-7",
        MachineType::GrindingMill,
        &sample(MachineType::GrindingMill, true, t1),
    )])
    .await;
    let r = app
        .post_as("demo", "/v1/machines/MILL-7/predict", None)
        .await;
    assert_eq!(r.status(), 200);
    let p: Value = r.json().await.unwrap();
    assert_eq!(p["model_version"], "fixture-1");
    let at: chrono::DateTime<Utc> = serde_json::from_value(p["at"].clone()).unwrap();
    assert_eq!(at.timestamp_micros(), t1.timestamp_micros());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_machines_are_404_in_every_lookup() {
    let app = spawn_app().await;
    let r = app
        .post_as("demo", "/v1/machines/NOPE-1/predict", None)
        .await;
    assert_eq!(r.status(), 404);
    assert_eq!(
        app.get("/v1/machines/NOPE-1/predictions").await.status(),
        404
    );
    // Another tenant's machine is unknown too.
    app.post_features(vec![vector(
        "TRUCK-1",
        MachineType::HaulTruck,
        &sample(MachineType::HaulTruck, false, Utc::now()),
    )])
    .await;
    assert_eq!(
        app.get_as("other", "/v1/machines/TRUCK-1/predictions")
            .await
            .status(),
        404
    );
    assert_eq!(
        app.post_as("other", "/v1/machines/TRUCK-1/predict", None)
            .await
            .status(),
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activity_in_a_batch_is_accounted_for_esg() {
    let app = spawn_app().await;
    let to = Utc::now() - TimeDelta::hours(2);
    let from = to - TimeDelta::hours(1);
    let mut v = vector(
        "TRUCK-9",
        MachineType::HaulTruck,
        &sample(MachineType::HaulTruck, false, to),
    );
    v["activity"] = json!([{ "metric": "fuel_rate_lh", "from": from, "to": to, "amount": 100.0 }]);
    assert_eq!(app.post_features(vec![v.clone()]).await.status(), 200);
    // A retried batch does not count twice.
    assert_eq!(app.post_features(vec![v]).await.status(), 200);
    let q = format!(
        "/v1/esg/machines/TRUCK-9?from={}&to={}",
        (from - TimeDelta::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        (to + TimeDelta::hours(1)).to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    );
    let r = app.get(&q).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let text = body.to_string();
    // 100 L of diesel at the seeded global factor (2.69627 kg CO2e/L).
    assert!(text.contains("269.6"), "{text}");
}
