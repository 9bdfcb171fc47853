//! The prediction context: scores and their explanations, the alert lifecycle, and emissions
//! accounting (ESG).

pub mod alerts;
pub mod esg;
pub mod scoring;

pub use alerts::{
    AlertCategory, AlertDecision, AlertPolicy, AlertState, PolicyError, Severity, TransitionError,
    Verdict,
};
pub use esg::{
    carbon_intensity, forecast_next_24h, ActivityKind, EmissionFactor, EsgError, FactorBook,
    FactorSource, Forecast, ForecastHour, Ledger, LedgerLine, MachineActivity, MachineRef,
    MeteredActivity, NewFactor, Period, Region, Scope, Totals,
};
pub use scoring::{FeatureContribution, Prediction};
