//! The ingestion service's routes.

use aurum_domain::Role::{Admin, Operator, Viewer};

use crate::Access::Tenant;
use crate::Method::{Delete, Get, Post, Put};
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
    Route::new(
        Post,
        "/machines/{id}/events",
        Tenant(Operator),
        "Record a maintenance event: failure (with its mode), repair, inspection, part replaced",
    ),
    Route::new(
        Get,
        "/machines/{id}/events",
        Tenant(Viewer),
        "A machine's maintenance events, newest first",
    ),
    Route::new(
        Get,
        "/profiles",
        Tenant(Viewer),
        "List the machine profiles: the built-in ones and the tenant's own",
    ),
    Route::new(Post, "/profiles", Tenant(Admin), "Create a machine profile"),
    Route::new(
        Get,
        "/profiles/{id}",
        Tenant(Viewer),
        "A machine profile with all its versions",
    ),
    Route::new(
        Put,
        "/profiles/{id}",
        Tenant(Admin),
        "Change a machine profile: a new version, in force from now",
    ),
    Route::new(
        Delete,
        "/profiles/{id}",
        Tenant(Admin),
        "Delete a machine profile that no machine uses",
    ),
];
