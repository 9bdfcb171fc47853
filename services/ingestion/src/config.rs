//! The ingestion service's configuration.

use std::path::PathBuf;

use aurum_config::{
    ConfigError, DatabaseSettings, HttpSettings, MqttSettings, Profile, TelemetrySettings,
};
use aurum_domain::ingestion::ValidationPolicy;
use aurum_proto::features::FeatureBatch;
use chrono::TimeDelta;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IngestionConfig {
    pub profile: Profile,
    pub http: HttpSettings,
    pub database: DatabaseSettings,
    pub mqtt: MqttSettings,
    pub telemetry: TelemetrySettings,
    pub ingest: IngestSettings,
    pub features: FeatureSettings,
    /// Access-token verification on the API (required in production).
    #[serde(default)]
    pub auth: Option<aurum_config::TokenSettings>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IngestSettings {
    /// Subscribe to the broker (off for an HTTP-only replica).
    pub mqtt_enabled: bool,
    /// The shared-subscription group replicas join; empty (the default) subscribes without one,
    /// which only a single replica should do, and which survives broker restarts
    /// (`aurum_mqtt::telemetry_filter`).
    pub shared_group: String,
    /// Local write-ahead spool of received MQTT messages until they are committed.
    pub spool_dir: PathBuf,
    /// fsync the spool at most this often (ms); 0 leaves flushing to the OS, which survives a
    /// process crash but not a power loss.
    pub spool_fsync_ms: u64,
    /// Messages waiting between the broker and the database writers; when full, the service
    /// stops reading from the broker, which queues for its session.
    pub queue_capacity: usize,
    pub batch_max_messages: usize,
    pub batch_max_wait_ms: u64,
    /// Concurrent database writers.
    pub writers: usize,
    /// Largest MQTT payload accepted; larger ones are quarantined.
    pub max_payload_bytes: usize,
    /// Messages per HTTP batch.
    pub max_batch_messages: usize,
    pub max_future_s: i64,
    pub max_past_days: u32,
    pub partition_ahead_days: u32,
    /// Telemetry partitions and quarantine rows older than this are dropped.
    pub retention_days: u32,
    pub maintenance_interval_s: u64,
    /// How often (ms) the replica polls for profiles changed elsewhere: the longest an edit
    /// takes to be in force here.
    pub profile_refresh_ms: u64,
}

impl IngestSettings {
    pub fn validation_policy(&self) -> ValidationPolicy {
        ValidationPolicy {
            max_future: TimeDelta::seconds(self.max_future_s),
            max_past: TimeDelta::days(i64::from(self.max_past_days)),
        }
    }
}

/// Rolling features computed on the stream and sent to the prediction service.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct FeatureSettings {
    /// Base URL of the prediction service (`{prediction_url}/v1/features`); empty disables
    /// feature streaming.
    pub prediction_url: String,
    /// How often the features of machines that reported since the last emission are sent.
    pub interval_s: u64,
    /// Age of the oldest reading a metric's window keeps, relative to its newest.
    pub window_s: u64,
    /// Most readings a metric's window keeps.
    pub max_samples: usize,
    /// Hours of a machine's first data (as this process sees it) that its healthy baseline is
    /// learned from.
    pub baseline_h: u64,
    /// Longest gap between two readings of a rate metric that is still integrated into
    /// activity; a longer one means the machine was off or data is missing.
    pub activity_max_gap_s: u64,
    /// Committed messages waiting for the feature task; beyond that they are dropped from
    /// features (never from storage).
    pub queue_capacity: usize,
    /// Most machines tracked at once; the memory cap of the feature state.
    pub max_machines: usize,
    /// A machine not heard from for this long is forgotten (windows, baseline, activity).
    pub idle_evict_s: u64,
    /// Most feature vectors per request (at most `FeatureBatch::MAX_VECTORS`).
    pub max_batch_vectors: usize,
    /// Timeout of one request to the prediction service.
    pub request_timeout_ms: u64,
    /// Retries of a batch after a server error or a connection failure, before it is dropped.
    pub max_retries: u32,
    /// First backoff between retries, doubled each time.
    pub retry_backoff_ms: u64,
    /// Ingestion's own OAuth client, when prediction verifies tokens: batches then carry a
    /// service token for the audience `aurumai-prediction`.
    #[serde(default)]
    pub client: Option<aurum_config::ServiceClientSettings>,
}

