//! Every route of the service in one place. New features register theirs here.

use actix_web::web;

use crate::oidc::{
    authorize, discovery, introspect, jwks, logout, revocations, revoke, token, userinfo,
};
use crate::{clients, devices, users};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(
        "/.well-known/openid-configuration",
        web::get().to(discovery::openid_configuration),
    )
    .route(
        "/.well-known/oauth-authorization-server",
        web::get().to(discovery::openid_configuration),
    )
    .route("/jwks", web::get().to(jwks::jwks))
    .route("/revocations", web::get().to(revocations::feed))
    .route("/authorize", web::get().to(authorize::authorize))
    .route("/authorize/login", web::post().to(authorize::login))
    .route(
        "/authorize/federation/{provider}",
        web::get().to(crate::federation::routes::start),
    )
    .route(
        "/federation/{provider}/callback",
        web::get().to(crate::federation::routes::callback),
    )
    .route("/token", web::post().to(token::token))
    .route("/userinfo", web::get().to(userinfo::userinfo))
    .route("/userinfo", web::post().to(userinfo::userinfo))
    .route("/revoke", web::post().to(revoke::revoke))
    .route("/introspect", web::post().to(introspect::introspect))
    .route("/logout", web::get().to(logout::logout))
    .service(
        web::scope("/v1")
            .configure(users::routes::configure)
            .configure(clients::routes::configure)
            .configure(devices::routes::configure)
            .route("/keys/rotate", web::post().to(jwks::rotate)),
    );
}
