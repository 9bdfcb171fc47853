//! AurumAI's domain: the model and its rules, free of I/O.
//!
//! Values here are parsed at the edge (`MachineId::parse`, `MetricName::parse`, ...): once one
//! exists it is valid, so the rest of the platform never re-checks it.

pub mod activity;
pub mod catalogue;
pub mod downsampling;
pub mod features;
pub mod ids;
pub mod machine;
pub mod telemetry;
pub mod validation;

pub use activity::{rate_unit_integral, Activity, ActivityError, ActivityUnit, RateIntegrator};
pub use catalogue::{MetricSpec, Unit};
pub use downsampling::{Bucket, BucketQuery, Step, TimeRange};
pub use features::{
    Baseline, BaselineBuilder, FeatureError, FeatureSchema, FeatureVector, HealthyBaseline,
    MetricFeatures, MetricWindow, Sample, WindowSpec, WindowStats,
};
pub use ids::{IdError, MachineId, MetricName, SiteId, TenantId};
pub use machine::{Machine, MachineType, NewMachine};
pub use telemetry::{Reading, Seq, TelemetryMessage};
pub use validation::{RejectReason, Rejection, ValidatedMessage, ValidationPolicy};
