//! Alerts: list, acknowledge, resolve, and a planner's verdict on them.

use actix_web::{web, HttpResponse};
use aurum_domain::prediction::{AlertState, Severity, Verdict};
use aurum_domain::MachineId;
use aurum_http::{Actor, Problem, Tenant};
use aurum_ports::prediction::{Alert, AlertFeedback, AlertFilter, AlertTransition};
use chrono::Utc;
use serde::Deserialize;

use crate::app::AppState;
use crate::routes::store_problem;

#[derive(Debug, Deserialize)]
pub struct ListQuery {
    state: Option<String>,
    severity: Option<String>,
    machine: Option<String>,
    limit: Option<usize>,
}

const MAX_ALERTS: usize = 1_000;

/// `GET /v1/alerts?state=&severity=&machine=`: newest first.
pub async fn list(
    state: web::Data<AppState>,
    tenant: Tenant,
    query: web::Query<ListQuery>,
) -> Result<HttpResponse, Problem> {
    let q = query.into_inner();
    let filter = AlertFilter {
        state: q
            .state
            .as_deref()
            .map(str::parse::<AlertState>)
            .transpose()
            .map_err(|e| Problem::bad_request(e.to_string()))?,
        severity: q
            .severity
            .as_deref()
            .map(str::parse::<Severity>)
            .transpose()
            .map_err(|e| Problem::bad_request(e.to_string()))?,
        machine: q
            .machine
            .as_deref()
            .map(MachineId::parse)
            .transpose()
            .map_err(|e| Problem::bad_request(format!("machine: {e}")))?,
        limit: q.limit.unwrap_or(MAX_ALERTS).clamp(1, MAX_ALERTS),
    };
    let alerts = state
        .alerts
        .list(&tenant.0, &filter)
        .await
        .map_err(|e| store_problem(&e))?;
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "alerts": alerts,
        "feedback": FeedbackCounts::of(&alerts),
    })))
}

/// How many of the listed alerts planners confirmed, rejected, or have not judged yet.
#[derive(Debug, Default, serde::Serialize)]
struct FeedbackCounts {
    confirmed: usize,
    rejected: usize,
    unreviewed: usize,
}

impl FeedbackCounts {
    fn of(alerts: &[Alert]) -> Self {
        let mut c = Self::default();
        for a in alerts {
            match a.feedback.as_ref().map(|f| f.verdict) {
                Some(Verdict::Confirmed) => c.confirmed += 1,
                Some(Verdict::Rejected) => c.rejected += 1,
                None => c.unreviewed += 1,
            }
        }
        c
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeedbackBody {
    verdict: String,
    event_id: Option<i64>,
    note: Option<String>,
}

/// `POST /v1/alerts/{id}/feedback` with `{"verdict": "confirmed"|"rejected", "event_id": N,
/// "note": "..."}`: in any state; a second verdict replaces the first.
pub async fn feedback(
    state: web::Data<AppState>,
    tenant: Tenant,
    actor: Actor,
    path: web::Path<i64>,
    body: web::Json<FeedbackBody>,
) -> Result<HttpResponse, Problem> {
    let id = path.into_inner();
    let body = body.into_inner();
    let mut errors = Vec::new();
    let verdict = Verdict::parse(&body.verdict);
    if verdict.is_none() {
        errors.push(aurum_domain::FieldError {
            field: "verdict".into(),
            message: "must be confirmed or rejected".into(),
        });
    }
    if body.event_id.is_some_and(|e| e < 1) {
        errors.push(aurum_domain::FieldError {
            field: "event_id".into(),
            message: "must be a maintenance event's id (1 or more)".into(),
        });
    }
    let note = body
        .note
        .map(|n| n.trim().to_owned())
        .filter(|n| !n.is_empty());
    if note
        .as_deref()
        .is_some_and(|n| n.chars().count() > MAX_NOTE_CHARS)
    {
        errors.push(aurum_domain::FieldError {
            field: "note".into(),
            message: format!("must be at most {MAX_NOTE_CHARS} characters"),
        });
    }
    let Some(verdict) = verdict.filter(|_| errors.is_empty()) else {
        return Err(Problem::invalid_fields(errors));
    };
    let given = AlertFeedback {
        verdict,
        event_id: body.event_id,
        by: actor.as_str().to_owned(),
        at: Utc::now(),
        note,
    };
    let t = state
        .alerts
        .give_feedback(&tenant.0, id, &given)
        .await
        .map_err(|e| store_problem(&e))?;
    outcome(t, id)
}

#[derive(Debug, Default, Deserialize)]
pub struct ResolveBody {
    note: Option<String>,
}

const MAX_NOTE_CHARS: usize = 2_000;

fn outcome(t: AlertTransition, id: i64) -> Result<HttpResponse, Problem> {
    match t {
        AlertTransition::Done(alert) => Ok(HttpResponse::Ok().json(alert)),
        AlertTransition::NotFound => Err(Problem::not_found(format!("alert {id} is unknown"))),
        AlertTransition::Refused(alert) => Err(Problem::conflict(format!(
            "alert {id} is {} already",
            alert.state
        ))),
    }
}

/// `POST /v1/alerts/{id}/ack`
pub async fn acknowledge(
    state: web::Data<AppState>,
    tenant: Tenant,
    actor: Actor,
    path: web::Path<i64>,
) -> Result<HttpResponse, Problem> {
    let id = path.into_inner();
    let t = state
        .alerts
        .acknowledge(&tenant.0, id, actor.as_str(), Utc::now())
        .await
        .map_err(|e| store_problem(&e))?;
    outcome(t, id)
}

/// `POST /v1/alerts/{id}/resolve` with an optional `{"note": "..."}`.
pub async fn resolve(
    state: web::Data<AppState>,
    tenant: Tenant,
    actor: Actor,
    path: web::Path<i64>,
    body: Option<web::Json<ResolveBody>>,
) -> Result<HttpResponse, Problem> {
    let id = path.into_inner();
    let note = body.and_then(|b| b.into_inner().note);
    if note
        .as_deref()
        .is_some_and(|n| n.chars().count() > MAX_NOTE_CHARS)
    {
        return Err(Problem::bad_request(format!(
            "the note is longer than {MAX_NOTE_CHARS} characters"
        )));
    }
    let t = state
        .alerts
        .resolve(&tenant.0, id, actor.as_str(), note.as_deref(), Utc::now())
        .await
        .map_err(|e| store_problem(&e))?;
    outcome(t, id)
}
