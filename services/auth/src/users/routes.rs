//! `/v1/users` (tenant administrators) and `/v1/me` (anyone signed in: profile, personal-data
//! export, erasure).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use aurum_domain::Role;
use aurum_http::Problem;
use aurum_ports::auth::{CreateOutcome, NewUser, UserPatch, UserRecord};
use serde::Deserialize;
use serde_json::json;
use uuid::Uuid;

use super::{anonymise, check_password, store_problem, tenant_username};
use crate::app::AppState;
use crate::bearer::Caller;
use crate::clients::parse_tenant_roles;
use crate::crypto;
use crate::security_events::{EventKind, Origin};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/users", web::get().to(list))
        .route("/users", web::post().to(create))
        .route("/users/{id}", web::get().to(get))
        .route("/users/{id}", web::patch().to(patch))
        .route("/users/{id}", web::delete().to(delete))
        .route("/me", web::get().to(me))
        .route("/me", web::delete().to(delete_me))
        .route("/me/export", web::get().to(export_me));
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewUserBody {
    pub username: String,
    pub password: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub roles: Vec<String>,
}

/// PATCH body: absent fields stay, `null` clears display_name/email.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PatchBody {
    #[serde(default, with = "double_option")]
    pub display_name: Option<Option<String>>,
    #[serde(default, with = "double_option")]
    pub email: Option<Option<String>>,
    pub roles: Option<Vec<String>>,
    pub disabled: Option<bool>,
    pub password: Option<String>,
}

mod double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Option<String>>, D::Error> {
        Option::<String>::deserialize(d).map(Some)
    }
}

fn view(u: &UserRecord) -> serde_json::Value {
    json!({
        "id": u.id,
        "tenant": u.tenant,
        "username": u.username,
        "display_name": u.display_name,
        "email": u.email,
        "roles": u.roles,
        "disabled": u.disabled,
        "created_at": u.created_at,
        "updated_at": u.updated_at,
        "anonymised_at": u.anonymised_at,
    })
}

fn check_email(e: &Option<String>) -> Result<(), Problem> {
    match e {
        Some(e) if e.len() > 320 || !e.contains('@') || e.chars().any(char::is_control) => {
            Err(Problem::unprocessable("email is not an address"))
        }
        _ => Ok(()),
    }
}

fn check_display_name(n: &Option<String>) -> Result<(), Problem> {
    match n {
        Some(n) if n.chars().count() > 200 || n.chars().any(char::is_control) => Err(
            Problem::unprocessable("display_name: at most 200 printable characters"),
        ),
        _ => Ok(()),
    }
}

fn origin(state: &AppState, req: &HttpRequest) -> Origin {
    Origin::of(req, &state.settings.trusted_proxies)
}

async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, Problem> {
    let tenant = caller.require(&state, Role::Admin, &req).await?;
    let users = state
        .users
        .users_of(&tenant)
        .await
        .map_err(|e| store_problem(&e))?;
    let users: Vec<_> = users.iter().map(view).collect();
    Ok(HttpResponse::Ok().json(json!({ "users": users })))
}

fn parse_id(s: &str) -> Result<Uuid, Problem> {
    Uuid::parse_str(s).map_err(|_| Problem::not_found("no such user"))
}

/// The user when they belong to the caller's tenant; 404 otherwise.
async fn own_user(
    state: &AppState,
    caller: &Caller,
    req: &HttpRequest,
    id: &str,
) -> Result<UserRecord, Problem> {
    let tenant = caller.require(state, Role::Admin, req).await?;
    let id = parse_id(id)?;
    let user = state.users.user(id).await.map_err(|e| store_problem(&e))?;
    user.filter(|u| u.tenant == tenant && u.anonymised_at.is_none())
        .ok_or_else(|| Problem::not_found("no such user"))
}

async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let u = own_user(&state, &caller, &req, &path).await?;
    Ok(HttpResponse::Ok().json(view(&u)))
}

async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: web::Json<NewUserBody>,
) -> Result<HttpResponse, Problem> {
    let tenant = caller.require(&state, Role::Admin, &req).await?;
    let b = body.into_inner();
    let username = tenant_username(&b.username, &tenant).map_err(Problem::unprocessable)?;
    check_password(&b.password, state.settings.min_password_len).map_err(Problem::unprocessable)?;
    check_email(&b.email)?;
    check_display_name(&b.display_name)?;
    let roles = parse_tenant_roles(&b.roles)?;
    let hash = crypto::hash_secret(&b.password).map_err(|e| {
        tracing::error!(error = %e, "cannot hash a password");
        Problem::internal()
    })?;
    let user = NewUser {
        id: Uuid::new_v4(),
        tenant,
        username,
        display_name: b.display_name,
        email: b.email,
        password_hash: hash,
        roles,
    };
    match state
        .users
        .create_user(&user)
        .await
        .map_err(|e| store_problem(&e))?
    {
        CreateOutcome::Taken => Err(Problem::conflict("the username is taken")),
        CreateOutcome::Created => {
            let mut who = caller.subject();
            who.user_id = Some(user.id);
            state
                .events
                .record(EventKind::UserCreated, who, &origin(&state, &req))
                .await;
            let created = state
                .users
                .user(user.id)
                .await
                .map_err(|e| store_problem(&e))?
                .ok_or_else(Problem::internal)?;
            Ok(HttpResponse::build(StatusCode::CREATED)
                .insert_header(("Location", format!("/v1/users/{}", user.id)))
                .json(view(&created)))
        }
    }
}

