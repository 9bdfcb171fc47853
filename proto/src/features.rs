//! Feature batches, ingestion -> prediction (`POST /v1/features`, JSON).
//!
//! Ingestion computes per machine the windowed statistics of every metric
//! ([`FeatureVector`]) and, for rate metrics (fuel, power, throughput), the activity
//! integrated over time since the previous batch ([`ActivityRecord`]). Prediction scores the
//! vectors and accounts the activity for ESG reports.

use aurum_domain::{FeatureVector, MachineId, MachineType, MetricName, SiteId, TenantId};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The body of `POST /v1/features`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FeatureBatch {
    pub vectors: Vec<MachineFeatures>,
}

impl FeatureBatch {
    /// The largest batch prediction accepts in one request.
    pub const MAX_VECTORS: usize = 5_000;
}

/// One machine's features at `features.window_end`, and its activity since the last batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineFeatures {
    pub tenant_id: TenantId,
    pub machine_id: MachineId,
    pub machine_type: MachineType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub site_id: Option<SiteId>,
    pub features: FeatureVector,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub activity: Vec<ActivityRecord>,
    /// W3C `traceparent` of a sampled message behind these features: prediction continues
    /// that trace for this machine, so device -> ingestion -> prediction -> alert is one trace.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

/// A rate metric integrated over `[from, to)`: `amount` is the rate times hours (litres for
/// `fuel_rate_lh`, kWh for `power_kw`, tonnes for `throughput_tph`). Consecutive records of a
/// machine and metric do not overlap, so summing them never counts activity twice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ActivityRecord {
    pub metric: MetricName,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub amount: f64,
}
