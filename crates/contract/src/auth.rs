//! The auth service's API (`/v1`; its OpenID Connect endpoints are the protocol's own).

use aurum_domain::Role::{Admin, Operator, Viewer};

use crate::Access::{Platform, Tenant};
use crate::Method::{Delete, Get, Patch, Post};
use crate::Route;

pub const ROUTES: &[Route] = &[
    Route::new(Get, "/users", Tenant(Admin), "The tenant's users"),
    Route::new(Post, "/users", Tenant(Admin), "Create a user"),
    Route::new(Get, "/users/{id}", Tenant(Admin), "A user"),
    Route::new(
        Patch,
        "/users/{id}",
        Tenant(Admin),
        "Change a user's roles or status",
    ),
    Route::new(
        Delete,
        "/users/{id}",
        Tenant(Admin),
        "Erase a user (GDPR: anonymise, revoke tokens)",
    ),
    Route::new(Get, "/me", Tenant(Viewer), "The caller's account"),
    Route::new(
        Delete,
        "/me",
        Tenant(Viewer),
        "Erase the caller's account (GDPR)",
    ),
    Route::new(Get, "/clients", Tenant(Admin), "Service clients"),
    Route::new(Post, "/clients", Tenant(Admin), "Create a service client"),
    Route::new(
        Get,
        "/clients/{client_id}",
        Tenant(Admin),
        "A service client",
    ),
    Route::new(
        Delete,
        "/clients/{client_id}",
        Tenant(Admin),
        "Delete a service client",
    ),
    Route::new(Get, "/devices", Tenant(Viewer), "Provisioned devices"),
    Route::new(Post, "/devices", Tenant(Operator), "Provision a device"),
    Route::new(Get, "/devices/{id}", Tenant(Viewer), "A device"),
    Route::new(Delete, "/devices/{id}", Tenant(Operator), "Revoke a device"),
    Route::new(
        Post,
        "/devices/{id}/certificate",
        Tenant(Operator),
        "Issue a device client certificate",
    ),
    // The keys sign every tenant's tokens.
    Route::new(
        Post,
        "/keys/rotate",
        Platform,
        "Rotate the token signing key",
    ),
];
