//! `POST /introspect` (RFC 7662), for confidential clients: whether a token is active and what
//! it grants. Access tokens of any audience; refresh tokens only to the client holding them.

use actix_web::{web, HttpRequest, HttpResponse};
use chrono::Utc;
use serde_json::json;

use super::client_auth::{authenticate, Params};
use super::OAuthError;
use crate::app::AppState;
use crate::crypto;

pub async fn introspect(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, OAuthError> {
    let p = Params::from_form(&req, &body)?;
    let client = authenticate(&state, &req, &p, false).await?;
    let token = p.require("token")?;
    let inactive = json!({ "active": false });
    let answer = if token.matches('.').count() == 2 {
        match state.tokens.verify_access_for(token, None).await {
            Ok(c) => json!({
                "active": true,
                "token_type": "Bearer",
                "scope": c.scope,
                "client_id": c.client_id,
                "sub": c.sub,
                "aud": c.aud,
                "iss": c.iss,
                "exp": c.exp,
                "iat": c.iat,
                "nbf": c.nbf,
                "jti": c.jti,
                "tenant": c.tenant,
                "roles": c.roles,
            }),
            Err(e) => {
                tracing::debug!(error = %e, "introspected token is not active");
                inactive
            }
        }
    } else {
        let found = state
            .grants
            .refresh(&crypto::sha256_hex(token))
            .await
            .map_err(|e| OAuthError::store(&e))?;
        match found {
            Some(r)
                if r.client_id == client.client_id
                    && r.rotated_at.is_none()
                    && r.revoked_at.is_none()
                    && r.expires_at > Utc::now() =>
            {
                json!({
                    "active": true,
                    "token_type": "refresh_token",
                    "scope": r.scope,
                    "client_id": r.client_id,
                    "sub": r.user_id.to_string(),
                    "iss": state.tokens.issuer,
                    "exp": r.expires_at.timestamp(),
                    "iat": r.created_at.timestamp(),
                })
            }
            _ => inactive,
        }
    };
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(answer))
}
