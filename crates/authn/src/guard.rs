//! Defence in depth inside each service: every API request carries an access token that the
//! service verifies itself, whatever the gateway already checked.
//!
//! The guard verifies the token, checks the route's access rule, stores the [`Principal`] in
//! the request, and replaces the tenant and actor headers (`X-Aurum-Tenant`, `X-Aurum-User`)
//! with the token's: a caller can never name another tenant than its token's.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue, WWW_AUTHENTICATE};
use actix_web::http::{Method, StatusCode};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage, ResponseError};
use aurum_domain::Role;
use aurum_http::{Problem, TENANT_HEADER, USER_HEADER};

use crate::{bearer_token, AuthnError, JwksVerifier, Principal};

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// A person (or a tenant's client) holding at least this role in the token's tenant.
    Tenant(Role),
    /// A platform service client (client_credentials, no tenant) whose token is addressed to
    /// this service itself (not to the public API), e.g. ingestion posting feature batches to
    /// prediction.
    Service,
}

/// The access rule of each route of a service: `(method, path) -> rule`.
pub type AccessPolicy = fn(&Method, &str) -> Access;

/// Reads need a viewer, changes an operator: the default when a service has no admin-only
/// routes.
pub fn reads_viewer_writes_operator(method: &Method, _path: &str) -> Access {
    if matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS) {
        Access::Tenant(Role::Viewer)
    } else {
        Access::Tenant(Role::Operator)
    }
}

/// What a service registers as app data to turn the guard on.
#[derive(Debug, Clone)]
pub struct TokenGuard {
    pub verifier: JwksVerifier,
    pub policy: AccessPolicy,
}

impl TokenGuard {
    /// A guard from a service's `auth` settings; `default_audiences` apply when the settings
    /// name none (a service accepts user tokens for the API and tokens addressed to itself).
    pub fn from_settings(
        settings: &aurum_config::TokenSettings,
        default_audiences: &[&str],
        policy: AccessPolicy,
    ) -> Result<Self, AuthnError> {
        let bad = |what: &str, e: url::ParseError| AuthnError::Malformed(format!("{what}: {e}"));
        let issuer = url::Url::parse(&settings.issuer).map_err(|e| bad("auth.issuer", e))?;
        let audiences = if settings.audiences.is_empty() {
            default_audiences.iter().map(|a| (*a).to_owned()).collect()
        } else {
            settings.audiences.clone()
        };
        let mut verifier_settings = crate::VerifierSettings::new(issuer, audiences);
        if let Some(jwks) = &settings.jwks_url {
            verifier_settings.jwks_url =
                url::Url::parse(jwks).map_err(|e| bad("auth.jwks_url", e))?;
        }
        verifier_settings.leeway_s = settings.leeway_s;
        Ok(Self {
            verifier: JwksVerifier::new(verifier_settings)?,
            policy,
        })
    }
}

fn forbidden(detail: &str) -> Problem {
    Problem::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden").detail(detail)
}

fn check(principal: &Principal, access: Access) -> Result<(), Problem> {
    match access {
        Access::Service
            if principal.is_service()
                && principal.tenant.is_none()
                && principal.audiences.iter().any(|a| a != crate::API_AUDIENCE) =>
        {
            Ok(())
        }
        Access::Service => Err(forbidden("this route is for platform services only")),
        Access::Tenant(_) if principal.tenant.is_none() => Err(forbidden(
            "this operation needs a token issued for a tenant",
        )),
        Access::Tenant(role) if principal.has_role(role) => Ok(()),
        Access::Tenant(role) => Err(forbidden(&format!("this needs the {role} role"))),
    }
}

/// actix middleware (`from_fn(require_token)`): a no-op unless a [`TokenGuard`] is registered
/// as app data, so development setups and tests without an issuer keep working.
pub async fn require_token(
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let Some(guard) = req.app_data::<web::Data<TokenGuard>>().cloned() else {
        return Ok(next.call(req).await?.map_into_left_body());
    };
    let verified = match bearer_token(req.headers()) {
        None => Err(AuthnError::Missing),
        Some(token) => guard.verifier.verify(token).await,
    };
    let principal = match verified {
        Ok(p) => p,
        Err(e) => {
            tracing::info!(reason = e.label(), "access token refused");
            let mut response = e.problem().error_response();
            if let Some(challenge) = e.www_authenticate() {
                response
                    .headers_mut()
                    .insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
            }
            return Ok(req.into_response(response).map_into_right_body());
        }
    };
    if let Err(p) = check(&principal, (guard.policy)(req.method(), req.path())) {
        tracing::info!(subject = %principal.subject, path = %req.path(), "access denied");
        return Ok(req.into_response(p.error_response()).map_into_right_body());
    }

    let headers = req.headers_mut();
    headers.remove(TENANT_HEADER);
    headers.remove(USER_HEADER);
    if let Some(tenant) = &principal.tenant {
        if let Ok(v) = HeaderValue::from_str(tenant.as_str()) {
            headers.insert(HeaderName::from_static(TENANT_HEADER), v);
        }
    }
    if let Ok(v) = HeaderValue::from_str(&principal.subject) {
        headers.insert(HeaderName::from_static(USER_HEADER), v);
    }
    req.extensions_mut().insert(principal);
    Ok(next.call(req).await?.map_into_left_body())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use aurum_domain::TenantId;
    use chrono::Utc;

    fn principal(tenant: Option<&str>, roles: Vec<Role>) -> Principal {
        Principal {
            subject: "s".into(),
            tenant: tenant.map(|t| TenantId::parse(t).unwrap()),
            roles,
            client_id: "c".into(),
            audiences: vec!["aurumai-prediction".into()],
            scopes: vec![],
            token_id: "j".into(),
            expires_at: Utc::now(),
        }
    }

    #[test]
    fn roles_and_service_routes_are_kept_apart() {
        let viewer = principal(Some("acme"), vec![Role::Viewer]);
        let operator = principal(Some("acme"), vec![Role::Operator]);
        let service = principal(None, vec![]);
        let tenantless_person = principal(None, vec![Role::Admin]);

        assert!(check(&viewer, Access::Tenant(Role::Viewer)).is_ok());
        assert!(check(&viewer, Access::Tenant(Role::Operator)).is_err());
        assert!(check(&operator, Access::Tenant(Role::Operator)).is_ok());
        assert!(check(&operator, Access::Tenant(Role::Admin)).is_err());
        assert!(check(&service, Access::Service).is_ok());
        assert!(check(&service, Access::Tenant(Role::Viewer)).is_err());
        assert!(check(&operator, Access::Service).is_err());
        assert!(check(&tenantless_person, Access::Tenant(Role::Viewer)).is_err());
    }

    #[test]
    fn reads_need_a_viewer_and_changes_an_operator() {
        assert_eq!(
            reads_viewer_writes_operator(&Method::GET, "/v1/machines"),
            Access::Tenant(Role::Viewer)
        );
        assert_eq!(
            reads_viewer_writes_operator(&Method::POST, "/v1/machines"),
            Access::Tenant(Role::Operator)
        );
    }
}
