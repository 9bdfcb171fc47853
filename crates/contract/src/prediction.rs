//! The prediction service's routes: scores, fleet health, models, alerts and emissions.

use aurum_domain::Role::{Admin, Operator, Viewer};

use crate::Access::{Platform, Service, Tenant};
use crate::Method::{Get, Post, Put};
use crate::Route;

pub const ROUTES: &[Route] = &[
    // Feature vectors carry their own tenant: only ingestion's service client sends them.
    Route::new(
        Post,
        "/features",
        Service,
        "Score a batch of feature vectors (from ingestion)",
    ),
    Route::new(
        Post,
        "/machines/{id}/predict",
        Tenant(Operator),
        "Score a machine's latest features now",
    ),
    Route::new(
        Get,
        "/machines/{id}/predictions",
        Tenant(Viewer),
        "A machine's prediction history",
    ),
    Route::new(
        Get,
        "/fleet/health",
        Tenant(Viewer),
        "Risk and status of every machine",
    ),
    Route::new(Get, "/models", Tenant(Viewer), "Registered models"),
    // One registry and one active model score every tenant's machines.
    Route::new(Post, "/models", Platform, "Register a model artifact"),
    Route::new(
        Post,
        "/models/{version}/activate",
        Platform,
        "Activate a model version",
    ),
    Route::new(Get, "/alerts", Tenant(Viewer), "Alerts, filtered"),
    Route::new(
        Post,
        "/alerts/{id}/ack",
        Tenant(Operator),
        "Acknowledge an alert",
    ),
    Route::new(
        Post,
        "/alerts/{id}/resolve",
        Tenant(Operator),
        "Resolve an alert",
    ),
    Route::new(
        Post,
        "/alerts/{id}/feedback",
        Tenant(Operator),
        "Confirm or reject an alert (a true or false positive), against a maintenance event",
    ),
    Route::new(
        Get,
        "/esg/summary",
        Tenant(Viewer),
        "Emissions summary of a period",
    ),
    Route::new(
        Get,
        "/esg/machines/{id}",
        Tenant(Viewer),
        "A machine's emissions",
    ),
    Route::new(
        Get,
        "/esg/report.csv",
        Tenant(Viewer),
        "Emissions report as CSV",
    ),
    Route::new(
        Get,
        "/esg/forecast",
        Tenant(Viewer),
        "Emissions forecast, next 24 h",
    ),
    Route::new(Get, "/esg/factors", Tenant(Viewer), "Emission factors"),
    // The cited factor library every tenant's reports are computed from.
    Route::new(
        Post,
        "/esg/factors",
        Platform,
        "Add an emission factor version",
    ),
    Route::new(
        Put,
        "/esg/sites/{site}/region",
        Tenant(Admin),
        "Set a site's grid region",
    ),
];
