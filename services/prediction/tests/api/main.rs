//! The prediction service's HTTP API, against a fresh PostgreSQL database per test and a
//! model trained on simulated run-to-failure data.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod alerts;
mod end_to_end;
mod esg;
mod features;
mod fleet;
mod health;
mod helpers;
mod models;
mod storage;
mod tokens;

#[path = "../support/simulated.rs"]
mod simulated;
