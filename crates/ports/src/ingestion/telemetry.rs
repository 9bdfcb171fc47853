//! Durable telemetry and its quarantine.

use async_trait::async_trait;
use aurum_domain::ingestion::RejectReason;
use aurum_domain::{Bucket, BucketQuery, Reading, Seq};
use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::{MachineKey, StoreError};

/// Where a message came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    Mqtt,
    Http,
}

impl Source {
    pub fn as_str(self) -> &'static str {
        match self {
            Source::Mqtt => "mqtt",
            Source::Http => "http",
        }
    }
}

/// The accepted readings of one message: one row, identified by (machine, seq, ts).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredMessage {
    pub machine: MachineKey,
    pub seq: Seq,
    pub ts: DateTime<Utc>,
    pub received_at: DateTime<Utc>,
    pub readings: Vec<Reading>,
}

/// A rejected reading or message, kept with its reason so nothing disappears silently.
#[derive(Debug, Clone, PartialEq)]
pub struct QuarantineRecord {
    /// Identifies the record across redeliveries, so replays never duplicate it.
    pub dedup_key: String,
    pub received_at: DateTime<Utc>,
    pub source: Source,
    pub tenant: Option<String>,
    pub machine: Option<String>,
    pub seq: Option<i64>,
    pub topic: Option<String>,
    pub metric: Option<String>,
    /// The rejected value as JSON text.
    pub value: Option<String>,
    pub reason: RejectReason,
    pub detail: String,
    /// The raw payload (bounded), for messages that could not be decoded at all.
    pub payload: Option<Vec<u8>>,
}

/// What one write commits atomically.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteBatch {
    pub messages: Vec<StoredMessage>,
    pub quarantine: Vec<QuarantineRecord>,
    /// Report which messages were inserted (for per-message answers to HTTP callers).
    pub report_inserted: bool,
}

impl WriteBatch {
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty() && self.quarantine.is_empty()
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Message rows written.
    pub inserted: u64,
    /// Message rows already present (redelivery or retry) and left untouched.
    pub duplicates: u64,
    /// Quarantine records written.
    pub quarantined: u64,
    /// (machine, seq) of the inserted messages, when the batch asked for them.
    pub inserted_keys: Vec<(MachineKey, i64)>,
}

#[async_trait]
pub trait TelemetryStore: Send + Sync + std::fmt::Debug {
    /// Commits a batch atomically and idempotently: a message already stored is skipped.
    async fn write(&self, batch: &WriteBatch) -> Result<WriteOutcome, StoreError>;

    /// Downsamples one metric of one machine into buckets (only non-empty buckets).
    async fn buckets(
        &self,
        machine: MachineKey,
        query: &BucketQuery,
    ) -> Result<Vec<Bucket>, StoreError>;
}

/// Keeping the telemetry store's time partitions ahead of the clock and old data dropped.
#[async_trait]
pub trait TelemetryMaintenance: Send + Sync + std::fmt::Debug {
    /// Creates the partitions for `[now - back_days, now + ahead_days]`; returns how many were
    /// created.
    async fn ensure_partitions(
        &self,
        now: DateTime<Utc>,
        back_days: u32,
        ahead_days: u32,
    ) -> Result<u32, StoreError>;

    /// Drops whole partitions that hold only data older than `retention_days`; returns their
    /// names.
    async fn apply_retention(
        &self,
        now: DateTime<Utc>,
        retention_days: u32,
    ) -> Result<Vec<String>, StoreError>;
}
