//! The auth context: what a device may do on the broker.

pub mod device;

pub use device::{DeviceGrant, DeviceTopics};
