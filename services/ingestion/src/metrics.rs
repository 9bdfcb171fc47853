//! The ingestion service's Prometheus metrics.

use aurum_domain::ingestion::RejectReason;
use aurum_ports::ingestion::Source;
use prometheus::{Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, Opts, Registry};

#[derive(Debug, Clone)]
pub struct IngestMetrics {
    pub received: IntCounterVec,
    pub written: IntCounter,
    pub duplicates: IntCounter,
    pub readings_written: IntCounter,
    pub rejected: IntCounterVec,
    pub batch_size: Histogram,
    pub write_seconds: Histogram,
    pub write_failures: IntCounter,
    /// Commit time minus the device's timestamp: how far storage trails the machines.
    pub lag_seconds: Histogram,
    pub queue_depth: IntGauge,
    pub spool_pending: IntGauge,
    pub spool_errors: IntCounter,
    pub broker_connected: IntGauge,
}

impl IngestMetrics {
    pub fn register(r: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self {
            received: IntCounterVec::new(
                Opts::new(
                    "aurum_ingest_messages_received_total",
                    "Telemetry messages received",
                ),
                &["source"],
            )?,
            written: IntCounter::new(
                "aurum_ingest_messages_written_total",
                "Telemetry messages committed to the database",
            )?,
            duplicates: IntCounter::new(
                "aurum_ingest_messages_duplicate_total",
                "Messages already stored (redelivery or retry), skipped",
            )?,
            readings_written: IntCounter::new(
                "aurum_ingest_readings_written_total",
                "Readings committed to the database",
            )?,
            rejected: IntCounterVec::new(
                Opts::new(
                    "aurum_ingest_rejected_total",
                    "Readings or messages rejected and quarantined, by reason",
                ),
                &["reason"],
            )?,
            batch_size: Histogram::with_opts(
                HistogramOpts::new("aurum_ingest_batch_messages", "Messages per database write")
                    .buckets(vec![
                        1.0, 10.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0,
                    ]),
            )?,
            write_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "aurum_ingest_write_duration_seconds",
                    "Database write latency per batch",
                )
                .buckets(vec![
                    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
                ]),
            )?,
            write_failures: IntCounter::new(
                "aurum_ingest_write_failures_total",
                "Failed database writes (retried until they succeed)",
            )?,
            lag_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "aurum_ingest_lag_seconds",
                    "Time from a message's device timestamp to its database commit",
                )
                .buckets(vec![
                    0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5, 0.75,
                    1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                ]),
            )?,
            queue_depth: IntGauge::new(
                "aurum_ingest_queue_depth",
                "Messages waiting to be written",
            )?,
            spool_pending: IntGauge::new(
                "aurum_ingest_spool_pending_messages",
                "Received MQTT messages not yet committed",
            )?,
            spool_errors: IntCounter::new(
                "aurum_ingest_spool_errors_total",
                "Failed appends to the local spool",
            )?,
            broker_connected: IntGauge::new(
                "aurum_mqtt_connected",
                "1 while connected to the MQTT broker",
            )?,
        };
        r.register(Box::new(m.received.clone()))?;
        r.register(Box::new(m.written.clone()))?;
        r.register(Box::new(m.duplicates.clone()))?;
        r.register(Box::new(m.readings_written.clone()))?;
        r.register(Box::new(m.rejected.clone()))?;
        r.register(Box::new(m.batch_size.clone()))?;
        r.register(Box::new(m.write_seconds.clone()))?;
        r.register(Box::new(m.write_failures.clone()))?;
        r.register(Box::new(m.lag_seconds.clone()))?;
        r.register(Box::new(m.queue_depth.clone()))?;
        r.register(Box::new(m.spool_pending.clone()))?;
        r.register(Box::new(m.spool_errors.clone()))?;
        r.register(Box::new(m.broker_connected.clone()))?;
        // Every reason appears from the start, at zero, so alerts can rate() them.
        for reason in RejectReason::ALL {
            m.rejected.with_label_values(&[reason.code()]);
        }
        for source in [Source::Mqtt, Source::Http] {
            m.received.with_label_values(&[source.as_str()]);
        }
        Ok(m)
    }

    pub fn reject(&self, reason: RejectReason) {
        self.rejected.with_label_values(&[reason.code()]).inc();
    }
}

