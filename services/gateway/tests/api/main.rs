//! The gateway API tests.
#![allow(clippy::unwrap_used, clippy::expect_used)]
