//! Who a verified token speaks for.

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{FromRequest, HttpMessage, HttpRequest};
use aurum_domain::{Role, TenantId};
use aurum_http::Problem;
use chrono::{DateTime, Utc};

/// The verified content of an access token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The opaque subject id (a user id, or the client id of a service).
    pub subject: String,
    /// The tenant; absent only for platform service clients.
    pub tenant: Option<TenantId>,
    pub roles: Vec<Role>,
    pub client_id: String,
    /// The token's `aud` values (those the verifier accepted among them).
    pub audiences: Vec<String>,
    pub scopes: Vec<String>,
    /// The token's `jti`.
    pub token_id: String,
    pub expires_at: DateTime<Utc>,
    /// The token's `iat`: revoking a subject or a session covers tokens issued up to then.
    pub issued_at: DateTime<Utc>,
    /// The sign-in session (`sid`) of a user's token.
    pub session: Option<String>,
}

/// A tenant-scoped operation asked by a principal without a tenant.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the token carries no tenant")]
pub struct TenantRequired;

impl From<TenantRequired> for Problem {
    fn from(_: TenantRequired) -> Self {
        Problem::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden")
            .detail("this operation needs a token issued for a tenant")
    }
}

impl Principal {
    /// A service client (client_credentials): no roles of a person.
    pub fn is_service(&self) -> bool {
        self.roles.is_empty()
    }

    /// True when one of the principal's roles grants `required`.
    pub fn has_role(&self, required: Role) -> bool {
        self.roles.iter().any(|r| r.grants(required))
    }

    pub fn highest_role(&self) -> Option<Role> {
        Role::highest(&self.roles)
    }

    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }

    pub fn require_tenant(&self) -> Result<&TenantId, TenantRequired> {
        self.tenant.as_ref().ok_or(TenantRequired)
    }
}

/// A handler may take a `Principal` once a middleware has verified the token and stored it in
/// the request's extensions (`req.extensions_mut().insert(principal)`); without one the
/// request is refused with 401.
impl FromRequest for Principal {
    type Error = crate::AuthnError;
    type Future = Ready<Result<Self, crate::AuthnError>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        ready(
            req.extensions()
                .get::<Principal>()
                .cloned()
                .ok_or(crate::AuthnError::Missing),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn principal(roles: Vec<Role>) -> Principal {
        Principal {
            subject: "u1".into(),
            tenant: Some(TenantId::parse("acme").unwrap()),
            roles,
            client_id: "web".into(),
            audiences: vec![crate::API_AUDIENCE.into()],
            scopes: vec!["openid".into()],
            token_id: "j".into(),
            expires_at: Utc::now(),
            issued_at: chrono::Utc::now(),
            session: None,
        }
    }

    #[test]
    fn roles_grant_what_is_below_them() {
        let op = principal(vec![Role::Operator]);
        assert!(op.has_role(Role::Viewer));
        assert!(op.has_role(Role::Operator));
        assert!(!op.has_role(Role::Admin));
        assert!(!op.is_service());
        let svc = principal(vec![]);
        assert!(svc.is_service());
        assert!(!svc.has_role(Role::Viewer));
    }

    #[test]
    fn tenant_is_required_when_asked() {
        let mut p = principal(vec![Role::Viewer]);
        assert_eq!(p.require_tenant().unwrap().as_str(), "acme");
        p.tenant = None;
        assert_eq!(p.require_tenant(), Err(TenantRequired));
    }
}
