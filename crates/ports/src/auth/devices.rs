//! The broker's side of device provisioning: who may log in, and which topics each may use.

use aurum_domain::auth::DeviceGrant;
use secrecy::SecretString;

/// Why the broker did not apply a change.
#[derive(Debug, thiserror::Error)]
pub enum BrokerAdminError {
    /// The broker could not be reached or did not answer in time: retry later.
    #[error("broker unavailable: {0}")]
    Unavailable(String),
    /// The broker answered and refused the command.
    #[error("broker refused {command}: {reason}")]
    Refused { command: String, reason: String },
}

/// Manages device identities on the MQTT broker.
#[async_trait::async_trait]
pub trait DeviceBroker: Send + Sync + std::fmt::Debug {
    /// Lets the device log in with `password` and use only its machine's topics. Granting a
    /// username that exists already replaces its password and topics.
    async fn grant(
        &self,
        device: &DeviceGrant,
        password: &SecretString,
    ) -> Result<(), BrokerAdminError>;

    /// Removes the device: it can no longer log in, and a live connection is dropped. Revoking
    /// an unknown username succeeds (revocation is idempotent).
    async fn revoke(&self, username: &str) -> Result<(), BrokerAdminError>;
}

/// A device as recorded by the platform (never its password: only the broker holds that, hashed).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct DeviceRecord {
    pub id: uuid::Uuid,
    pub tenant: aurum_domain::TenantId,
    pub machine: aurum_domain::MachineId,
    pub username: String,
    pub created_by: String,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
    pub revoked_by: Option<String>,
    pub cert_serials: Vec<String>,
}

/// Why a device could not be recorded.
#[derive(Debug, thiserror::Error)]
pub enum NewDeviceError {
    #[error("machine {0} already has a live device; revoke it first")]
    MachineTaken(String),
    #[error(transparent)]
    Store(#[from] crate::StoreError),
}

/// The platform's record of devices, scoped by tenant in every call.
#[async_trait::async_trait]
pub trait DeviceStore: Send + Sync + std::fmt::Debug {
    async fn insert(&self, device: &DeviceRecord) -> Result<(), NewDeviceError>;
    async fn list(
        &self,
        tenant: &aurum_domain::TenantId,
    ) -> Result<Vec<DeviceRecord>, crate::StoreError>;
    async fn find(
        &self,
        tenant: &aurum_domain::TenantId,
        id: uuid::Uuid,
    ) -> Result<Option<DeviceRecord>, crate::StoreError>;
    /// Marks the device revoked (once: a second call keeps the first time and actor); `None`
    /// when the tenant has no such device.
    async fn revoke(
        &self,
        tenant: &aurum_domain::TenantId,
        id: uuid::Uuid,
        by: &str,
    ) -> Result<Option<DeviceRecord>, crate::StoreError>;
    /// Records the serial number of a client certificate issued to a live device.
    async fn add_certificate(
        &self,
        tenant: &aurum_domain::TenantId,
        id: uuid::Uuid,
        serial: &str,
    ) -> Result<(), crate::StoreError>;
}
