use crate::helpers::spawn_app;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_and_readyz_answer_when_the_database_is_up() {
    let app = spawn_app().await;
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["checks"][0]["name"], "database");
    assert_eq!(body["checks"][0]["ready"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callers_request_id_is_echoed_and_one_is_generated_otherwise() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(app.url("/healthz"))
        .header("X-Request-ID", "req-abc-123")
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-request-id"], "req-abc-123");
    let r = app.client.get(app.url("/healthz")).send().await.unwrap();
    let generated = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(generated.len(), 36, "a UUID: {generated}");
    // A header that is not plain text is replaced, never echoed.
    let r = app
        .client
        .get(app.url("/healthz"))
        .header("X-Request-ID", "a b<script>")
        .send()
        .await
        .unwrap();
    assert_ne!(r.headers()["x-request-id"], "a b<script>");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_exposed_in_prometheus_format() {
    let app = spawn_app().await;
    let body = crate::service::metrics(&app.address).await;
    for name in [
        "aurum_ingest_messages_received_total",
        "aurum_ingest_rejected_total{reason=\"implausible_value\"} 0",
        "aurum_ingest_messages_written_total",
        "aurum_ingest_queue_depth",
        "aurum_mqtt_connected",
        "aurum_db_pool_connections{state=\"idle\"}",
        "aurum_db_pool_connections{state=\"in_use\"}",
        "aurum_db_pool_gets_timed_out_total",
        "aurum_db_pool_gets_waited_total",
    ] {
        assert!(body.contains(name), "missing {name} in\n{body}");
    }
    // Read from the pool at scrape time: the test configuration's size.
    assert_eq!(
        aurum_testkit::metric_value(&body, "aurum_db_pool_max_connections"),
        Some(8.0),
        "{body}"
    );
}
