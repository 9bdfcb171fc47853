//! The public route table: every `/api/v1` route, its method, where it goes and the least
//! role it needs. Registration, authorization, the OpenAPI document and the tests all read
//! this one table.

pub mod handler;
pub mod oidc;

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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    pub fn actix(self) -> actix_web::http::Method {
        match self {
            Method::Get => actix_web::http::Method::GET,
            Method::Post => actix_web::http::Method::POST,
            Method::Put => actix_web::http::Method::PUT,
            Method::Patch => actix_web::http::Method::PATCH,
            Method::Delete => actix_web::http::Method::DELETE,
        }
    }
}

/// One public route. `path` is below `/api/v1`; an upstream route has the same path below
/// the service's `/v1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteSpec {
    pub method: Method,
    pub path: &'static str,
    pub target: Target,
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
}

pub const PREFIX: &str = "/api/v1";

const fn r(
    method: Method,
    path: &'static str,
    target: Target,
    role: Role,
    summary: &'static str,
) -> RouteSpec {
    RouteSpec {
        method,
        path,
        target,
        role,
        summary,
    }
}

use Method::{Delete, Get, Patch, Post, Put};
use Role::{Admin, Operator, Viewer};
use Target::{Auth, Ingestion, Prediction};

/// The public API.
pub const ROUTES: &[RouteSpec] = &[
    // ingestion
    r(
        Post,
        "/telemetry",
        Ingestion,
        Operator,
        "Send a batch of telemetry messages",
    ),
    r(Post, "/machines", Ingestion, Operator, "Register a machine"),
    r(
        Get,
        "/machines",
        Ingestion,
        Viewer,
        "List the tenant's machines",
    ),
    r(Get, "/machines/{id}", Ingestion, Viewer, "A machine"),
    r(
        Get,
        "/machines/{id}/telemetry",
        Ingestion,
        Viewer,
        "A machine's telemetry series (downsampled)",
    ),
    // prediction
    r(
        Post,
        "/machines/{id}/predict",
        Prediction,
        Operator,
        "Score a machine's latest features now",
    ),
    r(
        Get,
        "/machines/{id}/predictions",
        Prediction,
        Viewer,
        "A machine's prediction history",
    ),
    r(
        Get,
        "/fleet/health",
        Prediction,
        Viewer,
        "Risk and status of every machine",
    ),
    r(Get, "/models", Prediction, Viewer, "Registered models"),
    r(
        Post,
        "/models",
        Prediction,
        Admin,
        "Register a model artifact",
    ),
    r(
        Post,
        "/models/{version}/activate",
        Prediction,
        Admin,
        "Activate a model version",
    ),
    r(Get, "/alerts", Prediction, Viewer, "Alerts, filtered"),
    r(
        Post,
        "/alerts/{id}/ack",
        Prediction,
        Operator,
        "Acknowledge an alert",
    ),
    r(
        Post,
        "/alerts/{id}/resolve",
        Prediction,
        Operator,
        "Resolve an alert",
    ),
    r(
        Get,
        "/esg/summary",
        Prediction,
        Viewer,
        "Emissions summary of a period",
    ),
    r(
        Get,
        "/esg/machines/{id}",
        Prediction,
        Viewer,
        "A machine's emissions",
    ),
    r(
        Get,
        "/esg/report.csv",
        Prediction,
        Viewer,
        "Emissions report as CSV",
    ),
    r(
        Get,
        "/esg/forecast",
        Prediction,
        Viewer,
        "Emissions forecast, next 24 h",
    ),
    r(Get, "/esg/factors", Prediction, Viewer, "Emission factors"),
    r(
        Post,
        "/esg/factors",
        Prediction,
        Admin,
        "Add an emission factor version",
    ),
    r(
        Put,
        "/esg/sites/{site}/region",
        Prediction,
        Admin,
        "Set a site's grid region",
    ),
    // auth
    r(Get, "/users", Auth, Admin, "The tenant's users"),
    r(Post, "/users", Auth, Admin, "Create a user"),
    r(Get, "/users/{id}", Auth, Admin, "A user"),
    r(
        Patch,
        "/users/{id}",
        Auth,
        Admin,
        "Change a user's roles or status",
    ),
    r(
        Delete,
        "/users/{id}",
        Auth,
        Admin,
        "Erase a user (GDPR: anonymise, revoke tokens)",
    ),
    r(Get, "/me", Auth, Viewer, "The caller's account"),
    r(
        Delete,
        "/me",
        Auth,
        Viewer,
        "Erase the caller's account (GDPR)",
    ),
    r(
        Get,
        "/me/export",
        Target::Local(Local::GdprExport),
        Viewer,
        "Everything stored about the caller, machine-readable (GDPR)",
    ),
    r(Get, "/clients", Auth, Admin, "Service clients"),
    r(Post, "/clients", Auth, Admin, "Create a service client"),
    r(Get, "/clients/{client_id}", Auth, Admin, "A service client"),
    r(
        Delete,
        "/clients/{client_id}",
        Auth,
        Admin,
        "Delete a service client",
    ),
    r(Get, "/devices", Auth, Viewer, "Provisioned devices"),
    r(Post, "/devices", Auth, Operator, "Provision a device"),
    r(Get, "/devices/{id}", Auth, Viewer, "A device"),
    r(Delete, "/devices/{id}", Auth, Operator, "Revoke a device"),
    r(
        Post,
        "/devices/{id}/certificate",
        Auth,
        Operator,
        "Issue a device client certificate",
    ),
    r(
        Post,
        "/keys/rotate",
        Auth,
        Admin,
        "Rotate the token signing key",
    ),
    // the gateway
    r(
        Get,
        "/audit",
        Target::Local(Local::AuditList),
        Admin,
        "The tenant's audit log, newest first",
    ),
    r(
        Get,
        "/audit/verify",
        Target::Local(Local::AuditVerify),
        Admin,
        "Verify the tenant's audit hash chain",
    ),
];

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
        for r in ROUTES {
            assert!(r.path.starts_with('/'), "{r:?}");
            assert!(seen.insert((r.method, r.path)), "duplicate {r:?}");
        }
    }

    #[test]
    fn writes_need_more_than_viewer_except_the_callers_own_account() {
        for r in ROUTES {
            if r.method != Method::Get && !r.path.starts_with("/me") {
                assert!(r.role >= Role::Operator, "{r:?}");
            }
        }
    }
}
