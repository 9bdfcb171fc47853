//! `POST /token`: authorization_code (PKCE), refresh_token (rotation with reuse detection) and
//! client_credentials (audience-restricted).
//!
//! Refresh tokens: the code flow returns one whenever the client is allowed the
//! `refresh_token` grant (whether or not `offline_access` was asked for).

use actix_web::{web, HttpRequest, HttpResponse};
use aurum_ports::auth::{
    ClientRecord, CodeRedemption, RefreshRotation, RefreshTokenRecord, UserRecord,
};
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Map, Value};
use uuid::Uuid;

use super::client_auth::{authenticate, Params};
use super::OAuthError;
use crate::app::AppState;
use crate::crypto;
use crate::security_events::{EventKind, Origin, Subject};
use crate::tokens::{AccessClaims, Audience, IdClaims};

pub const DEFAULT_AUDIENCE: &str = "aurumai-api";

pub async fn token(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> Result<HttpResponse, OAuthError> {
    let p = Params::from_form(&req, &body)?;
    let grant = p.require("grant_type")?.to_owned();
    if !aurum_ports::auth::GRANT_TYPES.contains(&grant.as_str()) {
        return Err(OAuthError::unsupported_grant_type(format!(
            "grant_type {grant} is not supported"
        )));
    }
    let allow_public = grant != "client_credentials";
    let client = authenticate(&state, &req, &p, allow_public).await?;
    if !client.allows_grant(&grant) {
        return Err(OAuthError::unauthorized_client(format!(
            "this client may not use the {grant} grant"
        )));
    }
    let body = match grant.as_str() {
        "authorization_code" => code_grant(&state, &req, &p, &client).await?,
        "refresh_token" => refresh_grant(&state, &req, &p, &client).await?,
        _ => client_credentials(&state, &p, &client)?,
    };
    state
        .metrics
        .tokens_issued
        .with_label_values(&[grant.as_str()])
        .inc();
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Pragma", "no-cache"))
        .json(body))
}

fn sign_failed(e: impl std::fmt::Display) -> OAuthError {
    tracing::error!(error = %e, "cannot sign a token");
    OAuthError::server_error()
}

/// A user's access token for the public API.
fn user_access_token(
    state: &AppState,
    client: &ClientRecord,
    user: &UserRecord,
    scope: &str,
    session: Uuid,
    now: DateTime<Utc>,
) -> Result<String, OAuthError> {
    let claims = AccessClaims {
        iss: state.tokens.issuer.clone(),
        sub: user.id.to_string(),
        aud: Audience::One(DEFAULT_AUDIENCE.into()),
        exp: (now + Duration::seconds(state.settings.access_token_ttl_s as i64)).timestamp(),
        iat: now.timestamp(),
        nbf: now.timestamp(),
        jti: Uuid::new_v4().to_string(),
        client_id: client.client_id.clone(),
        scope: scope.to_owned(),
        tenant: Some(user.tenant.as_str().to_owned()),
        roles: user.roles.iter().map(|r| r.as_str().to_owned()).collect(),
        sid: Some(session.to_string()),
    };
    state.tokens.sign_access(&claims).map_err(sign_failed)
}

#[allow(clippy::too_many_arguments)]
fn id_token(
    state: &AppState,
    client: &ClientRecord,
    user: &UserRecord,
    scope: &str,
    session: Uuid,
    auth_time: DateTime<Utc>,
    nonce: Option<String>,
    now: DateTime<Utc>,
) -> Result<String, OAuthError> {
    let has = |s: &str| scope.split_whitespace().any(|x| x == s);
    let claims = IdClaims {
        iss: state.tokens.issuer.clone(),
        sub: user.id.to_string(),
        aud: client.client_id.clone(),
        exp: (now + Duration::seconds(state.settings.id_token_ttl_s as i64)).timestamp(),
        iat: now.timestamp(),
        auth_time: auth_time.timestamp(),
        nonce,
        sid: Some(session.to_string()),
        azp: Some(client.client_id.clone()),
        name: if has("profile") {
            user.display_name.clone()
        } else {
            None
        },
        preferred_username: has("profile").then(|| user.username.clone()),
        email: if has("email") {
            user.email.clone()
        } else {
            None
        },
        tenant: Some(user.tenant.as_str().to_owned()),
        roles: Some(user.roles.iter().map(|r| r.as_str().to_owned()).collect()),
    };
    state.tokens.sign_id(&claims).map_err(sign_failed)
}

