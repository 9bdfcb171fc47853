//! The MQTT path: broker -> spool -> pipeline -> write queue.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use aurum_config::MqttSettings;
use aurum_domain::ingestion::RejectReason;
use aurum_domain::{MachineId, TenantId};
use aurum_mqtt::{parse_telemetry_topic, Consumer, MqttError, Received};
use aurum_ports::ingestion::Source;
use aurum_ports::{HealthCheck, HealthStatus};
use aurum_proto::Encoding;
use chrono::{DateTime, Utc};
use tokio::sync::mpsc;
use tracing::Instrument;
use tracing_opentelemetry::OpenTelemetrySpanExt;

use crate::metrics::IngestMetrics;
use crate::pipeline::{Envelope, Ingestor, Processed};
use crate::spool::{Payload, Spool, SpoolRecord};
use crate::writer::WriteItem;

/// A received message, spooled (unless refused on arrival), on its way to the pipeline.
#[derive(Debug)]
pub struct Inbound {
    pub record: SpoolRecord,
    pub received_at: DateTime<Utc>,
}

/// Subscribes and feeds `tx`. The callback blocks when `tx` is full, which stops the client
/// reading from the socket: back-pressure reaches the broker.
///
/// A payload over `max_payload_bytes` is refused on arrival, before it is copied or spooled:
/// only its first bytes go on, to be quarantined as too large. Otherwise one device publishing
/// huge messages would make every replica hold and write them, and replay them after a crash.
/// The client library has acknowledged it already, so the broker does not send it again.
pub fn start_consumer(
    settings: &MqttSettings,
    filter: String,
    spool: Arc<Mutex<Spool>>,
    tx: mpsc::Sender<Inbound>,
    metrics: IngestMetrics,
    max_payload_bytes: usize,
) -> Result<Consumer, MqttError> {
    Consumer::start_borrowed(settings, filter, move |m: Received<'_>| {
        metrics
            .received
            .with_label_values(&[Source::Mqtt.as_str()])
            .inc();
        let content_type = m.content_type();
        let traceparent = m.traceparent();
        let oversized = m.payload().len() > max_payload_bytes;
        let (id, spooled) = match spool.lock() {
            Ok(mut s) if oversized => (s.reserve(), Ok(())),
            Ok(mut s) => s.append(
                m.topic(),
                content_type.as_deref(),
                traceparent.as_deref(),
                m.payload(),
            ),
            Err(_) => {
                tracing::error!("spool lock poisoned; the service must restart");
                return;
            }
        };
        if let Err(e) = spooled {
            metrics.spool_errors.inc();
            tracing::error!(error = %e, "cannot spool an MQTT message; it is not crash-safe");
        }
        let payload = if oversized {
            Payload::cut(m.payload())
        } else {
            Payload::Whole(m.payload().to_vec())
        };
        let inbound = Inbound {
            record: SpoolRecord {
                id,
                topic: m.topic().to_owned(),
                content_type,
                traceparent,
                payload,
            },
            received_at: Utc::now(),
        };
        if tx.blocking_send(inbound).is_err() {
            tracing::warn!("pipeline stopped; message stays in the spool for the next start");
        }
    })
}

/// Runs the pipeline until `rx` closes, then drops `write_tx` (which lets the writers drain).
pub async fn run_pipeline(
    mut rx: mpsc::Receiver<Inbound>,
    ingestor: Arc<Ingestor>,
    write_tx: mpsc::Sender<WriteItem>,
    max_payload_bytes: usize,
) {
    while let Some(inbound) = rx.recv().await {
        let span = tracing::info_span!(
            "ingest_mqtt_message",
            messaging.destination = %inbound.record.topic,
            otel.kind = "consumer",
            trace_id = tracing::field::Empty,
            span_id = tracing::field::Empty,
        );
        if let Some(tp) = &inbound.record.traceparent {
            let _ = span.set_parent(aurum_telemetry::context_from_traceparent(tp));
        }
        aurum_telemetry::record_trace_ids(&span);
        let item = process_with_retry(&ingestor, &inbound, max_payload_bytes)
            .instrument(span)
            .await;
        if write_tx.send(item).await.is_err() {
            tracing::error!("write queue closed; stopping the MQTT pipeline");
            return;
        }
    }
}

/// Machine lookups need the database; while it is away, wait rather than misjudge a machine
/// as unknown.
async fn process_with_retry(ingestor: &Ingestor, inbound: &Inbound, max: usize) -> WriteItem {
    let mut delay = Duration::from_millis(100);
    loop {
        match process(ingestor, inbound, max).await {
            Ok(p) => {
                return WriteItem {
                    spool_id: inbound.record.id,
                    stored: p.stored,
                    machine: p.machine,
                    quarantine: p.quarantine,
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "machine lookup failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

async fn process(
    ingestor: &Ingestor,
    inbound: &Inbound,
    max_payload_bytes: usize,
) -> Result<Processed, aurum_ports::StoreError> {
    let r = &inbound.record;
    let ids = parse_telemetry_topic(&r.topic)
        .and_then(|(t, m)| Some((TenantId::parse(t).ok()?, MachineId::parse(m).ok()?)));
    let traceparent = aurum_telemetry::current_traceparent();
    // For a cut payload only its first bytes are at hand: they are what its quarantine record
    // keeps, and what its dedup key is derived from.
    let env = Envelope {
        source: Source::Mqtt,
        tenant: ids.as_ref().map(|(t, _)| t.as_str()),
        topic: Some(&r.topic),
        received_at: inbound.received_at,
        raw: r.payload.bytes(),
        traceparent: traceparent.as_deref(),
    };
    let Some((tenant, machine)) = ids.as_ref() else {
        return Ok(ingestor.reject_payload(
            &env,
            RejectReason::InvalidTopic,
            "topic must be aurum/v1/{tenant}/{machine}/telemetry with valid ids".into(),
        ));
    };
    // Cut payloads are over the limit by construction; a whole one can be too, when the
    // limit was lowered since it was spooled.
    let payload = match &r.payload {
        Payload::Whole(p) if p.len() <= max_payload_bytes => p,
        _ => {
            return Ok(ingestor.reject_payload(
                &env,
                RejectReason::PayloadTooLarge,
                format!(
                    "{} bytes; the limit is {max_payload_bytes}",
                    r.payload.size()
                ),
            ));
        }
    };
    let Some(encoding) = Encoding::from_content_type(r.content_type.as_deref()) else {
        return Ok(ingestor.reject_payload(
            &env,
            RejectReason::UnsupportedContentType,
            format!(
                "content type {:?} is neither {} nor {}",
                r.content_type.as_deref().unwrap_or(""),
                Encoding::JSON_MIME,
                Encoding::PROTOBUF_MIME
            ),
        ));
    };
    let decoded = aurum_proto::decode_message(encoding, payload);
    ingestor.process(&env, tenant, Some(machine), decoded).await
}

/// `/readyz`'s broker check.
#[derive(Debug, Clone)]
pub struct BrokerHealth {
    pub connected: Arc<std::sync::atomic::AtomicBool>,
}

#[async_trait]
impl HealthCheck for BrokerHealth {
    async fn check(&self) -> HealthStatus {
        let up = self.connected.load(std::sync::atomic::Ordering::SeqCst);
        HealthStatus {
            name: "broker",
            ready: up,
            detail: (!up).then(|| "not connected to the MQTT broker".to_owned()),
        }
    }
}
