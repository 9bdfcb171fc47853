//! The ingestion service's behaviour, against a real PostgreSQL and real Mosquitto brokers.

// Test code: a failed unwrap is a failed test, with its message.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[path = "../support/service.rs"]
mod service;

mod access;
mod events;
mod features;
mod health;
mod helpers;
mod logging;
mod machines;
mod oversized;
mod profiles;
mod reliability;
mod startup;
mod storage;
mod telemetry_http;
mod telemetry_mqtt;
