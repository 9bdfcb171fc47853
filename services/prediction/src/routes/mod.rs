//! HTTP handlers, one module per resource.

pub mod alerts;
pub mod esg;
pub mod features;
pub mod fleet;
pub mod machines;
pub mod models;

use aurum_http::Problem;
use aurum_ports::StoreError;

/// A storage failure as the caller sees it: the cause is logged, never sent.
pub(crate) fn store_problem(e: &StoreError) -> Problem {
    tracing::error!(error = %e, "storage failed");
    if e.is_transient() {
        Problem::unavailable()
    } else {
        Problem::internal()
    }
}
