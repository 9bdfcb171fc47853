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
        let probe = probe_broker(settings).await?;
        let max_inflight = max_inflight.min(probe.receive_maximum).max(1);
        let paho_inflight = i32::try_from(max_inflight).unwrap_or(i32::MAX);
        let publisher = Publisher::connect(settings, paho_inflight).await?;
        tracing::info!(
            url = %settings.url,
            max_inflight,
            broker_receive_maximum = probe.receive_maximum,
            "MQTT connected"
        );
        drop(probe);
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

/// A short-lived connection made to ask the broker how many unacknowledged QoS 1
/// publishes it accepts from one client (the Receive Maximum of its CONNACK).
///
/// The client is kept (disconnected) until the publisher is connected: dropping the client
/// library's last client stops its threads, and restarting them costs a second.
struct BrokerProbe {
    receive_maximum: usize,
    _client: paho_mqtt::AsyncClient,
}

/// Connects with the publisher's own settings (so a refused probe means a refused
/// publisher), reads the CONNACK, disconnects.
async fn probe_broker(settings: &MqttSettings) -> Result<BrokerProbe, MqttError> {
    let client = aurum_mqtt::create_client(settings)?;
    let options = aurum_mqtt::connect_options(settings, true)?.finalize();
    match client.connect(options).await {
        Ok(response) => {
            let receive_maximum = response
                .properties()
                .get_int(paho_mqtt::PropertyCode::ReceiveMaximum)
                .and_then(|v| usize::try_from(v).ok())
                .filter(|v| *v > 0)
                .unwrap_or(65_535);
            if let Err(e) = client.disconnect(None).await {
                tracing::debug!(error = %e, "probe disconnect failed");
            }
            Ok(BrokerProbe {
                receive_maximum,
                _client: client,
            })
        }
        Err(e) => {
            // The library completes the connect from its callback thread, which drops its
            // own reference to the client afterwards. Were that the last reference, the
            // client's destructor would run on that thread while it holds the library's
            // lock, and wait for that lock forever: let the callback finish first.
            tokio::time::sleep(Duration::from_millis(200)).await;
            drop(client);
            Err(MqttError::Client(e))
        }
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
