//! CORS, security headers, request ids and trace context, health and readiness.

use crate::helpers::{spawn_app, ORIGIN};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cors_preflight_is_allowed_for_listed_origins_only() {
    let app = spawn_app().await;
    let preflight = |origin: &'static str| {
        app.client
            .request(reqwest::Method::OPTIONS, app.url("/api/v1/machines"))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization, content-type",
            )
            .send()
    };
    let r = preflight(ORIGIN).await.unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    assert_eq!(r.headers()["access-control-allow-origin"], ORIGIN);
    let methods = r.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(methods.contains("POST"), "{methods}");
    let allowed = r.headers()["access-control-allow-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(allowed.contains("authorization"), "{allowed}");

    let r = preflight("https://evil.example").await.unwrap();
    assert!(!r.status().is_success(), "{}", r.status());
    assert!(r.headers().get("access-control-allow-origin").is_none());

    // A simple request from an allowed origin gets the header, and exposed headers.
    let r = app
        .client
        .get(app.url("/api/v1/machines"))
        .bearer_auth(app.token("viewer"))
        .header("origin", ORIGIN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["access-control-allow-origin"], ORIGIN);
    let exposed = r.headers()["access-control-expose-headers"]
        .to_str()
        .unwrap()
        .to_lowercase();
    assert!(
        exposed.contains("ratelimit-remaining") && exposed.contains("x-request-id"),
        "{exposed}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_headers_are_on_every_answer() {
    let app = spawn_app().await;
    let responses = vec![
        app.client.get(app.url("/healthz")).send().await.unwrap(),
        app.client
            .get(app.url("/api/v1/machines"))
            .send()
            .await
            .unwrap(),
        app.get("/api/v1/machines", &app.token("viewer")).await,
        app.get("/api/v1/docs", "x").await,
    ];
    for r in responses {
        let h = r.headers();
        assert!(h["strict-transport-security"]
            .to_str()
            .unwrap()
            .starts_with("max-age="));
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert_eq!(h["x-frame-options"], "DENY");
        assert_eq!(h["referrer-policy"], "no-referrer");
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(csp.contains("default-src 'none'") && csp.contains("frame-ancestors 'none'"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_and_trace_context_are_echoed_and_propagated() {
    let app = spawn_app().await;
    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let r = app
        .client
        .get(app.url("/api/v1/me"))
        .bearer_auth(app.token("viewer"))
        .header("x-request-id", "req-abc.123")
        .header("traceparent", traceparent)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["x-request-id"], "req-abc.123");
    let seen = app.auth.last("/v1/me").unwrap();
    assert_eq!(seen.headers["x-request-id"], "req-abc.123");
    assert_eq!(seen.headers["traceparent"], traceparent);
    assert!(seen.headers.contains_key("x-forwarded-for"));
    assert!(!seen.headers.contains_key("connection") || seen.headers["connection"] != "upgrade");

    // An unsafe id is replaced by a generated one, the same up- and downstream.
    let r = app
        .client
        .get(app.url("/api/v1/me"))
        .bearer_auth(app.token("viewer"))
        .header("x-request-id", "bad id <script>")
        .send()
        .await
        .unwrap();
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_ne!(id, "bad id <script>");
    assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 4);
    assert_eq!(app.auth.last("/v1/me").unwrap().headers["x-request-id"], id);

    // A 401 carries a request id too.
    let r = app.client.get(app.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("x-request-id"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_readiness_and_metrics_answer_without_a_token() {
    let app = spawn_app().await;
    assert_eq!(
        app.client
            .get(app.url("/healthz"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    let status = r.status();
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(status, 200, "{body}");
    let names: Vec<&str> = body["checks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    for n in ["jwks", "ingestion", "prediction", "auth"] {
        assert!(names.contains(&n), "{names:?}");
    }
    let m = app.client.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(m.status(), 200);

    // Without the issuer's keys the gateway is not ready.
    app.issuer.set_available(false);
    let hits = app.issuer.jwks_hits();
    // Within the refetch interval probes reuse the last answer: no fetch each time.
    for _ in 0..5 {
        app.client.get(app.url("/readyz")).send().await.unwrap();
    }
    assert!(app.issuer.jwks_hits() <= hits + 1);
    tokio::time::sleep(std::time::Duration::from_millis(400)).await;
    let r = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(r.status(), 503);
}
