//! The audit log of data access: append-only, one hash chain per tenant.

use async_trait::async_trait;
use aurum_domain::TenantId;
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::StoreError;

/// One access to tenant data, as the gateway saw it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NewAuditEntry {
    pub tenant: TenantId,
    /// The opaque subject id of the actor (never a name or an e-mail address).
    pub actor: String,
    /// Method and route template, e.g. `GET /api/v1/machines/{id}`.
    pub action: String,
    /// The concrete path, e.g. `/api/v1/machines/truck-7`.
    pub resource: String,
    /// The HTTP status answered.
    pub outcome: u16,
    pub request_id: String,
    pub at: DateTime<Utc>,
}

/// A stored entry: its place in the tenant's chain and its hashes (hex).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditEntry {
    pub seq: i64,
    #[serde(flatten)]
    pub entry: NewAuditEntry,
    pub prev_hash: String,
    pub hash: String,
}

/// Which entries to read.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    pub actor: Option<String>,
    pub action_prefix: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Entries with a sequence number below this (paging backwards); newest first.
    pub before_seq: Option<i64>,
    pub limit: u32,
}

/// The result of re-computing a tenant's chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ChainVerification {
    pub valid: bool,
    /// Entries checked.
    pub entries: u64,
    /// The first entry (sequence number) whose hash or link does not match, if any.
    pub first_broken_seq: Option<i64>,
    /// The retention anchor the chain starts from (the hash of the last deleted entry).
    pub anchor_seq: Option<i64>,
}

#[async_trait]
pub trait AuditStore: Send + Sync + std::fmt::Debug {
    /// Appends entries (in order) to their tenants' chains; concurrent writers take turns.
    async fn append(&self, entries: &[NewAuditEntry]) -> Result<(), StoreError>;
    async fn list(
        &self,
        tenant: &TenantId,
        query: &AuditQuery,
    ) -> Result<Vec<AuditEntry>, StoreError>;
    async fn verify(&self, tenant: &TenantId) -> Result<ChainVerification, StoreError>;
}
