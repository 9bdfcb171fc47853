//! The ingestion service's behaviour, against a real PostgreSQL and real Mosquitto brokers.

mod health;
mod helpers;
mod machines;
mod reliability;
mod storage;
mod telemetry_http;
mod telemetry_mqtt;
