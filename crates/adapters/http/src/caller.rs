//! Who a request acts for: the tenant and the person or service behind it.
//!
//! Until the gateway verifies tokens and forwards these, callers name them in the
//! `X-Aurum-Tenant` and `X-Aurum-User` headers; they are parsed like any other input.

use std::future::{ready, Ready};

use actix_web::dev::Payload;
use actix_web::{FromRequest, HttpRequest};
use aurum_domain::TenantId;

use crate::Problem;

pub const TENANT_HEADER: &str = "x-aurum-tenant";
pub const USER_HEADER: &str = "x-aurum-user";

/// The tenant whose data a request reads or writes.
#[derive(Debug, Clone)]
pub struct Tenant(pub TenantId);

impl FromRequest for Tenant {
    type Error = Problem;
    type Future = Ready<Result<Self, Problem>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let result = match req.headers().get(TENANT_HEADER).map(|v| v.to_str()) {
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

/// The person or service acting, recorded on what they change (an acknowledged alert, an
/// activated model). 1 to 200 printable characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actor(String);

impl Actor {
    pub const MAX_LEN: usize = 200;

    pub fn parse(s: &str) -> Option<Self> {
        let ok = !s.is_empty()
            && s.chars().count() <= Self::MAX_LEN
            && s.chars().all(|c| !c.is_control());
        ok.then(|| Self(s.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromRequest for Actor {
    type Error = Problem;
    type Future = Ready<Result<Self, Problem>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let result = match req.headers().get(USER_HEADER).map(|v| v.to_str()) {
            None => Err(Problem::bad_request("the X-Aurum-User header is required")),
            Some(Err(_)) => Err(Problem::bad_request("X-Aurum-User is not valid text")),
            Some(Ok(v)) => Actor::parse(v).ok_or_else(|| {
                Problem::bad_request(format!(
                    "X-Aurum-User must be 1 to {} printable characters",
                    Actor::MAX_LEN
                ))
            }),
        };
        ready(result)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn actors_are_short_printable_names() {
        assert!(Actor::parse("planner@demo").is_some());
        assert!(Actor::parse("").is_none());
        assert!(Actor::parse("a\nb").is_none());
        assert!(Actor::parse(&"x".repeat(201)).is_none());
    }
}