impl FeatureSettings {
    pub fn enabled(&self) -> bool {
        !self.prediction_url.trim().is_empty()
    }
}

impl Default for FeatureSettings {
    fn default() -> Self {
        Self {
            prediction_url: String::new(),
            interval_s: 10,
            // The window the prediction models are trained on (`aurum_models::training_window`,
            // recorded in every artifact): 6 h, at most 360 readings. Features over any other
            // window shift the statistics the models split on, so the scores would mean little.
            // Kept as plain numbers so ingestion does not depend on the models crate.
            window_s: 6 * 3_600,
            max_samples: 360,
            baseline_h: 24,
            activity_max_gap_s: 300,
            queue_capacity: 50_000,
            // Full windows of 360 readings: about 60 MB for 1000 seven-metric machines.
            max_machines: 1_000,
            idle_evict_s: 6 * 3_600,
            // About 2 KB of JSON per vector: 500 keeps a request within a 1 MiB body limit.
            max_batch_vectors: 500,
            request_timeout_ms: 5_000,
            max_retries: 3,
            retry_backoff_ms: 200,
            client: None,
        }
    }
}

impl Default for IngestionConfig {
    fn default() -> Self {
        let client_id = std::env::var("HOSTNAME")
            .map(|h| format!("aurum-ingestion-{h}"))
            .unwrap_or_else(|_| "aurum-ingestion".into());
        Self {
            profile: Profile::Dev,
            http: HttpSettings::with_port(8081),
            database: DatabaseSettings::local("aurumai", "aurumai_ingestion"),
            mqtt: MqttSettings::local(&client_id),
            telemetry: TelemetrySettings::default(),
            ingest: IngestSettings {
                mqtt_enabled: true,
                shared_group: String::new(),
                spool_dir: PathBuf::from("spool"),
                spool_fsync_ms: 0,
                queue_capacity: 20_000,
                batch_max_messages: 5_000,
                batch_max_wait_ms: 20,
                writers: 2,
                max_payload_bytes: 64 * 1024,
                max_batch_messages: 10_000,
                max_future_s: 300,
                max_past_days: 7,
                partition_ahead_days: 3,
                retention_days: 90,
                maintenance_interval_s: 3_600,
                profile_refresh_ms: 2_000,
            },
            features: FeatureSettings::default(),
            auth: None,
        }
    }
}

impl IngestionConfig {
    /// Loads and checks the configuration; the production profile refuses weak settings.
    pub fn load() -> Result<Self, ConfigError> {
        aurum_config::load_checked(&Self::default(), Self::problems)
    }

    pub fn problems(&self) -> Vec<aurum_config::ConfigProblem> {
        let mut p = self.database.problems(self.profile);
        p.extend(aurum_config::token_problems(
            self.auth.as_ref(),
            self.profile,
        ));
        if self.ingest.mqtt_enabled {
            p.extend(self.mqtt.problems(self.profile));
            if let Some(problem) = aurum_mqtt::shared_group_problem(&self.ingest.shared_group) {
                p.push(aurum_config::ConfigProblem {
                    key: "ingest.shared_group".into(),
                    problem: problem.into(),
                });
            }
        }
        let zero = |key: &str, v: usize| {
            (v == 0).then(|| aurum_config::ConfigProblem {
                key: key.into(),
                problem: "must be at least 1".into(),
            })
        };
        p.extend(zero("ingest.queue_capacity", self.ingest.queue_capacity));
        p.extend(zero(
            "ingest.batch_max_messages",
            self.ingest.batch_max_messages,
        ));
        p.extend(zero("ingest.writers", self.ingest.writers));
        if self.ingest.profile_refresh_ms < 100 {
            p.push(aurum_config::ConfigProblem {
                key: "ingest.profile_refresh_ms".into(),
                problem: "must be at least 100 (ms)".into(),
            });
        }
        if self.ingest.retention_days <= self.ingest.max_past_days {
            p.push(aurum_config::ConfigProblem {
                key: "ingest.retention_days".into(),
                problem: "must exceed ingest.max_past_days, or accepted back-fill would be dropped at once".into(),
            });
        }
        if self.features.enabled() {
            p.extend(self.features.problems());
        }
        p
    }
}

