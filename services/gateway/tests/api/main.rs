//! The gateway API tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod audit;
mod edge;
mod helpers;
mod matrix;
mod openapi;
mod proxy;
mod rate_limit;
