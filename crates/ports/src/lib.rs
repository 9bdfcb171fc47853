//! Ports: the traits AurumAI's application code needs from the outside world.
//!
//! One module per bounded context beside the shared kernel; each context is a cargo feature,
//! so a service compiles the ports of its own context only. Adapters (`crates/adapters/*`)
//! implement them; services depend on these traits only and pick the adapters in `main.rs`.
//! No database, broker or web framework type appears here.

mod kernel;

#[cfg(feature = "audit")]
pub mod audit;
#[cfg(feature = "auth")]
pub mod auth;
#[cfg(feature = "ingestion")]
pub mod ingestion;
#[cfg(feature = "prediction")]
pub mod prediction;

pub use kernel::{HealthCheck, HealthStatus, MachineKey, StoreError};
