//! AurumAI fleet simulator: simulated haul trucks, grinding mills and boilers that wear out
//! and fail, publishing telemetry over MQTT or HTTP like real machines; with ground-truth
//! labels, it is the demo workload, the load generator and the source of training data.
//!
//! - [`degradation`]: the lifecycle (normal -> drift -> failure -> repaired) and wear.
//! - [`profiles`]: each machine type's operating point and how wear shows in its metrics.
//! - [`machine`], [`fleet`]: simulated machines and fleets.
//! - [`labels`], [`dataset`]: ground truth as CSV; offline run-to-failure datasets.
//! - [`transport`], [`runner`]: live publishing with many messages in flight.
//! - [`cli`]: the `aurum-sim` command line.

pub mod cli;
pub mod dataset;
pub mod degradation;
pub mod error;
pub mod fleet;
pub mod labels;
pub mod machine;
pub mod noise;
pub mod profiles;
pub mod runner;
pub mod shutdown;
pub mod transport;

pub use error::SimError;
pub use runner::{run, RunConfig, Summary};