impl FeatureSettings {
    fn problems(&self) -> Vec<aurum_config::ConfigProblem> {
        let mut p = Vec::new();
        let mut refuse = |key: &str, problem: &str| {
            p.push(aurum_config::ConfigProblem {
                key: format!("features.{key}"),
                problem: problem.into(),
            })
        };
        let url = self.prediction_url.trim();
        if !(url.starts_with("http://") || url.starts_with("https://")) {
            refuse("prediction_url", "must start with http:// or https://");
        }
        if self.interval_s < 1 {
            refuse("interval_s", "must be at least 1 (second)");
        }
        if self.window_s < 1 {
            refuse("window_s", "must be at least 1 (second)");
        }
        // Each tracked metric of each machine holds up to this many readings.
        if !(1..=100_000).contains(&self.max_samples) {
            refuse("max_samples", "must be between 1 and 100000");
        }
        if self.activity_max_gap_s < 1 {
            refuse("activity_max_gap_s", "must be at least 1 (second)");
        }
        if self.queue_capacity < 1 {
            refuse("queue_capacity", "must be at least 1");
        }
        if self.max_machines < 1 {
            refuse("max_machines", "must be at least 1");
        }
        if self.idle_evict_s < self.window_s {
            refuse(
                "idle_evict_s",
                "must be at least features.window_s, or a machine is forgotten while its window still holds data",
            );
        }
        if !(1..=FeatureBatch::MAX_VECTORS).contains(&self.max_batch_vectors) {
            refuse(
                "max_batch_vectors",
                &format!("must be between 1 and {}", FeatureBatch::MAX_VECTORS),
            );
        }
        if self.request_timeout_ms < 1 {
            refuse("request_timeout_ms", "must be at least 1");
        }
        // Durations become chrono/std values: keep them far from overflow.
        const A_YEAR_S: u64 = 366 * 24 * 3_600;
        for (key, seconds) in [
            ("interval_s", self.interval_s),
            ("window_s", self.window_s),
            ("activity_max_gap_s", self.activity_max_gap_s),
            ("idle_evict_s", self.idle_evict_s),
            ("baseline_h", self.baseline_h.saturating_mul(3_600)),
            ("request_timeout_ms", self.request_timeout_ms / 1_000),
            ("retry_backoff_ms", self.retry_backoff_ms / 1_000),
        ] {
            if seconds > A_YEAR_S {
                refuse(key, "must not exceed a year");
            }
        }
        if self.max_retries > 20 {
            refuse("max_retries", "must not exceed 20");
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feature_problems(configure: impl FnOnce(&mut FeatureSettings)) -> Vec<String> {
        let mut c = IngestionConfig::default();
        configure(&mut c.features);
        c.problems()
            .into_iter()
            .map(|p| p.key)
            .filter(|k| k.starts_with("features."))
            .collect()
    }

    #[test]
    fn features_are_off_by_default_and_not_checked_then() {
        let c = IngestionConfig::default();
        assert!(!c.features.enabled());
        assert!(feature_problems(|f| f.interval_s = 0).is_empty());
    }

    #[test]
    fn enabled_features_refuse_nonsense() {
        let on = |f: &mut FeatureSettings| f.prediction_url = "http://prediction:8082".into();
        assert!(feature_problems(on).is_empty());
        assert_eq!(
            feature_problems(|f| {
                on(f);
                f.interval_s = 0;
                f.max_batch_vectors = FeatureBatch::MAX_VECTORS + 1;
                f.idle_evict_s = f.window_s - 1;
            }),
            [
                "features.interval_s",
                "features.idle_evict_s",
                "features.max_batch_vectors"
            ]
        );
        assert_eq!(
            feature_problems(|f| f.prediction_url = "prediction:8082".into()),
            ["features.prediction_url"]
        );
    }
}
