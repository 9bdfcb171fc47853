//! A tenant's machine profiles and their versions. The built-in profiles are not stored: the
//! application serves them itself.

use async_trait::async_trait;
use aurum_domain::{Profile, ProfileHistory, ProfileId, ProfileSpec, TenantId};
use chrono::{DateTime, Utc};

use crate::StoreError;

#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    #[error("profile {0} already exists")]
    AlreadyExists(ProfileId),
    #[error("profile {0} does not exist")]
    NotFound(ProfileId),
    #[error("profile {id} is used by {machines} machine(s)")]
    InUse { id: ProfileId, machines: i64 },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A profile that changed (a version was added, or it was deleted), and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProfileChange {
    pub tenant: TenantId,
    pub id: ProfileId,
    pub at: DateTime<Utc>,
}

#[async_trait]
pub trait ProfileStore: Send + Sync + std::fmt::Debug {
    /// The latest version of each of the tenant's profiles, by id.
    async fn list(&self, tenant: &TenantId) -> Result<Vec<Profile>, StoreError>;
    /// Every version of a profile, or `None` when the tenant has no such profile.
    async fn history(
        &self,
        tenant: &TenantId,
        id: &ProfileId,
    ) -> Result<Option<ProfileHistory>, StoreError>;
    /// Version 1, in force from now.
    async fn create(
        &self,
        tenant: &TenantId,
        id: &ProfileId,
        spec: &ProfileSpec,
        actor: &str,
    ) -> Result<Profile, ProfileError>;
    /// The next version, in force from now; earlier readings keep their version.
    async fn update(
        &self,
        tenant: &TenantId,
        id: &ProfileId,
        spec: &ProfileSpec,
        actor: &str,
    ) -> Result<Profile, ProfileError>;
    /// Removes every version; refused while a machine uses the profile.
    async fn delete(&self, tenant: &TenantId, id: &ProfileId) -> Result<(), ProfileError>;
    /// The profiles changed at or after `since`, oldest first.
    async fn changed_since(&self, since: DateTime<Utc>) -> Result<Vec<ProfileChange>, StoreError>;
}
