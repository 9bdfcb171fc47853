//! The auth service's HTTP API against a fresh PostgreSQL database per test.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod admin;
mod authlib;
mod brute_force;
mod client_credentials;
mod code_flow;
mod devices;
mod discovery;
mod federation;
mod gdpr;
mod helpers;
mod keys;
mod logging;
mod logout;
mod refresh;
mod revocation;
