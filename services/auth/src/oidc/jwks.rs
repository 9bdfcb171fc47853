//! `/jwks`: every published signing key; `POST /v1/keys/rotate` (the platform operator only:
//! the keys sign every tenant's tokens) adds a new one, at most once a minute and never past
//! the JWKS's cap (429 with Retry-After).

use actix_web::http::header::{HeaderValue, RETRY_AFTER};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use aurum_domain::Role;
use serde_json::json;

use crate::app::AppState;
use crate::bearer::Caller;
use crate::keys::KeyError;
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
    caller.require(&state, Role::PlatformAdmin, &req).await?;
    let kid = match state.keys.rotate().await {
        Ok(kid) => kid,
        Err(
            e @ (KeyError::TooSoon { retry_after_s, .. }
            | KeyError::TooManyKeys { retry_after_s, .. }),
        ) => {
            tracing::warn!(error = %e, "key rotation refused");
            let mut res = aurum_http::Problem::new(
                StatusCode::TOO_MANY_REQUESTS,
                "rotation-limited",
                "Key rotation is limited",
            )
            .detail(e.to_string())
            .error_response();
            if let Ok(v) = HeaderValue::from_str(&retry_after_s.to_string()) {
                res.headers_mut().insert(RETRY_AFTER, v);
            }
            return Ok(res);
        }
        Err(e) => {
            tracing::error!(error = %e, "key rotation failed");
            return Err(aurum_http::Problem::internal());
        }
    };
    state
        .events
        .record(
            EventKind::KeyRotated,
            caller.subject(),
            &Origin::of(&req, &state.settings.trusted_proxies),
        )
        .await;
    Ok(HttpResponse::Ok().json(json!({ "kid": kid })))
}
