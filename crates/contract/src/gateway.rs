//! The routes the gateway answers itself.

use aurum_domain::Role::{Admin, Viewer};

use crate::Access::Tenant;
use crate::Method::Get;
use crate::Route;

pub const GDPR_EXPORT: Route = Route::new(
    Get,
    "/me/export",
    Tenant(Viewer),
    "Everything stored about the caller, machine-readable (GDPR)",
);
pub const AUDIT_LIST: Route = Route::new(
    Get,
    "/audit",
    Tenant(Admin),
    "The tenant's audit log, newest first",
);
pub const AUDIT_VERIFY: Route = Route::new(
    Get,
    "/audit/verify",
    Tenant(Admin),
    "Verify the tenant's audit hash chain",
);

pub const ROUTES: &[Route] = &[GDPR_EXPORT, AUDIT_LIST, AUDIT_VERIFY];
