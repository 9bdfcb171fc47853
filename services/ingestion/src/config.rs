//! The ingestion service's configuration.

use std::path::PathBuf;

use aurum_config::{
    ConfigError, DatabaseSettings, HttpSettings, MqttSettings, Profile, TelemetrySettings,
};
use aurum_domain::ValidationPolicy;
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
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IngestSettings {
    /// Subscribe to the broker (off for an HTTP-only replica).
    pub mqtt_enabled: bool,
    /// The shared-subscription group replicas join.
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
}

impl IngestSettings {
    pub fn validation_policy(&self) -> ValidationPolicy {
        ValidationPolicy {
            max_future: TimeDelta::seconds(self.max_future_s),
            max_past: TimeDelta::days(i64::from(self.max_past_days)),
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
                shared_group: "ingestion".into(),
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
            },
        }
    }
}

impl IngestionConfig {
    /// Loads and checks the configuration; the production profile refuses weak settings.
    pub fn load() -> Result<Self, ConfigError> {
        let config: Self = aurum_config::load(&Self::default())?;
        let problems = config.problems();
        if problems.is_empty() {
            Ok(config)
        } else {
            Err(ConfigError::Refused(problems))
        }
    }

    pub fn problems(&self) -> Vec<aurum_config::ConfigProblem> {
        let mut p = self.database.problems(self.profile);
        if self.ingest.mqtt_enabled {
            p.extend(self.mqtt.problems(self.profile));
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
        if self.ingest.retention_days <= self.ingest.max_past_days {
            p.push(aurum_config::ConfigProblem {
                key: "ingest.retention_days".into(),
                problem: "must exceed ingest.max_past_days, or accepted back-fill would be dropped at once".into(),
            });
        }
        p
    }
}
