//! Health, readiness and metrics.

use std::time::Duration;

use crate::helpers::spawn_app;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_is_live_ready_and_reports_its_model() {
    let app = spawn_app().await;
    assert!(app.wait_ready(Duration::from_secs(10)).await);
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("aurum_prediction_model_loaded 1"),
        "{metrics}"
    );
}
