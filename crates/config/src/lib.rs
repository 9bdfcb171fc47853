//! Configuration for every AurumAI service.
//!
//! Layers, later wins: the service's defaults -> `aurumai.toml` (or the file named by
//! `AURUM_CONFIG`) -> `AURUM_*` environment variables (`__` separates levels:
//! `AURUM_DATABASE__HOST`) -> secret files named by `AURUM_*_FILE` variables
//! (`AURUM_DATABASE__PASSWORD_FILE=/run/secrets/db`), the way Kubernetes and Docker mount
//! secrets. The production profile refuses weak settings at start-up.

mod checks;
mod loader;
mod settings;

pub use checks::{check_secret_key, ConfigProblem};
pub use loader::{load, load_checked, ConfigError};
pub use settings::{
    token_problems, DatabaseSettings, HttpSettings, LogFormat, MqttSettings, OtlpProtocol, Profile,
    ServiceClientSettings, SslMode, TelemetrySettings, TokenSettings,
};
