//! What the prediction service needs from storage: the model registry, the machines it scores
//! with their latest features and predictions, and alerts.

use async_trait::async_trait;
use aurum_domain::prediction::{AlertCategory, AlertState, Prediction, Severity, Verdict};
use aurum_domain::{FeatureVector, MachineId, MachineType, SiteId, TenantId, TimeRange};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{MachineKey, StoreError};

/// A registered model, without its artifact bytes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ModelRecord {
    pub version: String,
    pub trained_at: DateTime<Utc>,
    pub registered_at: DateTime<Utc>,
    pub sha256: String,
    pub active: bool,
    pub activated_at: Option<DateTime<Utc>>,
    pub activated_by: Option<String>,
    /// The evaluation figures the artifact carries, as JSON.
    pub evaluation: Option<serde_json::Value>,
}

/// A model artifact to register: its bytes are kept exactly as given.
#[derive(Debug, Clone)]
pub struct NewModel<'a> {
    pub version: &'a str,
    pub trained_at: DateTime<Utc>,
    pub sha256: &'a str,
    pub artifact: &'a [u8],
    pub evaluation: Option<serde_json::Value>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RegisterModelOutcome {
    Registered,
    /// The same bytes were registered before under this version: nothing to do.
    AlreadyRegistered,
    /// The version exists with different bytes: versions are immutable.
    VersionTaken,
}

#[async_trait]
pub trait ModelRegistry: Send + Sync + std::fmt::Debug {
    async fn register(&self, model: NewModel<'_>) -> Result<RegisterModelOutcome, StoreError>;
    async fn list(&self) -> Result<Vec<ModelRecord>, StoreError>;
    async fn artifact(&self, version: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// The version marked active, if any.
    async fn active_version(&self) -> Result<Option<String>, StoreError>;
    /// Marks `version` active (and no other). `false` when no such version exists.
    async fn activate(&self, version: &str, by: &str) -> Result<bool, StoreError>;
}

/// A machine as the prediction service knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TrackedMachine {
    #[serde(skip)]
    pub key: MachineKey,
    pub tenant_id: TenantId,
    pub machine_id: MachineId,
    pub machine_type: MachineType,
    pub site_id: Option<SiteId>,
}

/// A machine's identity as a feature batch names it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineIdentity {
    pub tenant_id: TenantId,
    pub machine_id: MachineId,
    pub machine_type: MachineType,
    pub site_id: Option<SiteId>,
}

/// A machine's latest risk and anomaly scores (0..=100 and 0..=1), oldest first.
#[derive(Debug, Clone, PartialEq)]
pub struct RecentScores {
    pub machine: MachineKey,
    pub risk: Vec<f64>,
    pub anomaly: Vec<f64>,
}

/// One row of the fleet view: a machine's latest assessment, flat and small, since the view
/// lists every machine of a tenant at once.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FleetEntry {
    pub machine_id: MachineId,
    pub machine_type: MachineType,
    pub site_id: Option<SiteId>,
    /// End of the latest feature window received.
    pub window_end: DateTime<Utc>,
    /// The latest prediction (all `None` until the machine is first scored).
    pub predicted_at: Option<DateTime<Utc>>,
    pub model_version: Option<String>,
    pub risk_score: Option<f64>,
    pub failure_probability: Option<f64>,
    pub rul_hours: Option<f64>,
    pub anomaly_score: Option<f64>,
    /// The feature that weighed most in the latest prediction.
    pub top_feature: Option<String>,
    pub open_alerts: i64,
    pub worst_open_severity: Option<Severity>,
}

