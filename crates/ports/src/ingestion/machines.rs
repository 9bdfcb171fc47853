//! The machine registry.

use async_trait::async_trait;
use aurum_domain::{Machine, MachineId, NewMachine, ProfileId, TenantId};

use crate::{MachineKey, StoreError};

#[derive(Debug, Clone, PartialEq)]
pub struct RegisteredMachine {
    pub key: MachineKey,
    pub machine: Machine,
}

#[derive(Debug, thiserror::Error)]
pub enum RegisterError {
    #[error("machine {0} is already registered")]
    AlreadyExists(MachineId),
    #[error("the tenant has no profile {0}")]
    UnknownProfile(ProfileId),
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[async_trait]
pub trait MachineRegistry: Send + Sync + std::fmt::Debug {
    async fn register(&self, machine: &NewMachine) -> Result<RegisteredMachine, RegisterError>;
    async fn find(
        &self,
        tenant: &TenantId,
        id: &MachineId,
    ) -> Result<Option<RegisteredMachine>, StoreError>;
    async fn list(&self, tenant: &TenantId) -> Result<Vec<Machine>, StoreError>;
}