/// The user behind a grant, while they may still sign in.
async fn active_user(state: &AppState, id: Uuid) -> Result<UserRecord, OAuthError> {
    let user = state
        .users
        .user(id)
        .await
        .map_err(|e| OAuthError::store(&e))?;
    user.filter(|u| !u.disabled && u.anonymised_at.is_none())
        .ok_or_else(|| OAuthError::invalid_grant("the user can no longer sign in"))
}

#[allow(clippy::too_many_arguments)]
fn new_refresh(
    state: &AppState,
    family: Uuid,
    client: &ClientRecord,
    user: Uuid,
    session: Uuid,
    scope: &str,
    auth_time: DateTime<Utc>,
    now: DateTime<Utc>,
) -> (String, RefreshTokenRecord) {
    let token = crypto::random_token();
    let record = RefreshTokenRecord {
        token_hash: crypto::sha256_hex(&token),
        family_id: family,
        client_id: client.client_id.clone(),
        user_id: user,
        session_id: session,
        scope: scope.to_owned(),
        auth_time,
        created_at: now,
        expires_at: now + Duration::seconds(state.settings.refresh_token_ttl_s as i64),
        rotated_at: None,
        revoked_at: None,
    };
    (token, record)
}

fn response(
    state: &AppState,
    access: String,
    scope: &str,
    refresh: Option<String>,
    id: Option<String>,
) -> Value {
    let mut m = Map::new();
    m.insert("access_token".into(), json!(access));
    m.insert("token_type".into(), json!("Bearer"));
    m.insert(
        "expires_in".into(),
        json!(state.settings.access_token_ttl_s),
    );
    m.insert("scope".into(), json!(scope));
    if let Some(r) = refresh {
        m.insert("refresh_token".into(), json!(r));
    }
    if let Some(i) = id {
        m.insert("id_token".into(), json!(i));
    }
    Value::Object(m)
}

async fn code_grant(
    state: &AppState,
    req: &HttpRequest,
    p: &Params,
    client: &ClientRecord,
) -> Result<Value, OAuthError> {
    let code = p.require("code")?;
    let now = Utc::now();
    let redeemed = state
        .grants
        .redeem_code(&crypto::sha256_hex(code), now)
        .await
        .map_err(|e| OAuthError::store(&e))?;
    let c = match redeemed {
        CodeRedemption::Unknown => {
            return Err(OAuthError::invalid_grant("unknown authorization code"))
        }
        CodeRedemption::Replayed(c) => {
            // RFC 6749 §4.1.2: a code used twice revokes what it granted.
            let revoked = state
                .grants
                .revoke_family(c.family_id)
                .await
                .map_err(|e| OAuthError::store(&e))?;
            tracing::warn!(
                revoked,
                "authorization code replayed; its grant was revoked"
            );
            state
                .events
                .record(
                    EventKind::CodeReuse,
                    Subject {
                        user_id: Some(c.user_id),
                        client_id: Some(c.client_id.clone()),
                        ..Subject::default()
                    },
                    &Origin::of(req, &state.settings.trusted_proxies),
                )
                .await;
            return Err(OAuthError::invalid_grant(
                "the authorization code was already used",
            ));
        }
        CodeRedemption::Redeemed(c) => c,
    };
    if c.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "the code was issued to another client",
        ));
    }
    if c.expires_at <= now {
        return Err(OAuthError::invalid_grant("the authorization code expired"));
    }
    if p.get("redirect_uri") != Some(c.redirect_uri.as_str()) {
        return Err(OAuthError::invalid_grant(
            "redirect_uri differs from the authorization request",
        ));
    }
    let Some(verifier) = p.get("code_verifier") else {
        return Err(OAuthError::invalid_grant(
            "code_verifier is required (PKCE)",
        ));
    };
    let computed = crypto::s256(verifier);
    if !(43..=128).contains(&verifier.len())
        || !crypto::constant_time_eq(computed.as_bytes(), c.code_challenge.as_bytes())
    {
        return Err(OAuthError::invalid_grant(
            "code_verifier does not match the code_challenge",
        ));
    }
    let user = active_user(state, c.user_id).await?;
    let access = user_access_token(state, client, &user, &c.scope, c.session_id, now)?;
    let id = if c.scope.split_whitespace().any(|s| s == "openid") {
        Some(id_token(
            state,
            client,
            &user,
            &c.scope,
            c.session_id,
            c.auth_time,
            c.nonce.clone(),
            now,
        )?)
    } else {
        None
    };
    let refresh = if client.allows_grant("refresh_token") {
        let (token, record) = new_refresh(
            state,
            c.family_id,
            client,
            user.id,
            c.session_id,
            &c.scope,
            c.auth_time,
            now,
        );
        state
            .grants
            .put_refresh(&record)
            .await
            .map_err(|e| OAuthError::store(&e))?;
        Some(token)
    } else {
        None
    };
    Ok(response(state, access, &c.scope, refresh, id))
}