#[async_trait]
pub trait PredictionStore: Send + Sync + std::fmt::Debug {
    /// Records the machines (new ones get a key; a changed site is updated) and returns them
    /// in the order given.
    async fn track(&self, machines: &[MachineIdentity]) -> Result<Vec<TrackedMachine>, StoreError>;
    async fn find(
        &self,
        tenant: &TenantId,
        machine: &MachineId,
    ) -> Result<Option<TrackedMachine>, StoreError>;
    /// Saves each machine's newest features and, when scored, its prediction: the history
    /// row and the machine's status. Older windows than the stored status never overwrite it.
    async fn save(
        &self,
        scored: &[(MachineKey, &FeatureVector, Option<&Prediction>)],
    ) -> Result<(), StoreError>;
    /// The latest scores each machine's status keeps, oldest first.
    async fn recent_scores(&self, keys: &[MachineKey]) -> Result<Vec<RecentScores>, StoreError>;
    async fn latest_features(&self, key: MachineKey) -> Result<Option<FeatureVector>, StoreError>;
    async fn predictions(
        &self,
        key: MachineKey,
        range: TimeRange,
        limit: usize,
    ) -> Result<Vec<Prediction>, StoreError>;
    /// Deletes prediction history older than `days`; returns the rows deleted.
    async fn apply_retention(&self, days: u32) -> Result<u64, StoreError>;
    /// Every machine of the tenant with its latest prediction and open alerts, highest risk
    /// first (machines not yet scored last).
    async fn fleet(&self, tenant: &TenantId) -> Result<Vec<FleetEntry>, StoreError>;
}

/// An alert as stored.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Alert {
    pub id: i64,
    pub machine_id: MachineId,
    pub category: AlertCategory,
    pub severity: Severity,
    pub state: AlertState,
    /// The latest score that kept the alert in its state, and the highest seen.
    pub score: f64,
    pub peak_score: f64,
    pub message: String,
    pub model_version: Option<String>,
    pub opened_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub acknowledged_at: Option<DateTime<Utc>>,
    pub acknowledged_by: Option<String>,
    pub resolved_at: Option<DateTime<Utc>>,
    pub resolved_by: Option<String>,
    pub resolution_note: Option<String>,
    /// A planner's verdict, once given.
    pub feedback: Option<AlertFeedback>,
}

/// A planner's verdict on an alert, against the maintenance event that shows it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertFeedback {
    pub verdict: Verdict,
    /// The event of the machine's maintenance log (ingestion's `/machines/{id}/events`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub event_id: Option<i64>,
    pub by: String,
    pub at: DateTime<Utc>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// A change to a machine's unresolved alert of a category, decided by the alert policy.
#[derive(Debug, Clone, PartialEq)]
pub enum AlertChange {
    Raise {
        severity: Severity,
        score: f64,
        message: String,
    },
    /// Severity and score of the unresolved alert change.
    Update {
        severity: Severity,
        score: f64,
        message: String,
    },
    /// The condition is over: resolved by the system.
    Clear { score: f64 },
}

#[derive(Debug, Clone, PartialEq)]
pub struct AlertUpdate {
    pub machine: MachineKey,
    pub category: AlertCategory,
    pub change: AlertChange,
    pub model_version: Option<String>,
    pub at: DateTime<Utc>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AlertFilter {
    pub state: Option<AlertState>,
    pub severity: Option<Severity>,
    pub machine: Option<MachineId>,
    pub limit: usize,
}

/// The result of a lifecycle step asked by a person.
#[derive(Debug, Clone, PartialEq)]
pub enum AlertTransition {
    Done(Alert),
    NotFound,
    /// The alert is already resolved.
    Refused(Alert),
}

#[async_trait]
pub trait AlertStore: Send + Sync + std::fmt::Debug {
    /// The severity of each machine's unresolved alert per category, for the given machines.
    async fn unresolved(
        &self,
        machines: &[MachineKey],
    ) -> Result<Vec<(MachineKey, AlertCategory, Severity)>, StoreError>;
    async fn apply(&self, updates: &[AlertUpdate]) -> Result<(), StoreError>;
    async fn list(&self, tenant: &TenantId, filter: &AlertFilter)
        -> Result<Vec<Alert>, StoreError>;
    async fn acknowledge(
        &self,
        tenant: &TenantId,
        id: i64,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<AlertTransition, StoreError>;
    async fn resolve(
        &self,
        tenant: &TenantId,
        id: i64,
        by: &str,
        note: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<AlertTransition, StoreError>;
    /// Records (or replaces) the verdict on an alert in any state.
    async fn give_feedback(
        &self,
        tenant: &TenantId,
        id: i64,
        feedback: &AlertFeedback,
    ) -> Result<AlertTransition, StoreError>;
}
