//! AurumAI's domain: the model and its rules, free of I/O.
//!
//! Values here are parsed at the edge (`MachineId::parse`, `MetricName::parse`, ...): once one
//! exists it is valid, so the rest of the platform never re-checks it.

pub mod activity;
pub mod alerts;
pub mod catalogue;
pub mod device;
pub mod downsampling;
pub mod esg;
pub mod features;
pub mod identity;
pub mod ids;
pub mod machine;
pub mod prediction;
pub mod telemetry;
pub mod validation;

pub use activity::{rate_unit_integral, Activity, ActivityError, ActivityUnit, RateIntegrator};
pub use alerts::{
    AlertCategory, AlertDecision, AlertPolicy, AlertState, PolicyError, Severity, TransitionError,
};
pub use catalogue::{MetricSpec, Unit};
pub use device::{DeviceGrant, DeviceTopics};
pub use downsampling::{Bucket, BucketQuery, Step, TimeRange};
pub use esg::{
    carbon_intensity, forecast_next_24h, ActivityKind, EmissionFactor, EsgError, FactorBook,
    FactorSource, Forecast, ForecastHour, Ledger, LedgerLine, MachineActivity, MachineRef,
    MeteredActivity, NewFactor, Period, Region, Scope, Totals,
};
pub use features::{
    Baseline, BaselineBuilder, FeatureError, FeatureSchema, FeatureVector, HealthyBaseline,
    MetricFeatures, MetricWindow, Sample, WindowSpec, WindowStats,
};
pub use identity::{Role, UnknownRole};
pub use ids::{IdError, MachineId, MetricName, SiteId, TenantId};
pub use machine::{Machine, MachineType, NewMachine};
pub use prediction::{FeatureContribution, Prediction};
pub use telemetry::{Reading, Seq, TelemetryMessage};
pub use validation::{RejectReason, Rejection, ValidatedMessage, ValidationPolicy};
