//! The public route table: every `/api/v1` route, its method, where it goes and the least
//! role it needs, built from the services' declarations in `aurum_contract`. Registration,
//! authorization, the OpenAPI document and the tests all read this one table.

pub mod handler;
pub mod oidc;

use std::sync::LazyLock;

use aurum_contract::{self as contract, Route};
use aurum_domain::Role;

/// Where a route is answered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Target {
    Ingestion,
    Prediction,
    Auth,
    /// By the gateway itself.
    Local(Local),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Local {
    AuditList,
    AuditVerify,
    GdprExport,
}

pub use aurum_contract::Method;

pub fn actix_method(m: Method) -> actix_web::http::Method {
    match m {
        Method::Get => actix_web::http::Method::GET,
        Method::Post => actix_web::http::Method::POST,
        Method::Put => actix_web::http::Method::PUT,
        Method::Patch => actix_web::http::Method::PATCH,
        Method::Delete => actix_web::http::Method::DELETE,
    }
}

/// One public route. `path` is below `/api/v1`; an upstream route has the same path below
/// the service's `/v1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteSpec {
    pub method: Method,
    pub path: &'static str,
    pub target: Target,
    /// The least role: `platform_admin` for what every tenant shares.
    pub role: Role,
    pub summary: &'static str,
}

impl RouteSpec {
    pub fn public_path(&self) -> String {
        format!("{PREFIX}{}", self.path)
    }

    /// `GET /api/v1/machines/{id}`: the audit log's action.
    pub fn action(&self) -> String {
        format!("{} {PREFIX}{}", self.method.as_str(), self.path)
    }

    fn declared(target: Target, r: &Route) -> Option<Self> {
        Some(Self {
            method: r.method,
            path: r.path,
            target,
            role: r.access.least_role()?,
            summary: r.summary,
        })
    }
}

pub const PREFIX: &str = "/api/v1";

/// The public API: every public route the services declare (`aurum_contract`), then the
/// gateway's own.
pub static ROUTES: LazyLock<Vec<RouteSpec>> = LazyLock::new(|| {
    let upstream = [
        (Target::Ingestion, contract::ingestion::ROUTES),
        (Target::Prediction, contract::prediction::ROUTES),
        (Target::Auth, contract::auth::ROUTES),
    ];
    let local = [
        (Local::GdprExport, contract::gateway::GDPR_EXPORT),
        (Local::AuditList, contract::gateway::AUDIT_LIST),
        (Local::AuditVerify, contract::gateway::AUDIT_VERIFY),
    ];
    upstream
        .iter()
        .flat_map(|(target, routes)| {
            routes
                .iter()
                .filter(|r| r.is_public())
                .filter_map(|r| RouteSpec::declared(*target, r))
        })
        .chain(
            local
                .iter()
                .filter_map(|(l, r)| RouteSpec::declared(Target::Local(*l), r)),
        )
        .collect()
});

/// Public paths that answer without a token.
pub const ANONYMOUS: &[&str] = &[
    "/healthz",
    "/readyz",
    "/metrics",
    "/api/v1/openapi.json",
    "/api/v1/docs",
];

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn every_route_is_unique_and_below_v1() {
        let mut seen = HashSet::new();
        for r in ROUTES.iter() {
            assert!(r.path.starts_with('/'), "{r:?}");
            assert!(seen.insert((r.method, r.path)), "duplicate {r:?}");
        }
    }

    #[test]
    fn writes_need_more_than_viewer_except_the_callers_own_account() {
        for r in ROUTES.iter() {
            if r.method != Method::Get && !r.path.starts_with("/me") {
                assert!(r.role >= Role::Operator, "{r:?}");
            }
        }
    }

    #[test]
    fn service_only_routes_are_not_public() {
        assert!(ROUTES.iter().all(|r| r.path != "/features"));
        assert_eq!(
            ROUTES.len(),
            contract::ingestion::ROUTES.len() + contract::prediction::ROUTES.len() - 1
                + contract::auth::ROUTES.len()
                + contract::gateway::ROUTES.len()
        );
    }
}
