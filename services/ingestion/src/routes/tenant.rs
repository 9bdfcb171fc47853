//! The tenant a request acts for.
//!
//! Until the gateway verifies tokens and forwards the tenant, callers name it in the
//! `X-Aurum-Tenant` header; it is parsed like any other input.

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use aurum_domain::TenantId;
use aurum_http::Problem;

pub const HEADER: &str = "x-aurum-tenant";

#[derive(Debug, Clone)]
pub struct Tenant(pub TenantId);

impl FromRequest for Tenant {
    type Error = Problem;
    type Future = Ready<Result<Self, Problem>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let result = match req.headers().get(HEADER).map(|v| v.to_str()) {
            None => Err(Problem::bad_request(
                "the X-Aurum-Tenant header is required",
            )),
            Some(Err(_)) => Err(Problem::bad_request("X-Aurum-Tenant is not valid text")),
            Some(Ok(v)) => TenantId::parse(v)
                .map(Tenant)
                .map_err(|e| Problem::bad_request(format!("X-Aurum-Tenant: {e}"))),
        };
        ready(result)
    }
}
