//! HTTP handlers, one module per resource.

pub mod alerts;
pub mod esg;
pub mod features;
pub mod fleet;
pub mod machines;
pub mod models;

use actix_web::web;
use aurum_authn::declared;
use aurum_contract::prediction::ROUTES;
use aurum_http::Problem;
use aurum_ports::StoreError;

/// Every `/v1` route, each the resource its declaration in `aurum_contract::prediction`
/// describes (who may call it is checked there, on the matched route).
pub fn configure(cfg: &mut web::ServiceConfig) {
    let r = |path| declared(ROUTES, path);
    cfg.service(r("/features").route(web::post().to(features::post_batch)))
        .service(r("/machines/{id}/predict").route(web::post().to(machines::predict)))
        .service(r("/machines/{id}/predictions").route(web::get().to(machines::history)))
        .service(r("/fleet/health").route(web::get().to(fleet::health)))
        .service(
            r("/models")
                .route(web::get().to(models::list))
                .route(web::post().to(models::register)),
        )
        .service(r("/models/{version}/activate").route(web::post().to(models::activate)))
        .service(r("/alerts").route(web::get().to(alerts::list)))
        .service(r("/alerts/{id}/ack").route(web::post().to(alerts::acknowledge)))
        .service(r("/alerts/{id}/resolve").route(web::post().to(alerts::resolve)))
        .service(r("/alerts/{id}/feedback").route(web::post().to(alerts::feedback)))
        .configure(esg::configure);
}

/// A storage failure as the caller sees it: the cause is logged, never sent.
pub(crate) fn store_problem(e: &StoreError) -> Problem {
    Problem::store(e, "a prediction request")
}
