//! Devices: provisioning a machine's MQTT identity on the broker, revoking it, and issuing
//! client certificates for mutual TLS.
//!
//! The broker enforces the result (its dynamic-security plugin): a device logs in with the
//! credentials returned once at provisioning, or with a certificate naming its username, and
//! may publish only its machine's telemetry and status and subscribe only to its commands.

pub mod certificates;
pub mod routes;

use std::sync::Arc;

use aurum_domain::auth::DeviceGrant;
use aurum_domain::{MachineId, TenantId};
use aurum_ports::auth::{
    BrokerAdminError, DeviceBroker, DeviceRecord, DeviceStore, NewDeviceError,
};
use aurum_ports::StoreError;
use base64::Engine;
use chrono::Utc;
use rand::RngCore;
use secrecy::SecretString;
use uuid::Uuid;

pub use certificates::{CaError, CsrError, DeviceCa, IssuedCertificate};

#[derive(Debug, thiserror::Error)]
pub enum DeviceError {
    #[error("no such device")]
    NotFound,
    #[error("the device is revoked")]
    Revoked,
    #[error(transparent)]
    MachineTaken(NewDeviceError),
    #[error("device certificates are not enabled (no device CA configured)")]
    NoCa,
    #[error(transparent)]
    Csr(#[from] CsrError),
    #[error(transparent)]
    Broker(#[from] BrokerAdminError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A freshly provisioned device and the password it logs in with: shown once, stored nowhere
/// but in the broker's salted hash.
#[derive(Debug)]
pub struct Provisioned {
    pub device: DeviceRecord,
    pub password: SecretString,
}

#[derive(Debug)]
pub struct DeviceService {
    store: Arc<dyn DeviceStore>,
    broker: Arc<dyn DeviceBroker>,
    ca: Option<DeviceCa>,
}

/// 256 random bits, URL-safe base64: far beyond guessing, safe in any MQTT client's config.
fn new_password() -> SecretString {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    SecretString::from(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes))
}

/// `{tenant}.{machine}.{8 hex}`: readable in broker logs, unique, and free of MQTT wildcards
/// (both ids are parsed slugs).
fn new_username(tenant: &TenantId, machine: &MachineId) -> String {
    let suffix = Uuid::new_v4().simple().to_string();
    format!("{}.{}.{}", tenant.as_str(), machine.as_str(), &suffix[..8])
}

impl DeviceService {
    pub fn new(
        store: Arc<dyn DeviceStore>,
        broker: Arc<dyn DeviceBroker>,
        ca: Option<DeviceCa>,
    ) -> Self {
        Self { store, broker, ca }
    }

    /// Records the device, then grants it on the broker. If the broker cannot be told, the
    /// record is revoked again so that the machine can be provisioned on a retry.
    pub async fn provision(
        &self,
        tenant: TenantId,
        machine: MachineId,
        by: &str,
    ) -> Result<Provisioned, DeviceError> {
        let device = DeviceRecord {
            id: Uuid::new_v4(),
            username: new_username(&tenant, &machine),
            tenant,
            machine,
            created_by: by.to_owned(),
            created_at: Utc::now(),
            revoked_at: None,
            revoked_by: None,
            cert_serials: Vec::new(),
        };
        self.store.insert(&device).await.map_err(|e| match e {
            NewDeviceError::Store(s) => DeviceError::Store(s),
            taken => DeviceError::MachineTaken(taken),
        })?;
        let password = new_password();
        let grant = DeviceGrant {
            username: device.username.clone(),
            tenant: device.tenant.clone(),
            machine: device.machine.clone(),
        };
        if let Err(e) = self.broker.grant(&grant, &password).await {
            if let Err(undo) = self.store.revoke(&device.tenant, device.id, "system").await {
                tracing::error!(error = %undo, device = %device.id, "cannot undo a device record the broker refused");
            }
            return Err(e.into());
        }
        Ok(Provisioned { device, password })
    }

    pub async fn list(&self, tenant: &TenantId) -> Result<Vec<DeviceRecord>, DeviceError> {
        Ok(self.store.list(tenant).await?)
    }

    pub async fn get(&self, tenant: &TenantId, id: Uuid) -> Result<DeviceRecord, DeviceError> {
        self.store
            .find(tenant, id)
            .await?
            .ok_or(DeviceError::NotFound)
    }

    /// Revokes the record and removes the device from the broker, which also drops a live
    /// connection. Repeating it re-applies the broker side, so a revocation that the broker
    /// missed completes on a retry.
    pub async fn revoke(
        &self,
        tenant: &TenantId,
        id: Uuid,
        by: &str,
    ) -> Result<DeviceRecord, DeviceError> {
        let device = self
            .store
            .revoke(tenant, id, by)
            .await?
            .ok_or(DeviceError::NotFound)?;
        self.broker.revoke(&device.username).await?;
        Ok(device)
    }

    /// Signs the device's certificate signing request with the device CA.
    pub async fn issue_certificate(
        &self,
        tenant: &TenantId,
        id: Uuid,
        csr_pem: &[u8],
    ) -> Result<(DeviceRecord, IssuedCertificate), DeviceError> {
        let ca = self.ca.as_ref().ok_or(DeviceError::NoCa)?;
        let device = self.get(tenant, id).await?;
        if device.revoked_at.is_some() {
            return Err(DeviceError::Revoked);
        }
        let issued = ca.sign(csr_pem, &device.username)?;
        self.store
            .add_certificate(tenant, id, &issued.serial)
            .await?;
        Ok((device, issued))
    }
}
