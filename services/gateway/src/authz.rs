//! Authorization: the route's least role, and a tenant on every token that reaches tenant data.

use actix_web::http::StatusCode;
use aurum_authn::Principal;
use aurum_domain::TenantId;
use aurum_http::Problem;

use crate::routes::RouteSpec;

/// The tenant the call acts in, if the principal may call the route.
pub fn authorize<'p>(principal: &'p Principal, route: &RouteSpec) -> Result<&'p TenantId, Problem> {
    if !principal.has_role(route.role) {
        return Err(forbidden(format!(
            "this operation needs the {} role",
            route.role
        )));
    }
    principal
        .require_tenant()
        .map_err(|_| forbidden("this operation needs a token issued for a tenant".into()))
}

pub fn forbidden(detail: String) -> Problem {
    Problem::new(StatusCode::FORBIDDEN, "forbidden", "Forbidden").detail(detail)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routes::ROUTES;
    use aurum_domain::Role;

    fn principal(roles: Vec<Role>, tenant: Option<&str>) -> Principal {
        Principal {
            subject: "s".into(),
            tenant: tenant.map(|t| TenantId::parse(t).unwrap()),
            roles,
            client_id: "c".into(),
            audiences: vec![aurum_authn::API_AUDIENCE.into()],
            scopes: vec![],
            token_id: "j".into(),
            expires_at: chrono::Utc::now(),
            issued_at: chrono::Utc::now(),
            session: None,
        }
    }

    #[test]
    fn each_role_reaches_exactly_the_routes_at_or_below_it() {
        for role in Role::ALL {
            let p = principal(vec![role], Some("acme"));
            for r in ROUTES.iter() {
                assert_eq!(authorize(&p, r).is_ok(), role >= r.role, "{role} {r:?}");
            }
        }
    }

    #[test]
    fn no_tenant_or_no_role_reaches_nothing() {
        let svc = principal(vec![], None);
        let admin_without_tenant = principal(vec![Role::Admin], None);
        for r in ROUTES.iter() {
            assert!(authorize(&svc, r).is_err());
            assert!(authorize(&admin_without_tenant, r).is_err());
        }
    }
}
