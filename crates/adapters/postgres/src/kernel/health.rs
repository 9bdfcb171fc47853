//! `/readyz`'s database check, the same for every service.

use async_trait::async_trait;
use aurum_ports::{HealthCheck, HealthStatus};
use diesel_async::RunQueryDsl;

use super::{pool_error, store_error, PgPool};

/// `/readyz`'s database check: a round trip through the pool.
#[derive(Debug, Clone)]
pub struct PgHealth {
    pool: PgPool,
}

impl PgHealth {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[async_trait]
impl HealthCheck for PgHealth {
    async fn check(&self) -> HealthStatus {
        let result = async {
            let mut conn = self.pool.get().await.map_err(pool_error)?;
            diesel::sql_query("SELECT 1")
                .execute(&mut conn)
                .await
                .map_err(store_error)
        }
        .await;
        HealthStatus {
            name: "database",
            ready: result.is_ok(),
            detail: result.err().map(|e| {
                tracing::warn!(error = %e, "database readiness check failed");
                "database unreachable".to_owned()
            }),
        }
    }
}
