//! The auth context: users, clients, grants and signing keys, devices and their broker
//! accounts, and federation with upstream identity providers.

mod accounts;
mod devices;
mod federation;

pub use accounts::{
    AuthorizationCode, ClientRecord, ClientStore, CodeRedemption, CreateOutcome, GrantStore,
    LoginAttemptState, LoginAttemptStore, NewUser, RefreshRotation, RefreshTokenRecord,
    RevocationEntry, RevocationKind, SecurityEventRecord, SecurityEventStore, SigningKeyRecord,
    SigningKeyStore, UserPatch, UserRecord, UserStore, GRANT_TYPES,
};
pub use devices::{BrokerAdminError, DeviceBroker, DeviceRecord, DeviceStore, NewDeviceError};
pub use federation::{FederationStore, PendingFederation};
