//! The model registry: upload, list, activate, hot swap across replicas, refusal of bad
//! artifacts while the current model keeps serving.

use aurum_domain::MachineType;
use chrono::Utc;
use serde_json::Value;

use crate::helpers::{fixture, model_as_version, sample, spawn_app, start, vector};

async fn serving(app: &crate::helpers::TestApp) -> Value {
    app.get("/v1/models").await.json::<Value>().await.unwrap()["serving"].clone()
}

async fn predicted_version(app: &crate::helpers::TestApp) -> String {
    let r = app
        .post_as("demo", "/v1/machines/TRUCK-1/predict", None)
        .await;
    assert_eq!(r.status(), 200);
    r.json::<Value>().await.unwrap()["model_version"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_are_listed_with_their_evaluation_and_activation() {
    let app = spawn_app().await;
    let body: Value = app.get("/v1/models").await.json().await.unwrap();
    assert_eq!(body["serving"], "fixture-1");
    let m = &body["models"][0];
    assert_eq!(m["version"], "fixture-1");
    assert_eq!(m["active"], true);
    assert_eq!(m["activated_by"], "ml-engineer@demo");
    assert_eq!(m["sha256"].as_str().unwrap().len(), 64);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn activating_another_version_swaps_without_restart() {
    let app = spawn_app().await;
    app.post_features(vec![vector(
        "TRUCK-1",
        MachineType::HaulTruck,
        &sample(MachineType::HaulTruck, false, Utc::now()),
    )])
    .await;
    assert_eq!(predicted_version(&app).await, "fixture-1");
    let v2 = app.upload_model(&model_as_version("fixture-2")).await;
    // Registering alone changes nothing.
    assert_eq!(predicted_version(&app).await, "fixture-1");
    assert_eq!(app.activate(&v2).await.status(), 200);
    assert_eq!(predicted_version(&app).await, "fixture-2");
    assert_eq!(serving(&app).await, "fixture-2");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_replicas_follow_an_activation() {
    let a = spawn_app().await;
    let b_address = start(&a.db).await;
    let b_models = format!("{b_address}/v1/models");
    let client = a.client.clone();
    let serving_b = move || {
        let client = client.clone();
        let url = b_models.clone();
        async move {
            let body: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
            body["serving"].as_str().map(str::to_owned)
        }
    };
    assert_eq!(serving_b().await.as_deref(), Some("fixture-1"));
    let v2 = a.upload_model(&model_as_version("fixture-2")).await;
    assert_eq!(a.activate(&v2).await.status(), 200);
    assert!(
        aurum_testkit::eventually(std::time::Duration::from_secs(10), || {
            let serving_b = serving_b.clone();
            async move { serving_b().await.as_deref() == Some("fixture-2") }
        })
        .await,
        "replica b never swapped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupted_artifact_is_refused_at_activation_and_the_current_model_keeps_serving() {
    let app = spawn_app().await;
    app.post_features(vec![vector(
        "TRUCK-1",
        MachineType::HaulTruck,
        &sample(MachineType::HaulTruck, false, Utc::now()),
    )])
    .await;
    let v2 = app.upload_model(&model_as_version("fixture-2")).await;
    // The stored bytes rot (a bad disk, a hand edit): flip one byte in the payload.
    let client = app.db.client().await;
    let n = client
        .execute(
            "UPDATE prediction.models SET artifact = overlay(artifact placing \
             (CASE WHEN get_byte(artifact, 500) = 65 THEN 'B' ELSE 'A' END)::bytea from 501 for 1) \
             WHERE version = $1",
            &[&v2],
        )
        .await
        .unwrap();
    assert_eq!(n, 1);
    let r = app.activate(&v2).await;
    assert_eq!(r.status(), 422);
    let problem: Value = r.json().await.unwrap();
    assert!(
        problem["detail"].as_str().unwrap().contains("corrupted"),
        "{problem}"
    );
    assert_eq!(serving(&app).await, "fixture-1");
    assert_eq!(predicted_version(&app).await, "fixture-1");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn uploads_that_are_not_model_artifacts_are_refused() {
    let app = spawn_app().await;
    let mut truncated = fixture().model.clone();
    truncated.truncate(truncated.len() / 2);
    for body in [b"{}".to_vec(), b"garbage".to_vec(), truncated] {
        let r = app
            .client
            .post(app.url("/v1/models"))
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 422);
    }
    // Versions are immutable: the same version with other bytes conflicts.
    let mut other = aurum_models::ModelArtifact::from_json(&fixture().model).unwrap();
    other.horizon_h = 48.0;
    let r = app
        .client
        .post(app.url("/v1/models"))
        .body(other.to_json().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
    assert_eq!(app.activate("no-such-version").await.status(), 404);
}
