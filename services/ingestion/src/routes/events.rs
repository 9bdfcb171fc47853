//! A machine's maintenance log over HTTP: operators record what happened, viewers read it.

use actix_web::{web, HttpResponse};
use aurum_domain::ingestion::EventDraft;
use aurum_domain::MachineId;
use aurum_http::{Actor, Problem, Tenant};
use aurum_ports::ingestion::{EventError, EventQuery};
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::app::AppState;

/// At most this many events per answer.
const MAX_LIMIT: u32 = 1_000;

fn machine(path: &str) -> Result<MachineId, Problem> {
    MachineId::parse(path).map_err(|e| Problem::bad_request(e.to_string()))
}

pub async fn record(
    tenant: Tenant,
    actor: Actor,
    path: web::Path<String>,
    body: web::Json<EventDraft>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let id = machine(&path)?;
    let event = body
        .into_inner()
        .parse(Utc::now())
        .map_err(Problem::invalid_fields)?;
    match state
        .events
        .record(&tenant.0, &id, &event, actor.as_str())
        .await
    {
        Ok(recorded) => Ok(HttpResponse::Created()
            .insert_header((
                "Location",
                format!("/v1/machines/{id}/events/{}", recorded.id),
            ))
            .json(recorded)),
        Err(EventError::UnknownMachine(id)) => Err(Problem::not_found(format!(
            "machine {id} is not registered"
        ))),
        Err(EventError::Store(e)) => Err(Problem::store(&e, "recording an event")),
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListQuery {
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    limit: Option<u32>,
}

pub async fn list(
    tenant: Tenant,
    path: web::Path<String>,
    query: web::Query<ListQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let id = machine(&path)?;
    let q = query.into_inner();
    if let (Some(from), Some(to)) = (q.from, q.to) {
        if from >= to {
            return Err(Problem::bad_request("from must be before to"));
        }
    }
    let limit = q.limit.unwrap_or(100);
    if !(1..=MAX_LIMIT).contains(&limit) {
        return Err(Problem::bad_request(format!(
            "limit must be between 1 and {MAX_LIMIT}"
        )));
    }
    // Another tenant's machine, or none: the same 404.
    let known = state
        .ingestor
        .lookup(&tenant.0, &id)
        .await
        .map_err(|e| Problem::store(&e, "looking a machine up"))?;
    if known.is_none() {
        return Err(Problem::not_found(format!(
            "machine {id} is not registered"
        )));
    }
    let events = state
        .events
        .list(
            &tenant.0,
            &id,
            &EventQuery {
                from: q.from,
                to: q.to,
                limit,
            },
        )
        .await
        .map_err(|e| Problem::store(&e, "reading the maintenance log"))?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "machine_id": id, "events": events })))
}