async fn patch(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Json<PatchBody>,
) -> Result<HttpResponse, Problem> {
    let u = own_user(&state, &caller, &req, &path).await?;
    let b = body.into_inner();
    if let Some(e) = &b.email {
        check_email(e)?;
    }
    if let Some(n) = &b.display_name {
        check_display_name(n)?;
    }
    let roles = b.roles.as_deref().map(parse_tenant_roles).transpose()?;
    let password_hash = match &b.password {
        Some(p) => {
            check_password(p, state.settings.min_password_len).map_err(Problem::unprocessable)?;
            Some(crypto::hash_secret(p).map_err(|e| {
                tracing::error!(error = %e, "cannot hash a password");
                Problem::internal()
            })?)
        }
        None => None,
    };
    let revoke = b.disabled == Some(true) || password_hash.is_some();
    let p = UserPatch {
        display_name: b.display_name,
        email: b.email,
        roles,
        disabled: b.disabled,
        password_hash,
    };
    let updated = state
        .users
        .update_user(u.id, &p)
        .await
        .map_err(|e| store_problem(&e))?
        .ok_or_else(|| Problem::not_found("no such user"))?;
    if revoke {
        // A disabled account or a reset password ends every session.
        state
            .grants
            .revoke_user_tokens(u.id)
            .await
            .map_err(|e| store_problem(&e))?;
        crate::oidc::revocations::revoke_access_of(
            &state,
            aurum_ports::auth::RevocationKind::Subject,
            &u.id.to_string(),
        )
        .await
        .map_err(|e| store_problem(&e))?;
    }
    let mut who = caller.subject();
    who.user_id = Some(u.id);
    state
        .events
        .record(EventKind::UserUpdated, who, &origin(&state, &req))
        .await;
    Ok(HttpResponse::Ok().json(view(&updated)))
}

async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let u = own_user(&state, &caller, &req, &path).await?;
    anonymise(&state, u.id, caller.subject(), &origin(&state, &req))
        .await
        .map_err(|e| store_problem(&e))?;
    Ok(HttpResponse::NoContent().finish())
}

/// The signed-in user behind a token (not a service client's token).
async fn me_user(state: &AppState, caller: &Caller) -> Result<UserRecord, Problem> {
    let id = caller.user_id().ok_or_else(|| {
        Problem::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "This needs a user's token",
        )
    })?;
    state
        .users
        .user(id)
        .await
        .map_err(|e| store_problem(&e))?
        .filter(|u| u.anonymised_at.is_none())
        .ok_or_else(|| Problem::not_found("no such user"))
}

async fn me(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, Problem> {
    let u = me_user(&state, &caller).await?;
    Ok(HttpResponse::Ok().json(view(&u)))
}

/// Everything auth holds about the caller (GDPR Art. 15/20).
async fn export_me(state: web::Data<AppState>, caller: Caller) -> Result<HttpResponse, Problem> {
    let u = me_user(&state, &caller).await?;
    let clients = state
        .clients
        .clients_owned_by(u.id)
        .await
        .map_err(|e| store_problem(&e))?;
    let sessions = state
        .grants
        .refresh_tokens_of(u.id)
        .await
        .map_err(|e| store_problem(&e))?;
    let events = state
        .event_store
        .events_about(u.id)
        .await
        .map_err(|e| store_problem(&e))?;
    let clients: Vec<_> = clients
        .iter()
        .map(|c| {
            json!({
                "client_id": c.client_id, "name": c.name, "tenant": c.tenant,
                "redirect_uris": c.redirect_uris, "grant_types": c.grant_types,
                "created_at": c.created_at,
            })
        })
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .insert_header((
            "Content-Disposition",
            "attachment; filename=\"aurumai-auth-export.json\"",
        ))
        .json(json!({
            "exported_at": chrono::Utc::now(),
            "profile": view(&u),
            "roles": u.roles,
            "clients": clients,
            "refresh_tokens": sessions,
            "security_events": events,
        })))
}

async fn delete_me(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, Problem> {
    let u = me_user(&state, &caller).await?;
    anonymise(&state, u.id, caller.subject(), &origin(&state, &req))
        .await
        .map_err(|e| store_problem(&e))?;
    Ok(HttpResponse::NoContent().finish())
}
