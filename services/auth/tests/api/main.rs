//! The auth service's HTTP API against a fresh PostgreSQL database per test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod discovery;
mod helpers;
