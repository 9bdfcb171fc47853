//! The gateway API tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod audit;
mod edge;
mod helpers;
mod matrix;
mod oidc_passthrough;
mod openapi;
mod platform;
mod proxy;
mod rate_limit;

#[path = "../../../prediction/tests/support/simulated.rs"]
mod simulated;
