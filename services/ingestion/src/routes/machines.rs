//! The machine registry over HTTP.

use actix_web::{web, HttpResponse};
use aurum_domain::{MachineId, NewMachine, ProfileId, SiteId};
use aurum_http::{Problem, Tenant};
use aurum_ports::ingestion::RegisterError;
use serde::Deserialize;

use crate::app::AppState;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegisterBody {
    id: String,
    /// The machine's profile: a built-in one (`haul_truck`) or one of the tenant's.
    profile: Option<String>,
    /// The older name for a built-in profile, still accepted.
    machine_type: Option<String>,
    site: Option<String>,
    name: Option<String>,
}

impl RegisterBody {
    fn parse(self, tenant: Tenant) -> Result<NewMachine, Problem> {
        let bad = |e: String| Problem::bad_request(e);
        let name = self
            .name
            .map(|n| n.trim().to_owned())
            .filter(|n| !n.is_empty());
        if name.as_ref().is_some_and(|n| n.chars().count() > 200) {
            return Err(bad("name is longer than 200 characters".into()));
        }
        let profile = match (self.profile.as_deref(), self.machine_type.as_deref()) {
            (None, None) => return Err(bad("profile is required".into())),
            (Some(p), Some(t)) if p != t => {
                return Err(bad(format!(
                    "profile {p:?} and machine_type {t:?} disagree; send profile alone"
                )))
            }
            (Some(p), _) | (None, Some(p)) => {
                ProfileId::parse(p).map_err(|e| bad(e.to_string()))?
            }
        };
        Ok(NewMachine {
            tenant: tenant.0,
            id: MachineId::parse(&self.id).map_err(|e| bad(e.to_string()))?,
            profile,
            site: self
                .site
                .as_deref()
                .map(SiteId::parse)
                .transpose()
                .map_err(|e| bad(e.to_string()))?,
            name,
        })
    }
}

pub async fn register(
    tenant: Tenant,
    body: web::Json<RegisterBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let new = body.into_inner().parse(tenant)?;
    match state.ingestor.registry().register(&new).await {
        Ok(m) => {
            state.ingestor.forget(&new.tenant, &new.id);
            Ok(HttpResponse::Created()
                .insert_header(("Location", format!("/v1/machines/{}", new.id)))
                .json(m.machine))
        }
        Err(RegisterError::AlreadyExists(id)) => Err(Problem::conflict(format!(
            "machine {id} is already registered"
        ))),
        Err(RegisterError::UnknownProfile(p)) => {
            Err(Problem::invalid_fields(vec![aurum_domain::FieldError {
                field: "profile".into(),
                message: format!(
                    "there is no profile {p}: create it first (POST /v1/profiles) or use a built-in one"
                ),
            }]))
        }
        Err(RegisterError::Store(e)) => Err(Problem::store(&e, "registering a machine")),
    }
}

pub async fn list(tenant: Tenant, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let machines = state
        .ingestor
        .registry()
        .list(&tenant.0)
        .await
        .map_err(|e| Problem::store(&e, "reading the machine registry"))?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "machines": machines })))
}

pub async fn get(
    tenant: Tenant,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let id = MachineId::parse(&path).map_err(|e| Problem::bad_request(e.to_string()))?;
    match state
        .ingestor
        .registry()
        .find(&tenant.0, &id)
        .await
        .map_err(|e| Problem::store(&e, "reading the machine registry"))?
    {
        Some(m) => {
            let profile = state
                .ingestor
                .profiles()
                .history(&tenant.0, &m.machine.profile)
                .await
                .map_err(|e| Problem::store(&e, "reading the machine's profile"))?;
            Ok(HttpResponse::Ok().json(serde_json::json!({
                "metrics": profile.as_ref().map(|h| &h.latest().spec.metrics),
                "machine": m.machine,
            })))
        }
        None => Err(Problem::not_found(format!(
            "machine {id} is not registered"
        ))),
    }
}
