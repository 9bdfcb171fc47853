//! `GET /logout` (OpenID Connect RP-Initiated Logout): ends the session named by the
//! `id_token_hint` (its refresh tokens are revoked) and returns to a registered
//! `post_logout_redirect_uri`, or shows a signed-out page.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use aurum_ports::auth::RevocationKind;
use uuid::Uuid;

use super::authorize::redirect_with;
use super::client_auth::Params;
use crate::app::AppState;
use crate::security_events::{EventKind, Origin, Subject};

fn page(status: StatusCode, message: &str) -> HttpResponse {
    HttpResponse::build(status)
        .insert_header((
            "Content-Security-Policy",
            "default-src 'none'; frame-ancestors 'none'; base-uri 'none'",
        ))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Cache-Control", "no-store"))
        .content_type("text/html; charset=utf-8")
        .body(format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Signed out</title></head>\
             <body><p>{}</p></body></html>",
            super::authorize::escape(message)
        ))
}

pub async fn logout(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let p = match Params::from_query(&req) {
        Ok(p) => p,
        Err(_) => return page(StatusCode::BAD_REQUEST, "The sign-out request is invalid."),
    };
    let redirect = p.get("post_logout_redirect_uri");
    let hint = match p.get("id_token_hint") {
        Some(h) => match state.tokens.verify_id_token_hint(h).await {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::info!(error = %e, "id_token_hint refused");
                return page(StatusCode::BAD_REQUEST, "The sign-out request is invalid.");
            }
        },
        None => None,
    };
    if redirect.is_some() && hint.is_none() {
        return page(
            StatusCode::BAD_REQUEST,
            "post_logout_redirect_uri needs an id_token_hint.",
        );
    }
    if let Some(c) = &hint {
        if p.get("client_id").is_some_and(|id| id != c.aud) {
            return page(
                StatusCode::BAD_REQUEST,
                "client_id does not match the id_token_hint.",
            );
        }
    }
    // Check the redirect before ending anything.
    if let (Some(uri), Some(c)) = (redirect, &hint) {
        let client = match state.clients.client(&c.aud).await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "storage failed");
                return page(StatusCode::SERVICE_UNAVAILABLE, "Retry later.");
            }
        };
        let registered =
            client.is_some_and(|cl| cl.post_logout_redirect_uris.iter().any(|r| r == uri));
        if !registered {
            return page(
                StatusCode::BAD_REQUEST,
                "The post-logout redirect URI is not registered for this client.",
            );
        }
    }
    if let Some(c) = &hint {
        if let Some(sid) = c.sid.as_deref().and_then(|s| Uuid::parse_str(s).ok()) {
            let ended = match state.grants.revoke_session(sid).await {
                Ok(n) => crate::oidc::revocations::revoke_access_of(
                    &state,
                    RevocationKind::Session,
                    &sid.to_string(),
                )
                .await
                .map(|()| n),
                Err(e) => Err(e),
            };
            match ended {
                Ok(n) => tracing::info!(revoked = n, "session ended"),
                Err(e) => {
                    tracing::error!(error = %e, "cannot end a session");
                    return page(StatusCode::SERVICE_UNAVAILABLE, "Retry later.");
                }
            }
        }
        state
            .events
            .record(
                EventKind::Logout,
                Subject {
                    tenant: c.tenant.clone(),
                    user_id: Uuid::parse_str(&c.sub).ok(),
                    username: None,
                    client_id: Some(c.aud.clone()),
                },
                &Origin::of(&req, &state.settings.trusted_proxies),
            )
            .await;
    }
    match redirect {
        Some(uri) => {
            let mut params = Vec::new();
            if let Some(s) = p.get("state") {
                params.push(("state", s));
            }
            redirect_with(uri, &params)
        }
        None => page(StatusCode::OK, "You are signed out."),
    }
}
