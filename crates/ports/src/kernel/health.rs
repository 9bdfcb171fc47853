//! Readiness of the things a service depends on.

use async_trait::async_trait;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthStatus {
    pub name: &'static str,
    pub ready: bool,
    /// A short operator-facing reason when not ready; never a secret or driver dump.
    pub detail: Option<String>,
}

/// Something `/readyz` asks: the database, the broker connection.
#[async_trait]
pub trait HealthCheck: Send + Sync + std::fmt::Debug {
    async fn check(&self) -> HealthStatus;
}