/// Why something was dropped from feature streaming (never from storage).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeatureDrop {
    /// The queue to the feature task was full (counts messages).
    QueueFull,
    /// The machine limit was reached and no machine was idle (counts messages).
    MachineLimit,
    /// The sender was still busy with earlier batches (counts feature vectors).
    SenderBusy,
    /// The prediction service did not take a batch after the retries (counts feature vectors).
    SendFailed,
}

impl FeatureDrop {
    pub const ALL: [FeatureDrop; 4] = [
        FeatureDrop::QueueFull,
        FeatureDrop::MachineLimit,
        FeatureDrop::SenderBusy,
        FeatureDrop::SendFailed,
    ];

    pub fn code(self) -> &'static str {
        match self {
            FeatureDrop::QueueFull => "queue_full",
            FeatureDrop::MachineLimit => "machine_limit",
            FeatureDrop::SenderBusy => "sender_busy",
            FeatureDrop::SendFailed => "send_failed",
        }
    }
}

/// Metrics of the feature stream to the prediction service. Registered whether or not
/// streaming is enabled, so dashboards and alerts see the series from the start.
#[derive(Debug, Clone)]
pub struct FeatureMetrics {
    pub vectors_sent: IntCounter,
    pub batches_sent: IntCounter,
    pub batches_failed: IntCounter,
    pub retries: IntCounter,
    /// Per batch, from the first attempt to success or giving up.
    pub send_seconds: Histogram,
    pub dropped: IntCounterVec,
    pub machines: IntGauge,
}

impl FeatureMetrics {
    pub fn register(r: &Registry) -> Result<Self, prometheus::Error> {
        let m = Self {
            vectors_sent: IntCounter::new(
                "aurum_features_vectors_sent_total",
                "Feature vectors accepted by the prediction service",
            )?,
            batches_sent: IntCounter::new(
                "aurum_features_batches_sent_total",
                "Feature batches accepted by the prediction service",
            )?,
            batches_failed: IntCounter::new(
                "aurum_features_batches_failed_total",
                "Feature batches dropped after the prediction service refused them or retries ran out",
            )?,
            retries: IntCounter::new(
                "aurum_features_send_retries_total",
                "Retried requests to the prediction service",
            )?,
            send_seconds: Histogram::with_opts(
                HistogramOpts::new(
                    "aurum_features_send_duration_seconds",
                    "Time to deliver (or give up on) a feature batch, retries included",
                )
                .buckets(vec![
                    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
                ]),
            )?,
            dropped: IntCounterVec::new(
                Opts::new(
                    "aurum_features_dropped_total",
                    "Dropped from feature streaming, by reason: messages (queue_full, \
                     machine_limit) or feature vectors (sender_busy, send_failed)",
                ),
                &["reason"],
            )?,
            machines: IntGauge::new(
                "aurum_features_machines_tracked",
                "Machines whose windows and baselines the feature task holds",
            )?,
        };
        r.register(Box::new(m.vectors_sent.clone()))?;
        r.register(Box::new(m.batches_sent.clone()))?;
        r.register(Box::new(m.batches_failed.clone()))?;
        r.register(Box::new(m.retries.clone()))?;
        r.register(Box::new(m.send_seconds.clone()))?;
        r.register(Box::new(m.dropped.clone()))?;
        r.register(Box::new(m.machines.clone()))?;
        for reason in FeatureDrop::ALL {
            m.dropped.with_label_values(&[reason.code()]);
        }
        Ok(m)
    }

    pub fn count_drop(&self, reason: FeatureDrop, n: u64) {
        self.dropped.with_label_values(&[reason.code()]).inc_by(n);
    }
}
