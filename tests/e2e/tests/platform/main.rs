//! The platform as deployed: separate service processes, their traces and their logs.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)] // what only the soak uses (killing services, the database proxy)
mod harness;
mod logs;
mod traces;
mod workload;

#[path = "../../../../services/prediction/tests/support/simulated.rs"]
mod simulated;
