//! Defence in depth inside each service: every API request carries an access token that the
//! service verifies itself, whatever the gateway already checked.
//!
//! Two layers. [`require_token`] on the `/v1` scope verifies the token, stores the
//! [`Principal`] in the request and replaces the tenant and actor headers (`X-Aurum-Tenant`,
//! `X-Aurum-User`) with the token's: a caller can never name another tenant than its token's.
//! [`declared`] builds each resource from the service's route declarations
//! ([`aurum_contract::Route`]) and checks the declared rule on the resource the router matched,
//! so the rule and the handler are the same route however the path was spelled (an encoded
//! `%66eatures` is routed, and checked, as `features`). A method with no declaration is
//! refused before any handler runs.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue, WWW_AUTHENTICATE};
use actix_web::http::StatusCode;
use actix_web::middleware::{from_fn, Next};
use actix_web::{web, HttpMessage, ResponseError};
pub use aurum_contract::Access;
use aurum_contract::{Method, Route};
use aurum_domain::Role;
use aurum_http::{Problem, TENANT_HEADER, USER_HEADER};

use crate::{bearer_token, AuthnError, JwksVerifier, Principal};

/// What a service registers as app data to turn the guard on.
#[derive(Debug, Clone)]
pub struct TokenGuard {
    pub verifier: JwksVerifier,
}

impl TokenGuard {
    /// A guard from a service's `auth` settings; `default_audiences` apply when the settings
    /// name none (a service accepts user tokens for the API and tokens addressed to itself).
    pub fn from_settings(
        settings: &aurum_config::TokenSettings,
        default_audiences: &[&str],
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
            verifier_settings = verifier_settings
                .with_jwks_url(url::Url::parse(jwks).map_err(|e| bad("auth.jwks_url", e))?);
        }
        verifier_settings.leeway_s = settings.leeway_s;
        Ok(Self {
            verifier: JwksVerifier::new(verifier_settings)?,
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
        Access::Tenant(_) | Access::Platform if principal.tenant.is_none() => Err(forbidden(
            "this operation needs a token issued for a tenant",
        )),
        Access::Platform if principal.has_role(Role::PlatformAdmin) => Ok(()),
        Access::Platform => Err(forbidden(
            "this changes what every tenant shares: it needs the platform_admin role",
        )),
        Access::Tenant(role) if principal.has_role(role) => Ok(()),
        Access::Tenant(role) => Err(forbidden(&format!("this needs the {role} role"))),
    }
}

/// actix middleware (`from_fn(require_token)`) for a scope: verifies the token and stores the
/// principal. A no-op unless a [`TokenGuard`] is registered as app data, so development
/// setups and tests without an issuer keep working.
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

/// The resource of `path` as `routes` declare it, its access rules checked on the matched
/// route. Add its handlers with `.route(web::get().to(...))` for the declared methods; any
/// other method is answered 405 before a handler runs.
///
/// Panics at start-up (never on a request) when `path` is not declared: a route that is not
/// in the contract must not be served.
pub fn declared(
    routes: &'static [Route],
    path: &'static str,
) -> actix_web::Resource<
    impl ServiceFactory<
        ServiceRequest,
        Config = (),
        Response = ServiceResponse<impl MessageBody>,
        Error = actix_web::Error,
        InitError = (),
    >,
> {
    assert!(
        routes.iter().any(|r| r.path == path),
        "{path} is not a declared route"
    );
    web::resource(path).wrap(from_fn(move |req, next| {
        authorize_declared(routes, path, req, next)
    }))
}

async fn authorize_declared(
    routes: &'static [Route],
    path: &'static str,
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let method = Method::parse(req.method().as_str());
    let Some(route) = routes
        .iter()
        .find(|r| r.path == path && Some(r.method) == method)
    else {
        let problem = Problem::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "Method Not Allowed",
        )
        .detail(format!("{} is not served on this path", req.method()));
        return Ok(req
            .into_response(problem.error_response())
            .map_into_right_body());
    };
    if req.app_data::<web::Data<TokenGuard>>().is_none() {
        // Development without an issuer (see `require_token`).
        return Ok(next.call(req).await?.map_into_left_body());
    }
    let decision = match req.extensions().get::<Principal>() {
        Some(principal) => check(principal, route.access).inspect_err(|_| {
            tracing::info!(
                subject = %principal.subject,
                route = %format_args!("{} {}", route.method, route.path),
                "access denied"
            );
        }),
        // `require_token` did not run on this resource's scope: refuse rather than serve.
        None => Err(AuthnError::Missing.problem()),
    };
    match decision {
        Ok(()) => Ok(next.call(req).await?.map_into_left_body()),
        Err(p) => Ok(req.into_response(p.error_response()).map_into_right_body()),
    }
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
            issued_at: chrono::Utc::now(),
            session: None,
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
    fn what_every_tenant_shares_needs_the_platform_operator() {
        let admin = principal(Some("acme"), vec![Role::Admin]);
        let operator_of_platform = principal(Some("ops"), vec![Role::PlatformAdmin]);
        let service = principal(None, vec![]);
        let tenantless_operator = principal(None, vec![Role::PlatformAdmin]);

        assert!(check(&admin, Access::Platform).is_err());
        assert!(check(&service, Access::Platform).is_err());
        assert!(check(&tenantless_operator, Access::Platform).is_err());
        assert!(check(&operator_of_platform, Access::Platform).is_ok());
        // The operator is also an admin, of its own tenant.
        assert!(check(&operator_of_platform, Access::Tenant(Role::Admin)).is_ok());
    }
}
