//! The platform as deployed: separate service processes, their traces and their logs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod harness;
mod logs;
mod traces;
mod workload;

#[path = "../../../../services/prediction/tests/support/simulated.rs"]
mod simulated;
