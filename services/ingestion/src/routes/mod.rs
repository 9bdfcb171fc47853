//! HTTP routes of the ingestion service (`/v1`).

pub mod events;
pub mod machines;
pub mod profiles;
pub mod telemetry;

use actix_web::web;
use aurum_authn::declared;
use aurum_contract::ingestion::ROUTES;

/// Every `/v1` route, each the resource its declaration in `aurum_contract::ingestion`
/// describes (who may call it is checked there, on the matched route).
pub fn configure(cfg: &mut web::ServiceConfig) {
    let r = |path| declared(ROUTES, path);
    cfg.service(r("/telemetry").route(web::post().to(telemetry::post_batch)))
        .service(
            r("/machines")
                .route(web::post().to(machines::register))
                .route(web::get().to(machines::list)),
        )
        .service(r("/machines/{id}").route(web::get().to(machines::get)))
        .service(r("/machines/{id}/telemetry").route(web::get().to(telemetry::get_series)))
        .service(
            r("/machines/{id}/events")
                .route(web::post().to(events::record))
                .route(web::get().to(events::list)),
        )
        .service(
            r("/profiles")
                .route(web::get().to(profiles::list))
                .route(web::post().to(profiles::create)),
        )
        .service(
            r("/profiles/{id}")
                .route(web::get().to(profiles::get))
                .route(web::put().to(profiles::update))
                .route(web::delete().to(profiles::delete)),
        );
}
