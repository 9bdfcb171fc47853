//! OAuth clients: seeded from configuration at start, created through the admin API.

pub mod routes;

use std::str::FromStr;

use aurum_domain::{Role, TenantId};
use aurum_ports::auth::ClientRecord;
use aurum_ports::StoreError;
use secrecy::ExposeSecret;

use crate::app::AppState;
use crate::config::SeedClient;
use crate::crypto;

#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("client {client_id}: {problem}")]
    Invalid { client_id: String, problem: String },
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Hash(#[from] crypto::HashError),
}

/// A redirect URI a client may register: absolute, no fragment, no dangerous scheme; plain
/// http only to loopback in production.
pub fn check_redirect_uri(uri: &str, production: bool) -> Result<(), String> {
    let u = url::Url::parse(uri).map_err(|e| e.to_string())?;
    if u.fragment().is_some() {
        return Err("must not have a fragment".into());
    }
    match u.scheme() {
        "https" => Ok(()),
        "http" => {
            let loopback = u.host_str().is_some_and(crate::config::is_loopback_host);
            if production && !loopback {
                Err("plain http is allowed only to loopback in production".into())
            } else {
                Ok(())
            }
        }
        "javascript" | "data" | "file" | "vbscript" => Err("scheme not allowed".into()),
        _ => Ok(()), // private-use schemes of native apps (RFC 8252)
    }
}

/// A new client secret: 256 bits from the OS-seeded generator.
pub fn new_secret() -> String {
    crypto::random_token()
}

/// Roles from the auth service's own configuration: any role, the platform operator's too.
pub fn parse_roles(names: &[String]) -> Result<Vec<Role>, String> {
    names
        .iter()
        .map(|r| Role::from_str(r).map_err(|e| e.to_string()))
        .collect()
}

/// Roles a tenant admin gives through the API: 422 for an unknown one, 403 for the platform
/// operator's, which only the service's configuration grants.
pub fn parse_tenant_roles(names: &[String]) -> Result<Vec<Role>, aurum_http::Problem> {
    let roles = parse_roles(names).map_err(aurum_http::Problem::unprocessable)?;
    if let Some(r) = roles.iter().find(|r| !r.is_tenant_role()) {
        return Err(aurum_http::Problem::new(
            actix_web::http::StatusCode::FORBIDDEN,
            "forbidden",
            "Forbidden",
        )
        .detail(format!(
            "the {r} role is given by the platform's configuration, not by a tenant"
        )));
    }
    Ok(roles)
}

/// Creates or updates the configured clients.
pub async fn seed(state: &AppState, clients: &[SeedClient]) -> Result<(), SeedError> {
    for c in clients {
        let invalid = |problem: String| SeedError::Invalid {
            client_id: c.client_id.clone(),
            problem,
        };
        let secret = c.resolve_secret().map_err(|e| invalid(e.to_string()))?;
        let secret_hash = match &secret {
            Some(s) => {
                // Re-hashing at every start would change the row each time; keep the stored
                // hash while it still matches.
                let existing = state.clients.client(&c.client_id).await?;
                match existing
                    .and_then(|e| e.secret_hash)
                    .filter(|h| crypto::verify_secret(s.expose_secret(), h))
                {
                    Some(h) => Some(h),
                    None => Some(crypto::hash_secret(s.expose_secret())?),
                }
            }
            None => None,
        };
        let tenant = c
            .tenant
            .as_deref()
            .map(TenantId::parse)
            .transpose()
            .map_err(|e| invalid(e.to_string()))?;
        let record = ClientRecord {
            client_id: c.client_id.clone(),
            secret_hash,
            tenant,
            owner: None,
            name: c.name.clone(),
            redirect_uris: c.redirect_uris.clone(),
            post_logout_redirect_uris: c.post_logout_redirect_uris.clone(),
            grant_types: c.grant_types.clone(),
            audiences: c.audiences.clone(),
            roles: parse_roles(&c.roles).map_err(invalid)?,
            seeded: true,
            created_at: chrono::Utc::now(),
        };
        state.clients.upsert_client(&record).await?;
        tracing::info!(client_id = %c.client_id, "configured client applied");
    }
    Ok(())
}
