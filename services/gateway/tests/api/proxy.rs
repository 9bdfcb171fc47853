//! Forwarding: retries only for idempotent methods, body limit, upstream failures.

use std::sync::atomic::Ordering;

use serde_json::json;

use crate::helpers::{spawn_app, spawn_app_with};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idempotent_calls_are_retried_once_the_upstream_fails_others_are_not() {
    let app = spawn_app().await;
    let operator = app.token("operator");
    let before = app.auth.hits.load(Ordering::SeqCst);
    let r = app
        .request(reqwest::Method::GET, "/api/v1/devices", Some(&operator))
        .header("x-test-fail-once", "get-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "GET is retried after a 503");
    assert_eq!(app.auth.hits.load(Ordering::SeqCst) - before, 2);

    let r = app
        .request(
            reqwest::Method::DELETE,
            "/api/v1/devices/d1",
            Some(&operator),
        )
        .header("x-test-fail-once", "delete-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "DELETE is idempotent: retried");

    let before = app.auth.hits.load(Ordering::SeqCst);
    let r = app
        .request(reqwest::Method::POST, "/api/v1/devices", Some(&operator))
        .header("x-test-fail-once", "post-1")
        .json(&json!({"id": "d2"}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        503,
        "POST is not retried: the upstream's answer passes through"
    );
    assert_eq!(app.auth.hits.load(Ordering::SeqCst) - before, 1);
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        aurum_testkit::metric_value(
            &metrics,
            "aurum_gateway_upstream_retries_total{upstream=\"auth\"}"
        ),
        Some(2.0)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_upstream_is_502_after_the_retries_and_large_bodies_are_413() {
    // Port 9 (discard) is not listening: every connect fails.
    let app = spawn_app_with(|c| {
        c.upstreams.auth.url = "http://127.0.0.1:9".into();
        c.http.body_limit_bytes = 1024;
    })
    .await;
    let r = app.get("/api/v1/me", &app.token("viewer")).await;
    assert_eq!(r.status(), 502);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let body = "x".repeat(4096);
    let r = app
        .request(
            reqwest::Method::POST,
            "/api/v1/telemetry",
            Some(&app.token("operator")),
        )
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
}
