//! `GET/POST /userinfo` (OpenID Connect Core §5.3): claims about the user behind a Bearer
//! access token, as its scope allows.

use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map};

use super::OAuthError;
use crate::app::AppState;
use crate::bearer::bearer_token;

pub async fn userinfo(
    state: web::Data<AppState>,
    req: HttpRequest,
) -> Result<HttpResponse, OAuthError> {
    let token = bearer_token(&req)
        .ok_or_else(|| OAuthError::invalid_token("a Bearer token is required"))?;
    let claims = state.tokens.verify_access(&token).await.map_err(|e| {
        tracing::debug!(error = %e, "userinfo token refused");
        OAuthError::invalid_token("the access token is invalid, expired or revoked")
    })?;
    let id = claims
        .user_id()
        .ok_or_else(|| OAuthError::invalid_token("not a user's token"))?;
    let user = state
        .users
        .user(id)
        .await
        .map_err(|e| OAuthError::store(&e))?
        .filter(|u| !u.disabled && u.anonymised_at.is_none())
        .ok_or_else(|| OAuthError::invalid_token("the user can no longer sign in"))?;
    let mut m = Map::new();
    m.insert("sub".into(), json!(user.id.to_string()));
    m.insert("tenant".into(), json!(user.tenant.as_str()));
    m.insert(
        "roles".into(),
        json!(user.roles.iter().map(|r| r.as_str()).collect::<Vec<_>>()),
    );
    if claims.has_scope("profile") {
        m.insert("preferred_username".into(), json!(user.username));
        if let Some(n) = &user.display_name {
            m.insert("name".into(), json!(n));
        }
        m.insert("updated_at".into(), json!(user.updated_at.timestamp()));
    }
    if claims.has_scope("email") {
        if let Some(e) = &user.email {
            m.insert("email".into(), json!(e));
            m.insert("email_verified".into(), json!(false));
        }
    }
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(m))
}
