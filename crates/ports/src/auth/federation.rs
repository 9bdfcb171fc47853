//! What federation with upstream OpenID Connect providers needs from storage: links from an
//! upstream identity to a platform user, and pending upstream sign-ins (single use).

use async_trait::async_trait;
use aurum_domain::TenantId;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::StoreError;

/// A sign-in sent to an upstream provider, waiting for its callback.
///
/// Looked up by the SHA-256 of the `state` sent upstream; `browser_hash` is the SHA-256 of the
/// cookie of the browser that started it. `login_request` is the platform's own pending
/// authorization request, as signed by the platform.
#[derive(Clone, PartialEq, Eq)]
pub struct PendingFederation {
    pub state_hash: String,
    pub provider: String,
    pub browser_hash: String,
    pub nonce: String,
    pub pkce_verifier: String,
    pub login_request: String,
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for PendingFederation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PendingFederation")
            .field("provider", &self.provider)
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

#[async_trait]
pub trait FederationStore: Send + Sync + std::fmt::Debug {
    /// The platform user an upstream identity is linked to (and notes the sign-in).
    async fn linked_user(&self, provider: &str, subject: &str) -> Result<Option<Uuid>, StoreError>;
    /// Links an upstream identity to a user; `false` when it is linked already.
    async fn link(&self, provider: &str, subject: &str, user: Uuid) -> Result<bool, StoreError>;
    /// The tenant's user (not anonymised) whose email is `email`, compared case-insensitively;
    /// `None` when there is none or more than one.
    async fn user_by_email(
        &self,
        tenant: &TenantId,
        email: &str,
    ) -> Result<Option<Uuid>, StoreError>;
    async fn put_pending(&self, pending: &PendingFederation) -> Result<(), StoreError>;
    /// Removes and returns the pending sign-in: a second call for the same state finds nothing.
    async fn take_pending(&self, state_hash: &str)
        -> Result<Option<PendingFederation>, StoreError>;
    /// Drops pending sign-ins that expired before `now`; how many.
    async fn purge_pending(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;
}
