//! The model registry: list, upload, activate.

use actix_web::{web, HttpRequest, HttpResponse};
use aurum_http::{read_body, Actor, Problem};

use crate::app::AppState;
use crate::models::ModelServiceError;
use crate::routes::store_problem;

fn model_problem(e: ModelServiceError) -> Problem {
    match e {
        ModelServiceError::Invalid(e) => Problem::unprocessable(e.to_string()),
        ModelServiceError::VersionTaken(_) => Problem::conflict(e.to_string()),
        ModelServiceError::UnknownVersion(_) => Problem::not_found(e.to_string()),
        ModelServiceError::Store(e) => store_problem(&e),
    }
}

/// `GET /v1/models`
pub async fn list(state: web::Data<AppState>) -> Result<HttpResponse, Problem> {
    let models = state.models.list().await.map_err(|e| store_problem(&e))?;
    let active = state.models.current().map(|m| m.version().to_owned());
    Ok(HttpResponse::Ok().json(serde_json::json!({
        "serving": active,
        "models": models,
    })))
}

/// `POST /v1/models`: registers an artifact (the file `aurum-prediction train` writes).
pub async fn register(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Payload,
) -> Result<HttpResponse, Problem> {
    let bytes = read_body(&req, body, state.max_model_bytes).await?;
    let version = state.models.register(&bytes).await.map_err(model_problem)?;
    Ok(HttpResponse::Created().json(serde_json::json!({ "version": version })))
}

/// `POST /v1/models/{version}/activate`: a model that fails to load is refused and the
/// current one keeps serving.
pub async fn activate(
    state: web::Data<AppState>,
    actor: Actor,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let version = path.into_inner();
    state
        .models
        .activate(&version, actor.as_str())
        .await
        .map_err(model_problem)?;
    state.metrics.model_loaded.set(1);
    Ok(HttpResponse::Ok().json(serde_json::json!({ "active": version })))
}
