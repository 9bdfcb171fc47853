//! The prediction context: the model registry, scores and alerts, and the emissions (ESG)
//! store.

mod esg;
mod scoring;

pub use esg::{AddFactorError, EsgStore, RecordOutcome, ReportData, ReportQuery};
pub use scoring::{
    Alert, AlertChange, AlertFeedback, AlertFilter, AlertStore, AlertTransition, AlertUpdate,
    FleetEntry, MachineIdentity, ModelRecord, ModelRegistry, NewModel, PredictionStore,
    RecentScores, RegisterModelOutcome, TrackedMachine,
};
