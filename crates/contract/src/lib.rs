//! The API contract: every HTTP route of the platform, declared once, per context.
//!
//! A [`Route`] names its method, its path (below a service's `/v1`, and the same path below the
//! gateway's `/api/v1` when it is public) and who may call it. The service registers its
//! handler for the declared route and checks the rule on the route the router matched (never
//! a string on the raw path); the gateway builds its public table and the OpenAPI document
//! from the same declarations. A route that is not declared cannot be registered.

mod route;

pub mod auth;
pub mod gateway;
pub mod ingestion;
pub mod prediction;

pub use route::{Access, Method, Route};

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    const CONTEXTS: [&[Route]; 4] = [
        ingestion::ROUTES,
        prediction::ROUTES,
        auth::ROUTES,
        gateway::ROUTES,
    ];

    #[test]
    fn every_route_is_declared_once_below_v1() {
        let mut seen = HashSet::new();
        for r in CONTEXTS.iter().flat_map(|c| c.iter()) {
            assert!(r.path.starts_with('/'), "{r:?}");
            assert!(!r.path.contains("//") && !r.path.ends_with('/'), "{r:?}");
            assert!(seen.insert((r.method, r.path)), "declared twice: {r:?}");
        }
    }

    #[test]
    fn writes_need_more_than_a_viewer_except_the_callers_own_account() {
        for r in CONTEXTS.iter().flat_map(|c| c.iter()) {
            if r.method != Method::Get && !r.path.starts_with("/me") {
                assert_ne!(
                    r.access,
                    Access::Tenant(aurum_domain::Role::Viewer),
                    "{r:?}"
                );
            }
        }
    }

    #[test]
    fn what_every_tenant_shares_is_the_platform_operators_only() {
        let platform: HashSet<_> = CONTEXTS
            .iter()
            .flat_map(|c| c.iter())
            .filter(|r| r.access == Access::Platform)
            .map(|r| (r.method, r.path))
            .collect();
        let expected: HashSet<_> = [
            (Method::Post, "/models"),
            (Method::Post, "/models/{version}/activate"),
            (Method::Post, "/esg/factors"),
            (Method::Post, "/keys/rotate"),
        ]
        .into_iter()
        .collect();
        assert_eq!(platform, expected);
    }
}
