//! The broker's side of device provisioning: who may log in, and which topics each may use.

use aurum_domain::DeviceGrant;
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
