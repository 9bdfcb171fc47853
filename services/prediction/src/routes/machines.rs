//! One machine's predictions: on demand and history.

use actix_web::{web, HttpResponse};
use aurum_domain::{MachineId, TimeRange};
use aurum_http::{Problem, Tenant};
use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;

use crate::app::AppState;
use crate::routes::store_problem;
use crate::scoring::ScoringError;

fn machine_id(raw: &str) -> Result<MachineId, Problem> {
    MachineId::parse(raw).map_err(|e| Problem::bad_request(format!("machine id: {e}")))
}

/// `POST /v1/machines/{id}/predict`: scores the machine's latest features with the active
/// model now.
pub async fn predict(
    state: web::Data<AppState>,
    tenant: Tenant,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let id = machine_id(&path)?;
    match state.scorer.predict_now(&tenant.0, &id).await {
        Ok(p) => Ok(HttpResponse::Ok().json(p)),
        Err(ScoringError::UnknownMachine(m)) => {
            Err(Problem::not_found(format!("machine {m} is unknown")))
        }
        Err(ScoringError::NoModel) => Err(Problem::new(
            actix_web::http::StatusCode::SERVICE_UNAVAILABLE,
            "no-model",
            "No model is active",
        )
        .detail("register a model and activate it: POST /v1/models, then POST /v1/models/{version}/activate")),
        Err(ScoringError::Unscorable { reason, .. }) => Err(Problem::unprocessable(reason)),
        Err(ScoringError::Store(e)) => Err(store_problem(&e)),
        Err(e @ ScoringError::AllRejected(_)) => Err(Problem::unprocessable(e.to_string())),
    }
}

#[derive(Debug, Deserialize)]
pub struct RangeQuery {
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    limit: Option<usize>,
}

/// The most predictions one request returns.
const MAX_PREDICTIONS: usize = 10_000;

/// `GET /v1/machines/{id}/predictions?from=&to=`: the history, oldest first; the last 24 h
/// by default.
pub async fn history(
    state: web::Data<AppState>,
    tenant: Tenant,
    path: web::Path<String>,
    query: web::Query<RangeQuery>,
) -> Result<HttpResponse, Problem> {
    let id = machine_id(&path)?;
    let to = query.to.unwrap_or_else(Utc::now);
    let from = query.from.unwrap_or(to - TimeDelta::hours(24));
    let range = TimeRange::new(from, to).map_err(|e| Problem::bad_request(e.to_string()))?;
    let limit = query
        .limit
        .unwrap_or(MAX_PREDICTIONS)
        .clamp(1, MAX_PREDICTIONS);
    let machine = state
        .store
        .find(&tenant.0, &id)
        .await
        .map_err(|e| store_problem(&e))?
        .ok_or_else(|| Problem::not_found(format!("machine {id} is unknown")))?;
    let predictions = state
        .store
        .predictions(machine.key, range, limit)
        .await
        .map_err(|e| store_problem(&e))?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "machine_id": id,
        "from": from,
        "to": to,
        "predictions": predictions,
    })))
}
