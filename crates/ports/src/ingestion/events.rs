//! The maintenance log: events recorded against a tenant's machines.

use async_trait::async_trait;
use aurum_domain::ingestion::{MaintenanceEvent, NewEvent};
use aurum_domain::{MachineId, TenantId};
use chrono::{DateTime, Utc};

use crate::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum EventError {
    #[error("machine {0} is not registered")]
    UnknownMachine(MachineId),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Which of a machine's events to read: those that occurred in `[from, to)`, newest first,
/// at most `limit`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventQuery {
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub limit: u32,
}

#[async_trait]
pub trait MaintenanceLog: Send + Sync + std::fmt::Debug {
    async fn record(
        &self,
        tenant: &TenantId,
        machine: &MachineId,
        event: &NewEvent,
        recorded_by: &str,
    ) -> Result<MaintenanceEvent, EventError>;

    async fn list(
        &self,
        tenant: &TenantId,
        machine: &MachineId,
        query: &EventQuery,
    ) -> Result<Vec<MaintenanceEvent>, StoreError>;
}
