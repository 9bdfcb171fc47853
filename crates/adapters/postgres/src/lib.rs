//! PostgreSQL adapters, one module per bounded context beside the shared kernel.
//!
//! Each context (its queries and its schema's migrations) is a cargo feature, so a service
//! compiles and links its own context only: `ingestion`, `prediction`, `auth` (the auth
//! service) and `audit` (the gateway). The kernel is always there: the pool with TLS, the
//! migration runner and the service roles, pool metrics and the readiness check.

// Without any context the kernel's migration runner and error mapping have no caller.
#![cfg_attr(
    not(any(
        feature = "ingestion",
        feature = "prediction",
        feature = "auth",
        feature = "audit"
    )),
    allow(dead_code, unused_imports)
)]

mod kernel;

#[cfg(feature = "audit")]
pub mod audit;
#[cfg(feature = "auth")]
pub mod auth;
#[cfg(feature = "ingestion")]
pub mod ingestion;
#[cfg(feature = "prediction")]
pub mod prediction;

pub use kernel::{
    certificate_files, connect_pool, MigrateError, PgHealth, PgPool, PoolError, PoolMetrics,
    SERVICE_ROLES,
};
pub(crate) use kernel::{pool_error, store_error};
