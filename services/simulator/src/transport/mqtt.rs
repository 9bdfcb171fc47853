//! MQTT transport: one QoS 1 publish per message on the machine's telemetry topic, with the
//! encoding's MIME type as the MQTT v5 content type, many in flight at once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aurum_config::MqttSettings;
use aurum_domain::TenantId;
use aurum_mqtt::{telemetry_topic, MqttError, Publisher};
use aurum_proto::{Encoding, OutgoingMessage};
use futures::FutureExt;

use super::window::{Outcome, Window};
use crate::error::SimError;
use crate::fleet::MachineInfo;
use crate::machine::Sample;

/// Retries of a publish the broker did not acknowledge, before counting it failed. The retry
/// carries the same seq, so ingestion deduplicates it if the first attempt did arrive.
pub const PUBLISH_RETRIES: u32 = 3;

/// Publishes telemetry over MQTT.
#[derive(Debug)]
pub struct MqttSink {
    publisher: Arc<Publisher>,
    ids: Vec<Arc<str>>,
    topics: Vec<Arc<str>>,
    encoding: Encoding,
    window: Window,
    published: u64,
    failures: Arc<AtomicU64>,
}

impl MqttSink {
    /// Connects to the broker. `max_inflight` bounds unacknowledged publishes; the bound
    /// used is the smaller of it and the broker's own limit (MQTT v5 Receive Maximum), since
    /// publishes beyond the broker's limit only queue up inside the client library, where
    /// a long queue costs far more CPU than it gains.
    pub async fn connect(
        settings: &MqttSettings,
        max_inflight: usize,
        tenant: &TenantId,
        machines: &[MachineInfo],
        encoding: Encoding,
    ) -> Result<Self, SimError> {
        tracing::info!(url = %settings.url, client_id = %settings.client_id, "connecting to the MQTT broker");
        let limit = broker_limit(settings).await;
        let max_inflight = max_inflight
            .min(limit.receive_maximum.unwrap_or(usize::MAX))
            .max(1);
        let paho_inflight = i32::try_from(max_inflight).unwrap_or(i32::MAX);
        let publisher = Publisher::connect(settings, paho_inflight).await?;
        tracing::info!(url = %settings.url, max_inflight, broker_receive_maximum = ?limit.receive_maximum, "MQTT connected");
        drop(limit);
        Ok(Self {
            publisher: Arc::new(publisher),
            ids: machines.iter().map(|m| Arc::from(m.id.as_str())).collect(),
            topics: machines
                .iter()
                .map(|m| Arc::from(telemetry_topic(tenant.as_str(), m.id.as_str())))
                .collect(),
            encoding,
            window: Window::new(max_inflight),
            published: 0,
            failures: Arc::new(AtomicU64::new(0)),
        })
    }

    /// Encodes and publishes one message of machine `machine` (an index into the fleet),
    /// waiting first if the in-flight window is full.
    pub async fn submit(&mut self, machine: usize, sample: &Sample) {
        let (Some(id), Some(topic)) = (self.ids.get(machine), self.topics.get(machine)) else {
            tracing::error!(machine, "no such machine in the fleet");
            return;
        };
        let payload = OutgoingMessage {
            machine_id: id,
            seq: sample.seq,
            ts: sample.ts,
            metrics: &sample.metrics,
        }
        .encode(self.encoding);
        let send = publish_with_retry(
            Arc::clone(&self.publisher),
            Arc::clone(topic),
            payload,
            self.encoding.mime(),
            sample.seq,
            Arc::clone(&self.failures),
        );
        self.published += 1;
        self.window.push(send.boxed()).await;
    }

    pub fn published(&self) -> u64 {
        self.published
    }

    pub fn window(&mut self) -> &mut Window {
        &mut self.window
    }

    /// Disconnects cleanly.
    pub async fn close(&self) {
        if let Err(e) = self.publisher.disconnect().await {
            tracing::warn!(error = %e, "MQTT disconnect failed");
        }
    }
}

/// The broker's limit on unacknowledged QoS 1 publishes from one client: the Receive
/// Maximum of its CONNACK (65535 when absent).
struct BrokerLimit {
    receive_maximum: Option<usize>,
    /// The probe's (disconnected) client. Dropping the library's last client stops its
    /// threads, and restarting them for the publisher costs a second, so it is dropped
    /// only once the publisher is connected.
    _probe: Option<paho_mqtt::AsyncClient>,
}

/// Asks the broker for its Receive Maximum over a short-lived connection with the same
/// settings (client id suffixed `-probe`). `receive_maximum` is `None` if the connection
/// cannot be made: the publisher's own connection then reports the problem.
async fn broker_limit(settings: &MqttSettings) -> BrokerLimit {
    let mut probe = settings.clone();
    probe.client_id = format!("{}-probe", settings.client_id);
    let (Ok(client), Ok(options)) = (
        aurum_mqtt::create_client(&probe),
        aurum_mqtt::connect_options(&probe, true),
    ) else {
        return BrokerLimit {
            receive_maximum: None,
            _probe: None,
        };
    };
    let receive_maximum = match client.connect(options.finalize()).await {
        Ok(response) => {
            let limit = response
                .properties()
                .get_int(paho_mqtt::PropertyCode::ReceiveMaximum)
                .and_then(|v| usize::try_from(v).ok())
                .filter(|v| *v > 0)
                .unwrap_or(65_535);
            if let Err(e) = client.disconnect(None).await {
                tracing::debug!(error = %e, "probe disconnect failed");
            }
            Some(limit)
        }
        Err(e) => {
            tracing::debug!(error = %e, "could not ask the broker for its receive maximum");
            None
        }
    };
    BrokerLimit {
        receive_maximum,
        _probe: Some(client),
    }
}

/// How long a message may wait for room in the client library's send queue before it counts
/// as failed.
const QUEUE_FULL_PATIENCE: Duration = Duration::from_secs(30);

/// The client library refused the message because its queue of messages not yet written to
/// the socket is full: local backpressure, not a delivery failure.
fn is_queue_full(e: &MqttError) -> bool {
    matches!(e, MqttError::Client(paho_mqtt::Error::MaxBufferedMessages))
}

async fn publish_with_retry(
    publisher: Arc<Publisher>,
    topic: Arc<str>,
    payload: Vec<u8>,
    mime: &'static str,
    seq: u64,
    failures: Arc<AtomicU64>,
) -> Outcome {
    let mut attempt = 0;
    let mut queue_full_since: Option<Instant> = None;
    loop {
        match publisher.publish(&topic, payload.clone(), mime, None).await {
            Ok(()) => return Outcome::acked(1),
            Err(e)
                if is_queue_full(&e)
                    && queue_full_since.get_or_insert_with(Instant::now).elapsed()
                        < QUEUE_FULL_PATIENCE =>
            {
                // Give the library's sender thread time to drain its queue; does not use up
                // the retry budget.
                tokio::time::sleep(Duration::from_millis(1)).await;
            }
            Err(e) if attempt < PUBLISH_RETRIES => {
                attempt += 1;
                tracing::debug!(topic = %topic, seq, attempt, error = %e, "publish failed; retrying");
                tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
            }
            Err(e) => {
                let n = failures.fetch_add(1, Ordering::Relaxed) + 1;
                // Logged at the 1st, 2nd, 4th, 8th... failure: an outage must not flood the log.
                if n.is_power_of_two() {
                    tracing::warn!(topic = %topic, seq, error = %e, failed_so_far = n, "publish failed after retries");
                }
                return Outcome::failed(1);
            }
        }
    }
}
