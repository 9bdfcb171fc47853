//! `POST /revoke` (RFC 7009): refresh tokens (with their whole family) and access tokens (by
//! `jti`, until they expire). Unknown tokens are answered 200 as the RFC asks.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::{TimeZone, Utc};

use super::client_auth::{authenticate, Params};
use super::OAuthError;
use crate::app::AppState;
use crate::crypto;

pub async fn revoke(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, OAuthError> {
    let p = Params::from_form(&req, &body)?;
    let client = authenticate(&state, &req, &p, true).await?;
    let token = p.require("token")?;
    let hint = p.get("token_type_hint");
    match hint {
        None | Some("refresh_token") | Some("access_token") => {}
        Some(other) => {
            return Err(OAuthError::unsupported_token_type(format!(
                "token_type_hint {other} is not supported"
            )))
        }
    }
    let done = HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .finish();
    // A JWT has two dots; our refresh tokens never do.
    if token.matches('.').count() != 2 {
        let found = state
            .grants
            .refresh(&crypto::sha256_hex(token))
            .await
            .map_err(|e| OAuthError::store(&e))?;
        if let Some(r) = found.filter(|r| r.client_id == client.client_id) {
            state
                .grants
                .revoke_family(r.family_id)
                .await
                .map_err(|e| OAuthError::store(&e))?;
            tracing::info!(client_id = %client.client_id, "refresh token family revoked");
        }
        return Ok(done);
    }
    if let Ok(claims) = state.tokens.access_token_for_revocation(token).await {
        if claims.client_id == client.client_id {
            let exp = Utc
                .timestamp_opt(claims.exp, 0)
                .single()
                .unwrap_or_else(Utc::now);
            if exp > Utc::now() {
                state
                    .grants
                    .revoke_access_token(&claims.jti, exp)
                    .await
                    .map_err(|e| OAuthError::store(&e))?;
                tracing::info!(client_id = %client.client_id, "access token revoked");
            }
        }
    }
    Ok(done)
}
