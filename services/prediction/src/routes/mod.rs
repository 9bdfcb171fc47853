//! HTTP handlers, one module per resource.

pub mod alerts;
pub mod esg;
pub mod features;
pub mod fleet;
pub mod machines;
pub mod models;

use actix_web::http::Method;
use aurum_authn::Access;
use aurum_domain::Role;
use aurum_http::Problem;
use aurum_ports::StoreError;

/// Who may call each route when tokens are verified: feature batches come from ingestion's
/// service client; the model registry, emission factors and site regions are administered;
/// predictions on demand and alert handling are operators' work; reads are open to viewers.
pub fn access_policy(method: &Method, path: &str) -> Access {
    let read = matches!(*method, Method::GET | Method::HEAD);
    if path == "/v1/features" {
        Access::Service
    } else if read {
        Access::Tenant(Role::Viewer)
    } else if path.starts_with("/v1/models")
        || path.starts_with("/v1/esg/factors")
        || path.starts_with("/v1/esg/sites/")
    {
        Access::Tenant(Role::Admin)
    } else {
        Access::Tenant(Role::Operator)
    }
}

/// A storage failure as the caller sees it: the cause is logged, never sent.
pub(crate) fn store_problem(e: &StoreError) -> Problem {
    tracing::error!(error = %e, "storage failed");
    if e.is_transient() {
        Problem::unavailable()
    } else {
        Problem::internal()
    }
}
