//! ESG storage: versioned emission factors, accounted activity and site grid regions.

use async_trait::async_trait;
use aurum_domain::prediction::{
    EmissionFactor, MachineActivity, MachineRef, MeteredActivity, NewFactor, Period, Region,
};
use aurum_domain::{MachineId, SiteId, TenantId};
use chrono::{DateTime, Utc};

use crate::{MachineKey, StoreError};

/// What recording a batch of activity did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordOutcome {
    /// Periods stored.
    pub inserted: u64,
    /// Periods already stored (a redelivered batch) and left untouched.
    pub duplicates: u64,
}

/// Why a factor version was not added.
#[derive(Debug, thiserror::Error)]
pub enum AddFactorError {
    /// The new version would rewrite the validity of versions already in force: it must start
    /// after the open version of its (kind, region) started.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Which activity a report covers.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportQuery {
    pub tenant: TenantId,
    pub period: Period,
    pub site: Option<SiteId>,
    pub machine: Option<MachineId>,
    /// Only what the platform knew at this instant is used: activity recorded and site
    /// regions set by then. Factors are returned whole and filtered by
    /// [`aurum_domain::prediction::FactorBook::as_of`].
    pub as_of: DateTime<Utc>,
}

/// Everything a report is computed from.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ReportData {
    /// The tenant's machines matching the query, their grid region resolved (GLOBAL when the
    /// site has none).
    pub machines: Vec<MachineRef>,
    /// Their activity overlapping the period.
    pub activity: Vec<MachineActivity>,
    /// Every version of every factor.
    pub factors: Vec<EmissionFactor>,
}

#[async_trait]
pub trait EsgStore: Send + Sync + std::fmt::Debug {
    /// Stores a batch of activity of the tenant's machines in one transaction, idempotently
    /// on (machine, metric, period start), with a number of statements bounded by the batch
    /// size and not by its number of machines. If any machine key is not one of the tenant's,
    /// the whole batch is refused ([`StoreError::Refused`]) and nothing is stored.
    async fn record_activity(
        &self,
        tenant: &TenantId,
        activity: &[(MachineKey, MeteredActivity)],
    ) -> Result<RecordOutcome, StoreError>;

    /// Every version of every factor, by kind, region and version.
    async fn list_factors(&self) -> Result<Vec<EmissionFactor>, StoreError>;

    /// Adds the next version of a factor: closes the open version of its (kind, region) at
    /// the new version's `valid_from` and inserts the new one, atomically.
    async fn add_factor(&self, factor: &NewFactor) -> Result<EmissionFactor, AddFactorError>;

    /// Sets the electricity grid region of a site (from now on; earlier reports as of an
    /// earlier instant keep the region known then).
    async fn set_site_region(
        &self,
        tenant: &TenantId,
        site: &SiteId,
        region: &Region,
    ) -> Result<(), StoreError>;

    /// The data a report needs. An unknown machine or site yields no machines.
    async fn load_report(&self, query: &ReportQuery) -> Result<ReportData, StoreError>;
}
