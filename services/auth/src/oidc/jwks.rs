//! `/jwks`: every published signing key; `POST /v1/keys/rotate` (admin) adds a new one.

use actix_web::{web, HttpRequest, HttpResponse};
use aurum_domain::Role;
use serde_json::json;

use crate::app::AppState;
use crate::bearer::Caller;
use crate::security_events::{EventKind, Origin};

pub async fn jwks(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header(("Cache-Control", "public, max-age=60"))
        .content_type("application/jwk-set+json")
        .json(state.keys.jwks())
}

pub async fn rotate(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, aurum_http::Problem> {
    caller.require(&state, Role::Admin, &req).await?;
    let kid = state.keys.rotate().await.map_err(|e| {
        tracing::error!(error = %e, "key rotation failed");
        aurum_http::Problem::internal()
    })?;
    state
        .events
        .record(
            EventKind::KeyRotated,
            caller.subject(),
            &Origin::of(&req, state.settings.trust_forwarded_for),
        )
        .await;
    Ok(HttpResponse::Ok().json(json!({ "kid": kid })))
}
