//! `GET /v1/fleet/health`: every machine's latest risk, RUL and open alerts, worst first.

use actix_web::{web, HttpResponse};
use aurum_http::{Problem, Tenant};

use crate::app::AppState;
use crate::routes::store_problem;

pub async fn health(state: web::Data<AppState>, tenant: Tenant) -> Result<HttpResponse, Problem> {
    let machines = state
        .store
        .fleet(&tenant.0)
        .await
        .map_err(|e| store_problem(&e))?;
    let model = state.models.current().map(|m| m.version().to_owned());
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "model_version": model,
        "count": machines.len(),
        "machines": machines,
    })))
}
