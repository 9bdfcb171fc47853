//! Machine profiles over HTTP: the built-in ones (read-only) and the tenant's own, each change
//! a new version.

use actix_web::{web, HttpResponse};
use aurum_domain::{FieldError, Profile, ProfileDraft, ProfileId, ProfileSpec};
use aurum_http::{Actor, Problem, Tenant};
use aurum_ports::ingestion::ProfileError;
use serde::{Deserialize, Serialize};

use crate::app::AppState;

/// `POST /v1/profiles`: the id and the profile itself (the fields of a `ProfileDraft`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateBody {
    id: Option<String>,
    name: Option<String>,
    description: Option<String>,
    metrics: Option<Vec<aurum_domain::profile::MetricDraft>>,
    feature_window_s: Option<u64>,
}

#[derive(Serialize)]
struct ProfileList<'a> {
    profiles: Vec<&'a Profile>,
}

#[derive(Serialize)]
struct ProfileView<'a> {
    profile: &'a Profile,
    versions: &'a [Profile],
}

fn parse_id(raw: &str) -> Result<ProfileId, Problem> {
    ProfileId::parse(raw).map_err(|e| {
        Problem::invalid_fields(vec![FieldError {
            field: "id".into(),
            message: e.to_string(),
        }])
    })
}

fn read_only(id: &ProfileId) -> Problem {
    Problem::conflict(format!(
        "{id} is a built-in profile: it cannot be changed or deleted; create a profile of your own"
    ))
}

fn store_problem(e: ProfileError, doing: &str) -> Problem {
    match e {
        ProfileError::AlreadyExists(id) => {
            Problem::conflict(format!("profile {id} already exists"))
        }
        ProfileError::NotFound(id) => Problem::not_found(format!("profile {id} does not exist")),
        ProfileError::InUse { id, machines } => Problem::conflict(format!(
            "profile {id} is used by {machines} machine(s); it can be deleted once none does"
        )),
        ProfileError::Store(e) => Problem::store(&e, doing),
    }
}

fn spec(draft: ProfileDraft) -> Result<ProfileSpec, Problem> {
    draft.parse().map_err(Problem::invalid_fields)
}

pub async fn list(tenant: Tenant, state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let catalogue = state.ingestor.profiles();
    let own = catalogue
        .store()
        .list(&tenant.0)
        .await
        .map_err(|e| Problem::store(&e, "reading the profiles"))?;
    Ok(HttpResponse::Ok().json(ProfileList {
        profiles: catalogue.builtins().chain(own.iter()).collect(),
    }))
}

pub async fn get(
    tenant: Tenant,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let id = parse_id(&path)?;
    let history = state
        .ingestor
        .profiles()
        .history(&tenant.0, &id)
        .await
        .map_err(|e| Problem::store(&e, "reading a profile"))?
        .ok_or_else(|| Problem::not_found(format!("profile {id} does not exist")))?;
    Ok(HttpResponse::Ok().json(ProfileView {
        profile: history.latest(),
        versions: history.versions(),
    }))
}

pub async fn create(
    tenant: Tenant,
    actor: Actor,
    body: web::Json<CreateBody>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let body = body.into_inner();
    let id = body.id.as_deref().map(parse_id);
    let draft = ProfileDraft {
        name: body.name,
        description: body.description,
        metrics: body.metrics,
        feature_window_s: body.feature_window_s,
    };
    // Every field's problem at once, the id's among them.
    let (id, spec) = match (id, draft.parse()) {
        (Some(Ok(id)), Ok(spec)) => (id, spec),
        (id, parsed) => {
            let mut errors = match id {
                None => vec![FieldError {
                    field: "id".into(),
                    message: "is required".into(),
                }],
                // parse_id's problem names the field already.
                Some(Err(p)) => p.errors.into_vec(),
                Some(Ok(_)) => Vec::new(),
            };
            errors.extend(parsed.err().unwrap_or_default());
            return Err(Problem::invalid_fields(errors));
        }
    };
    let catalogue = state.ingestor.profiles();
    if catalogue.builtin(&id).is_some() {
        return Err(Problem::conflict(format!(
            "{id} is the name of a built-in profile; choose another id"
        )));
    }
    let created = catalogue
        .store()
        .create(&tenant.0, &id, &spec, actor.as_str())
        .await
        .map_err(|e| store_problem(e, "creating a profile"))?;
    catalogue.forget(&tenant.0, &id);
    Ok(HttpResponse::Created()
        .insert_header(("Location", format!("/v1/profiles/{id}")))
        .json(created))
}

pub async fn update(
    tenant: Tenant,
    actor: Actor,
    path: web::Path<String>,
    body: web::Json<ProfileDraft>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let id = parse_id(&path)?;
    let catalogue = state.ingestor.profiles();
    if catalogue.builtin(&id).is_some() {
        return Err(read_only(&id));
    }
    let spec = spec(body.into_inner())?;
    let updated = catalogue
        .store()
        .update(&tenant.0, &id, &spec, actor.as_str())
        .await
        .map_err(|e| store_problem(e, "changing a profile"))?;
    catalogue.forget(&tenant.0, &id);
    Ok(HttpResponse::Ok().json(updated))
}

pub async fn delete(
    tenant: Tenant,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, Problem> {
    let id = parse_id(&path)?;
    let catalogue = state.ingestor.profiles();
    if catalogue.builtin(&id).is_some() {
        return Err(read_only(&id));
    }
    catalogue
        .store()
        .delete(&tenant.0, &id)
        .await
        .map_err(|e| store_problem(e, "deleting a profile"))?;
    catalogue.forget(&tenant.0, &id);
    Ok(HttpResponse::NoContent().finish())
}
