//! `GET /v1/fleet/health`: every machine's latest risk, RUL and open alerts, worst first.

use actix_web::{web, HttpResponse};
use aurum_http::{Problem, Tenant};
use aurum_ports::prediction::FleetEntry;
use serde::Serialize;

use crate::app::AppState;
use crate::routes::store_problem;

/// Serialised straight from the rows: no intermediate JSON tree for thousands of machines.
#[derive(Debug, Serialize)]
struct FleetHealth {
    model_version: Option<String>,
    count: usize,
    machines: Vec<FleetEntry>,
}

pub async fn health(state: web::Data<AppState>, tenant: Tenant) -> Result<HttpResponse, Problem> {
    let machines = state
        .store
        .fleet(&tenant.0)
        .await
        .map_err(|e| store_problem(&e))?;
    Ok(HttpResponse::Ok().json(FleetHealth {
        model_version: state.models.current().map(|m| m.version().to_owned()),
        count: machines.len(),
        machines,
    }))
}
