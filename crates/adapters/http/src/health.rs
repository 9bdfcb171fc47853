//! `/healthz` (the process is alive) and `/readyz` (its dependencies answer).

use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, HttpResponse};
use aurum_ports::{HealthCheck, HealthStatus};
use serde_json::json;

/// The checks `/readyz` runs, registered as app data.
#[derive(Debug, Clone, Default)]
pub struct Readiness {
    checks: Vec<Arc<dyn HealthCheck>>,
}

impl Readiness {
    pub fn with(mut self, check: Arc<dyn HealthCheck>) -> Self {
        self.checks.push(check);
        self
    }

    /// Runs every check concurrently, each bounded so a hung dependency cannot hang `/readyz`.
    pub async fn run(&self) -> Vec<HealthStatus> {
        let runs = self.checks.iter().map(|c| async move {
            match tokio::time::timeout(Duration::from_secs(2), c.check()).await {
                Ok(s) => s,
                Err(_) => HealthStatus {
                    name: "timeout",
                    ready: false,
                    detail: Some("a readiness check timed out".into()),
                },
            }
        });
        futures::future::join_all(runs).await
    }
}

pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(json!({ "status": "ok" }))
}

pub async fn readyz(readiness: web::Data<Readiness>) -> HttpResponse {
    let checks = readiness.run().await;
    let ready = checks.iter().all(|c| c.ready);
    let body = json!({ "status": if ready { "ready" } else { "not_ready" }, "checks": checks });
    if ready {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}
