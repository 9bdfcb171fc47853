//! `/v1/clients`: a tenant's OAuth clients (admin). A new client's secret is shown once.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use aurum_domain::Role;
use aurum_http::Problem;
use aurum_ports::auth::{ClientRecord, CreateOutcome, GRANT_TYPES};
use serde::Deserialize;
use serde_json::json;

use crate::app::AppState;
use crate::bearer::Caller;
use crate::config::KNOWN_AUDIENCES;
use crate::security_events::{EventKind, Origin};
use crate::{crypto, users};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/clients", web::get().to(list))
        .route("/clients", web::post().to(create))
        .route("/clients/{client_id}", web::get().to(get))
        .route("/clients/{client_id}", web::delete().to(delete));
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewClient {
    /// Chosen by the server when absent.
    pub client_id: Option<String>,
    pub name: Option<String>,
    #[serde(default)]
    pub redirect_uris: Vec<String>,
    #[serde(default)]
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    #[serde(default)]
    pub audiences: Vec<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    /// A public client (no secret; authorization code with PKCE only).
    #[serde(default)]
    pub public: bool,
}

fn view(c: &ClientRecord) -> serde_json::Value {
    json!({
        "client_id": c.client_id,
        "name": c.name,
        "tenant": c.tenant,
        "public": c.is_public(),
        "redirect_uris": c.redirect_uris,
        "post_logout_redirect_uris": c.post_logout_redirect_uris,
        "grant_types": c.grant_types,
        "audiences": c.audiences,
        "roles": c.roles,
        "seeded": c.seeded,
        "owner": c.owner,
        "created_at": c.created_at,
    })
}

async fn list(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
) -> Result<HttpResponse, Problem> {
    let tenant = caller.require(&state, Role::Admin, &req).await?;
    let clients = state
        .clients
        .clients_of(&tenant)
        .await
        .map_err(|e| users::store_problem(&e))?;
    let clients: Vec<_> = clients.iter().map(view).collect();
    Ok(HttpResponse::Ok().json(json!({ "clients": clients })))
}

/// The client when it belongs to the caller's tenant; 404 otherwise (never "forbidden": the
/// caller must not learn that another tenant's client exists).
async fn own_client(
    state: &AppState,
    caller: &Caller,
    req: &HttpRequest,
    client_id: &str,
) -> Result<ClientRecord, Problem> {
    let tenant = caller.require(state, Role::Admin, req).await?;
    let client = state
        .clients
        .client(client_id)
        .await
        .map_err(|e| users::store_problem(&e))?;
    client
        .filter(|c| c.tenant.as_ref() == Some(&tenant))
        .ok_or_else(|| Problem::not_found("no such client"))
}

async fn get(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let c = own_client(&state, &caller, &req, &path).await?;
    Ok(HttpResponse::Ok().json(view(&c)))
}

async fn delete(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    path: web::Path<String>,
) -> Result<HttpResponse, Problem> {
    let c = own_client(&state, &caller, &req, &path).await?;
    state
        .clients
        .delete_client(&c.client_id)
        .await
        .map_err(|e| users::store_problem(&e))?;
    let mut who = caller.subject();
    who.client_id = Some(c.client_id.clone());
    state
        .events
        .record(
            EventKind::ClientDeleted,
            who,
            &Origin::of(&req, &state.settings.trusted_proxies),
        )
        .await;
    Ok(HttpResponse::NoContent().finish())
}

async fn create(
    state: web::Data<AppState>,
    caller: Caller,
    req: HttpRequest,
    body: web::Json<NewClient>,
) -> Result<HttpResponse, Problem> {
    let tenant = caller.require(&state, Role::Admin, &req).await?;
    let n = body.into_inner();
    let client_id = n
        .client_id
        .clone()
        .unwrap_or_else(|| format!("{}-{}", tenant.as_str(), &uuid::Uuid::new_v4().simple()));
    let valid_id = !client_id.is_empty()
        && client_id.len() <= 100
        && client_id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        && client_id.starts_with(|c: char| c.is_ascii_alphanumeric());
    if !valid_id {
        return Err(Problem::unprocessable(
            "client_id: 1 to 100 of letters, digits, '.', '_', '-', starting alphanumeric",
        ));
    }
    if n.grant_types.is_empty() {
        return Err(Problem::unprocessable("grant_types must not be empty"));
    }
    for g in &n.grant_types {
        if !GRANT_TYPES.contains(&g.as_str()) {
            return Err(Problem::unprocessable(format!("unknown grant type {g}")));
        }
    }
    if n.public && n.grant_types.iter().any(|g| g == "client_credentials") {
        return Err(Problem::unprocessable(
            "a public client cannot use client_credentials",
        ));
    }
    if n.grant_types.iter().any(|g| g == "authorization_code") && n.redirect_uris.is_empty() {
        return Err(Problem::unprocessable(
            "authorization_code needs at least one redirect URI",
        ));
    }
    for u in n.redirect_uris.iter().chain(&n.post_logout_redirect_uris) {
        super::check_redirect_uri(u, state.production)
            .map_err(|e| Problem::unprocessable(format!("redirect URI {u}: {e}")))?;
    }
    for a in &n.audiences {
        if !KNOWN_AUDIENCES.contains(&a.as_str()) {
            return Err(Problem::unprocessable(format!("unknown audience {a}")));
        }
    }
    let roles = super::parse_tenant_roles(&n.roles)?;
    let secret = (!n.public).then(super::new_secret);
    let secret_hash = match &secret {
        Some(s) => Some(crypto::hash_secret(s).map_err(|e| {
            tracing::error!(error = %e, "cannot hash a client secret");
            Problem::internal()
        })?),
        None => None,
    };
    let record = ClientRecord {
        client_id: client_id.clone(),
        secret_hash,
        tenant: Some(tenant),
        owner: caller.user_id(),
        name: n.name,
        redirect_uris: n.redirect_uris,
        post_logout_redirect_uris: n.post_logout_redirect_uris,
        grant_types: n.grant_types,
        audiences: n.audiences,
        roles,
        seeded: false,
        created_at: chrono::Utc::now(),
    };
    match state
        .clients
        .create_client(&record)
        .await
        .map_err(|e| users::store_problem(&e))?
    {
        CreateOutcome::Taken => Err(Problem::conflict("client_id is taken")),
        CreateOutcome::Created => {
            let mut who = caller.subject();
            who.client_id = Some(client_id.clone());
            state
                .events
                .record(
                    EventKind::ClientCreated,
                    who,
                    &Origin::of(&req, &state.settings.trusted_proxies),
                )
                .await;
            let mut body = view(&record);
            if let (Some(obj), Some(s)) = (body.as_object_mut(), secret) {
                obj.insert("client_secret".into(), json!(s));
            }
            Ok(HttpResponse::build(StatusCode::CREATED)
                .insert_header(("Cache-Control", "no-store"))
                .json(body))
        }
    }
}