async fn refresh_grant(
    state: &AppState,
    req: &HttpRequest,
    p: &Params,
    client: &ClientRecord,
) -> Result<Value, OAuthError> {
    let presented = crypto::sha256_hex(p.require("refresh_token")?);
    let now = Utc::now();
    let Some(current) = state
        .grants
        .refresh(&presented)
        .await
        .map_err(|e| OAuthError::store(&e))?
    else {
        return Err(OAuthError::invalid_grant("unknown refresh token"));
    };
    if current.client_id != client.client_id {
        return Err(OAuthError::invalid_grant(
            "the refresh token was issued to another client",
        ));
    }
    let scope = match p.get("scope") {
        None => current.scope.clone(),
        Some(asked) => {
            let granted: Vec<&str> = current.scope.split_whitespace().collect();
            if asked.split_whitespace().any(|s| !granted.contains(&s)) {
                return Err(OAuthError::invalid_scope(
                    "a refresh cannot widen the granted scope",
                ));
            }
            asked.split_whitespace().collect::<Vec<_>>().join(" ")
        }
    };
    let (token, successor) = new_refresh(
        state,
        current.family_id,
        client,
        current.user_id,
        current.session_id,
        &current.scope,
        current.auth_time,
        now,
    );
    let rotated = state
        .grants
        .rotate_refresh(&presented, &successor, now)
        .await
        .map_err(|e| OAuthError::store(&e))?;
    let current = match rotated {
        RefreshRotation::Invalid => {
            return Err(OAuthError::invalid_grant(
                "the refresh token expired or was revoked",
            ))
        }
        RefreshRotation::Reused(r) => {
            state
                .events
                .record(
                    EventKind::RefreshTokenReuse,
                    Subject {
                        user_id: Some(r.user_id),
                        client_id: Some(r.client_id.clone()),
                        ..Subject::default()
                    },
                    &Origin::of(req, &state.settings.trusted_proxies),
                )
                .await;
            return Err(OAuthError::invalid_grant(
                "the refresh token was already used; its session is revoked",
            ));
        }
        RefreshRotation::Rotated(r) => r,
    };
    let user = match active_user(state, current.user_id).await {
        Ok(u) => u,
        Err(e) => {
            let _ = state.grants.revoke_family(current.family_id).await;
            return Err(e);
        }
    };
    let access = user_access_token(state, client, &user, &scope, current.session_id, now)?;
    let id = if scope.split_whitespace().any(|s| s == "openid") {
        Some(id_token(
            state,
            client,
            &user,
            &scope,
            current.session_id,
            current.auth_time,
            None,
            now,
        )?)
    } else {
        None
    };
    Ok(response(state, access, &scope, Some(token), id))
}

fn client_credentials(
    state: &AppState,
    p: &Params,
    client: &ClientRecord,
) -> Result<Value, OAuthError> {
    if p.get("audience").is_some() && p.get("resource").is_some() {
        return Err(OAuthError::invalid_request(
            "give audience or resource, not both",
        ));
    }
    let audience = p
        .get("audience")
        .or(p.get("resource"))
        .unwrap_or(DEFAULT_AUDIENCE);
    if !client.audiences.iter().any(|a| a == audience) {
        return Err(OAuthError::invalid_target(format!(
            "this client may not get tokens for {audience}"
        )));
    }
    let scope = p
        .get("scope")
        .unwrap_or("")
        .split_whitespace()
        .filter(|s| !matches!(*s, "openid" | "offline_access" | "profile" | "email"))
        .collect::<Vec<_>>()
        .join(" ");
    let now = Utc::now();
    let claims = AccessClaims {
        iss: state.tokens.issuer.clone(),
        sub: client.client_id.clone(),
        aud: Audience::One(audience.to_owned()),
        exp: (now + Duration::seconds(state.settings.access_token_ttl_s as i64)).timestamp(),
        iat: now.timestamp(),
        nbf: now.timestamp(),
        jti: Uuid::new_v4().to_string(),
        client_id: client.client_id.clone(),
        scope: scope.clone(),
        tenant: client.tenant.as_ref().map(|t| t.as_str().to_owned()),
        roles: client.roles.iter().map(|r| r.as_str().to_owned()).collect(),
        sid: None,
    };
    let access = state.tokens.sign_access(&claims).map_err(sign_failed)?;
    Ok(response(state, access, &scope, None, None))
}
