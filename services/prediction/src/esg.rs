//! ESG application service: records the activity ingestion sends and computes emission
//! reports and forecasts from the store's data with the domain's rules.

use std::collections::BTreeMap;
use std::sync::Arc;

use aurum_domain::prediction::{
    forecast_next_24h, ActivityKind, EmissionFactor, FactorBook, Forecast, Ledger, MachineRef,
    MeteredActivity, NewFactor, Period, Region,
};
use aurum_domain::{MachineId, MachineType, SiteId, TenantId};
use aurum_ports::prediction::{AddFactorError, EsgStore, ReportQuery};
use aurum_ports::{MachineKey, StoreError};
use aurum_proto::features::ActivityRecord;
use chrono::{DateTime, TimeDelta, Utc};

/// Failures of the ESG service, as handlers see them.
#[derive(Debug, thiserror::Error)]
pub enum EsgServiceError {
    #[error("ESG storage failed: {0}")]
    Store(#[from] StoreError),
    /// The request conflicts with stored facts (a factor version that would rewrite history).
    #[error("{0}")]
    Conflict(String),
}

impl From<AddFactorError> for EsgServiceError {
    fn from(e: AddFactorError) -> Self {
        match e {
            AddFactorError::Conflict(why) => EsgServiceError::Conflict(why),
            AddFactorError::Store(e) => EsgServiceError::Store(e),
        }
    }
}

/// What recording a batch's activity did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordSummary {
    pub inserted: u64,
    pub duplicates: u64,
    /// Records left out: an empty period, a negative or non-finite amount, or a metric that no
    /// machine type accounts.
    pub skipped: u64,
}

/// A computed report and what it was computed from.
#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub period: Period,
    pub as_of: DateTime<Utc>,
    pub machines: Vec<MachineRef>,
    pub ledger: Ledger,
}

/// Shared state of the ESG routes; cheap to clone.
#[derive(Debug, Clone)]
pub struct EsgState {
    store: Arc<dyn EsgStore>,
}

impl EsgState {
    pub fn new(store: Arc<dyn EsgStore>) -> Self {
        Self { store }
    }

    /// Stores the activity of a feature batch: `(tenant, machine, records)` per machine, of
    /// any number of tenants. Invalid records are skipped (and counted) rather than failing
    /// the batch: the features around them are still good. One store call per tenant, each one
    /// transaction, so the cost does not grow with round trips per machine. Idempotent, so a
    /// retried batch never counts activity twice.
    pub async fn record_activity_batch(
        &self,
        items: &[(&TenantId, MachineKey, &[ActivityRecord])],
    ) -> Result<RecordSummary, EsgServiceError> {
        let mut summary = RecordSummary::default();
        // Tenants in a stable order; a batch rarely holds more than a few.
        let mut by_tenant: BTreeMap<&TenantId, Vec<(MachineKey, MeteredActivity)>> =
            BTreeMap::new();
        for &(tenant, machine, records) in items {
            for r in records {
                let accounted = MachineType::ALL
                    .into_iter()
                    .any(|t| ActivityKind::classify(t, r.metric.as_str()).is_some());
                match MeteredActivity::new(r.metric.clone(), r.from, r.to, r.amount) {
                    Ok(a) if accounted => by_tenant.entry(tenant).or_default().push((machine, a)),
                    Ok(_) => summary.skipped += 1,
                    Err(e) => {
                        tracing::warn!(tenant = %tenant, machine = machine.0, metric = %r.metric, error = %e,
                            "activity record skipped");
                        summary.skipped += 1;
                    }
                }
            }
        }
        for (tenant, activity) in &by_tenant {
            let outcome = self.store.record_activity(tenant, activity).await?;
            summary.inserted += outcome.inserted;
            summary.duplicates += outcome.duplicates;
        }
        Ok(summary)
    }

    /// The ledger of a window, with the factors and regions known at `as_of`.
    pub async fn report(
        &self,
        tenant: &TenantId,
        period: Period,
        site: Option<SiteId>,
        machine: Option<MachineId>,
        as_of: DateTime<Utc>,
    ) -> Result<Report, EsgServiceError> {
        let query = ReportQuery {
            tenant: tenant.clone(),
            period,
            site,
            machine,
            as_of,
        };
        let data = self.store.load_report(&query).await?;
        let book = FactorBook::as_of(data.factors, as_of);
        let ledger = Ledger::account(period, &data.machines, &data.activity, &book);
        Ok(Report {
            period,
            as_of,
            machines: data.machines,
            ledger,
        })
    }

    /// The next 24 hourly emission values for the tenant (or one site), from the last
    /// [`aurum_domain::prediction::esg::FORECAST_DAYS`] days of activity.
    pub async fn forecast(
        &self,
        tenant: &TenantId,
        site: Option<SiteId>,
        now: DateTime<Utc>,
    ) -> Result<Forecast, EsgServiceError> {
        let history = now - TimeDelta::days(aurum_domain::prediction::esg::FORECAST_DAYS);
        let Ok(period) = Period::new(history, now) else {
            // Only a clock at the very start of time gets here: no history, a flat forecast.
            return Ok(forecast_next_24h(now, &[], &[], &FactorBook::default()));
        };
        let query = ReportQuery {
            tenant: tenant.clone(),
            period,
            site,
            machine: None,
            as_of: now,
        };
        let data = self.store.load_report(&query).await?;
        let book = FactorBook::as_of(data.factors, now);
        Ok(forecast_next_24h(
            now,
            &data.machines,
            &data.activity,
            &book,
        ))
    }

    pub async fn factors(&self) -> Result<Vec<EmissionFactor>, EsgServiceError> {
        Ok(self.store.list_factors().await?)
    }

    pub async fn add_factor(&self, factor: &NewFactor) -> Result<EmissionFactor, EsgServiceError> {
        Ok(self.store.add_factor(factor).await?)
    }

    pub async fn set_site_region(
        &self,
        tenant: &TenantId,
        site: &SiteId,
        region: &Region,
    ) -> Result<(), EsgServiceError> {
        Ok(self.store.set_site_region(tenant, site, region).await?)
    }
}
