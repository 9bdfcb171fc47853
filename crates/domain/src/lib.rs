//! AurumAI's domain: the model and its rules, free of I/O.
//!
//! One module per bounded context beside the shared kernel; each context is a cargo feature,
//! so a service compiles its own context only. The kernel's types are re-exported here.
//!
//! Values here are parsed at the edge (`MachineId::parse`, `MetricName::parse`, ...): once one
//! exists it is valid, so the rest of the platform never re-checks it.

mod kernel;

#[cfg(feature = "auth")]
pub mod auth;
#[cfg(feature = "ingestion")]
pub mod ingestion;
#[cfg(feature = "prediction")]
pub mod prediction;

pub use kernel::{
    activity, catalogue, downsampling, features, identity, ids, machine, profile, run_to_failure,
    telemetry,
};

pub use activity::{rate_unit_integral, Activity, ActivityError, ActivityUnit, RateIntegrator};
pub use catalogue::{MetricSpec, Unit};
pub use downsampling::{Bucket, BucketQuery, Step, TimeRange};
pub use features::{
    Baseline, BaselineBuilder, FeatureError, FeatureSchema, FeatureVector, HealthyBaseline,
    MetricFeatures, MetricWindow, Sample, WindowSpec, WindowStats,
};
pub use identity::{Role, UnknownRole};
pub use ids::{IdError, MachineId, MetricName, SiteId, TenantId};
pub use machine::{Machine, MachineType, NewMachine};
pub use profile::{
    EsgActivity, FieldError, MetricKind, Profile, ProfileDraft, ProfileHistory, ProfileId,
    ProfileMetric, ProfileSpec, UnitSymbol,
};
pub use run_to_failure::RunPhase;
pub use telemetry::{Reading, Seq, TelemetryMessage};
