//! The prediction service's configuration.

use std::path::PathBuf;

use aurum_config::{
    ConfigError, ConfigProblem, DatabaseSettings, HttpSettings, Profile, TelemetrySettings,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PredictionConfig {
    pub profile: Profile,
    pub http: HttpSettings,
    pub database: DatabaseSettings,
    pub telemetry: TelemetrySettings,
    pub prediction: PredictionSettings,
    /// Access-token verification on the API (required in production).
    #[serde(default)]
    pub auth: Option<aurum_config::TokenSettings>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PredictionSettings {
    /// How often each replica checks the registry for a newly activated model.
    pub model_poll_s: u64,
    /// A model artifact registered and activated at start-up when no model is active yet
    /// (first install, demo).
    pub bootstrap_model: Option<PathBuf>,
    /// Largest model artifact accepted by `POST /v1/models`.
    pub max_model_bytes: usize,
    /// Consecutive predictions above a level that raise an alert, and below it that clear.
    pub alert_raise_after: usize,
    pub alert_clear_after: usize,
    /// An alert clears once the score is below this fraction of its threshold.
    pub alert_clear_ratio: f64,
    /// Anomaly alerts (category operational) start at this anomaly score (0..1; the model
    /// calibrates 0.5 to its healthy threshold).
    pub anomaly_alert_threshold: f64,
    /// Prediction history older than this is deleted.
    pub retention_days: u32,
}

impl Default for PredictionConfig {
    fn default() -> Self {
        Self {
            profile: Profile::Dev,
            http: HttpSettings {
                // Feature batches from ingestion run to a few MB (about 2 KB a machine).
                body_limit_bytes: 16 * 1024 * 1024,
                ..HttpSettings::with_port(8082)
            },
            database: DatabaseSettings::local("aurumai", "aurumai_prediction"),
            telemetry: TelemetrySettings::default(),
            prediction: PredictionSettings {
                model_poll_s: 10,
                bootstrap_model: None,
                max_model_bytes: 64 * 1024 * 1024,
                alert_raise_after: 2,
                alert_clear_after: 6,
                alert_clear_ratio: 0.7,
                anomaly_alert_threshold: 0.8,
                retention_days: 90,
            },
            auth: None,
        }
    }
}

impl PredictionConfig {
    /// Loads and checks the configuration; the production profile refuses weak settings.
    pub fn load() -> Result<Self, ConfigError> {
        aurum_config::load_checked(&Self::default(), Self::problems)
    }

    pub fn problems(&self) -> Vec<ConfigProblem> {
        let mut p = self.database.problems(self.profile);
        p.extend(aurum_config::token_problems(
            self.auth.as_ref(),
            self.profile,
        ));
        let s = &self.prediction;
        let mut bad = |key: &str, problem: &str| {
            p.push(ConfigProblem {
                key: key.into(),
                problem: problem.into(),
            })
        };
        if s.model_poll_s == 0 {
            bad("prediction.model_poll_s", "must be at least 1");
        }
        if s.alert_raise_after == 0 || s.alert_clear_after == 0 {
            bad(
                "prediction.alert_raise_after",
                "alert counts must be at least 1",
            );
        }
        if !(s.alert_clear_ratio > 0.0 && s.alert_clear_ratio <= 1.0) {
            bad("prediction.alert_clear_ratio", "must be in (0, 1]");
        }
        if !(s.anomaly_alert_threshold > 0.0 && s.anomaly_alert_threshold < 1.0) {
            bad("prediction.anomaly_alert_threshold", "must be in (0, 1)");
        }
        if s.retention_days == 0 {
            bad("prediction.retention_days", "must be at least 1");
        }
        p
    }
}
