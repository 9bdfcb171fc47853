//! The ingestion service's routes.

use aurum_domain::Role::{Operator, Viewer};

use crate::Access::Tenant;
use crate::Method::{Get, Post};
use crate::Route;

pub const ROUTES: &[Route] = &[
    Route::new(
        Post,
        "/telemetry",
        Tenant(Operator),
        "Send a batch of telemetry messages",
    ),
    Route::new(Post, "/machines", Tenant(Operator), "Register a machine"),
    Route::new(
        Get,
        "/machines",
        Tenant(Viewer),
        "List the tenant's machines",
    ),
    Route::new(Get, "/machines/{id}", Tenant(Viewer), "A machine"),
    Route::new(
        Get,
        "/machines/{id}/telemetry",
        Tenant(Viewer),
        "A machine's telemetry series (downsampled)",
    ),
];
