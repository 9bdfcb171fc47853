//! `/metrics` on a port of its own: the monitoring network is opened to that port alone, so
//! the API port must not answer it, and the metrics port must answer nothing else.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use actix_web::middleware::from_fn;
use actix_web::{web, App, HttpResponse};
use aurum_http::{HttpMetrics, Ops, Readiness, RunningServer};
use prometheus::Registry;

async fn start(metrics_port: Option<u16>) -> (u16, Option<u16>) {
    let registry = Registry::new();
    let http_metrics = HttpMetrics::register(&registry).unwrap();
    let mut ops = Ops::new(Readiness::default(), registry, http_metrics, 1024);
    let metrics = ops.metrics_listener("127.0.0.1", metrics_port).unwrap();
    let (listener, port) = aurum_http::bind("127.0.0.1", 0).unwrap();
    let server = aurum_http::start(
        move || {
            App::new()
                .wrap(from_fn(HttpMetrics::observe))
                .configure(|c| ops.configure(c))
                .route("/v1/things", web::get().to(HttpResponse::Ok))
        },
        listener,
        1,
    )
    .unwrap();
    let running = RunningServer::new(server, port, Vec::new()).with_metrics(metrics);
    let metrics_port = running.metrics_port();
    tokio::spawn(running.run_until_stopped());
    (port, metrics_port)
}

async fn status(port: u16, path: &str) -> u16 {
    reqwest::get(format!("http://127.0.0.1:{port}{path}"))
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn with_a_metrics_port_the_api_port_does_not_serve_metrics_nor_the_metrics_port_the_api() {
    let (api, metrics) = start(Some(0)).await;
    let metrics = metrics.expect("a metrics listener");
    assert_ne!(api, metrics);
    assert_eq!(status(api, "/v1/things").await, 200);
    assert_eq!(status(api, "/healthz").await, 200);
    assert_eq!(status(api, "/metrics").await, 404);
    assert_eq!(status(metrics, "/metrics").await, 200);
    assert_eq!(status(metrics, "/v1/things").await, 404);
    assert_eq!(status(metrics, "/healthz").await, 404);
    let body = reqwest::get(format!("http://127.0.0.1:{metrics}/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(body.contains("http_requests_total"), "{body}");
}

#[tokio::test]
async fn without_one_metrics_are_on_the_api_port() {
    let (api, metrics) = start(None).await;
    assert_eq!(metrics, None);
    assert_eq!(status(api, "/metrics").await, 200);
}
