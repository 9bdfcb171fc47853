//! A subscription that survives broker restarts and hands every message to one handler.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aurum_config::MqttSettings;
use paho_mqtt as mqtt;

use crate::connection::{connect_options, create_client, MqttError};

/// A message as the application sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    pub topic: String,
    pub payload: Vec<u8>,
    /// The MQTT v5 content-type property, if the publisher set one.
    pub content_type: Option<String>,
    /// A W3C `traceparent` carried as an MQTT v5 user property.
    pub traceparent: Option<String>,
}

/// A message borrowed from the client library's buffer, before anything is copied out of it:
/// a handler can look at the topic and the payload's size and refuse it without allocating.
#[derive(Clone, Copy)]
pub struct Received<'a> {
    msg: &'a mqtt::Message,
}

// By hand: the payload may be large, and the derived form would print all of it.
impl std::fmt::Debug for Received<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Received")
            .field("topic", &self.topic())
            .field("payload_bytes", &self.payload().len())
            .finish()
    }
}

impl<'a> Received<'a> {
    pub fn topic(&self) -> &'a str {
        self.msg.topic()
    }

    pub fn payload(&self) -> &'a [u8] {
        self.msg.payload()
    }

    /// The MQTT v5 content-type property, if the publisher set one.
    pub fn content_type(&self) -> Option<String> {
        self.msg
            .properties()
            .get_string(mqtt::PropertyCode::ContentType)
    }

    /// A W3C `traceparent` carried as an MQTT v5 user property.
    pub fn traceparent(&self) -> Option<String> {
        self.msg.properties().find_user_property("traceparent")
    }

    /// Copies the message out, payload included.
    pub fn to_delivery(&self) -> Delivery {
        Delivery {
            topic: self.topic().to_owned(),
            payload: self.payload().to_vec(),
            content_type: self.content_type(),
            traceparent: self.traceparent(),
        }
    }
}

/// A persistent-session subscriber.
///
/// The handler runs on the client library's receive thread, one message at a time, in
/// arrival order. While it blocks, the client reads nothing more from the socket, so a slow
/// application pushes back on the broker (which queues for the session) instead of buffering
/// without bound.
pub struct Consumer {
    client: mqtt::AsyncClient,
    connected: Arc<AtomicBool>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer")
            .field("client_id", &self.client.client_id())
            .field("connected", &self.is_connected())
            .finish()
    }
}

impl Consumer {
    /// Creates the client, registers the handler and starts connecting in the background
    /// (retrying until the broker answers). Subscribes to `filter` at QoS 1 on every
    /// (re)connection.
    pub fn start<F>(
        settings: &MqttSettings,
        filter: String,
        mut handler: F,
    ) -> Result<Self, MqttError>
    where
        F: FnMut(Delivery) + Send + 'static,
    {
        Self::start_borrowed(settings, filter, move |m| handler(m.to_delivery()))
    }

    /// Like [`Consumer::start`], but the handler gets the message as the library holds it, so
    /// it decides what to copy: a payload over the application's limit need never be copied.
    pub fn start_borrowed<F>(
        settings: &MqttSettings,
        filter: String,
        mut handler: F,
    ) -> Result<Self, MqttError>
    where
        F: FnMut(Received<'_>) + Send + 'static,
    {
        let client = create_client(settings)?;
        let opts = connect_options(settings, false)?.finalize();
        let connected = Arc::new(AtomicBool::new(false));

        client.set_message_callback(move |_cli, msg| {
            if let Some(msg) = msg {
                handler(Received { msg: &msg });
            }
        });
        {
            let connected = Arc::clone(&connected);
            client.set_connected_callback(move |cli| {
                tracing::info!(filter = %filter, "MQTT connected; subscribing");
                // This runs on the library's thread, which must not block on the broker's
                // answer: wait for the SUBACK elsewhere, and only then report ready.
                let token = cli.subscribe(filter.as_str(), mqtt::QOS_1);
                let connected = Arc::clone(&connected);
                let spawned = std::thread::Builder::new()
                    .name("mqtt-subscribe".into())
                    .spawn(move || match token.wait() {
                        Ok(_) => connected.store(true, Ordering::SeqCst),
                        Err(e) => tracing::error!(error = %e, "MQTT subscribe failed"),
                    });
                if let Err(e) = spawned {
                    tracing::error!(error = %e, "cannot wait for the MQTT subscription");
                }
            });
        }
        {
            let connected = Arc::clone(&connected);
            client.set_connection_lost_callback(move |_cli| {
                tracing::warn!("MQTT connection lost; reconnecting");
                connected.store(false, Ordering::SeqCst);
            });
        }
        {
            let connected = Arc::clone(&connected);
            client.set_disconnected_callback(move |_cli, _props, reason| {
                tracing::warn!(?reason, "MQTT broker disconnected us");
                connected.store(false, Ordering::SeqCst);
            });
        }

        let c = client.clone();
        std::thread::Builder::new()
            .name("mqtt-connect".into())
            .spawn(move || {
                let mut delay = Duration::from_millis(200);
                loop {
                    match c.connect(opts.clone()).wait() {
                        Ok(_) => break,
                        Err(e) => {
                            tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64, "MQTT connect failed");
                            std::thread::sleep(delay);
                            delay = (delay * 2).min(Duration::from_secs(5));
                        }
                    }
                }
            })
            .map_err(|e| MqttError::Settings(format!("cannot start the connect thread: {e}")))?;

        Ok(Self { client, connected })
    }

    pub fn is_connected(&self) -> bool {
        self.connected.load(Ordering::SeqCst) && self.client.is_connected()
    }

    /// A cheap handle to poll the connection state from elsewhere (readiness, metrics).
    pub fn connection_flag(&self) -> Arc<AtomicBool> {
        Arc::clone(&self.connected)
    }

    /// Disconnects; the broker keeps the session and queues for it. The message handler stays
    /// installed until the broker has the DISCONNECT: paho acknowledges a message when it
    /// arrives, so one arriving while no handler was installed would be lost.
    pub async fn disconnect(&self) {
        if self.client.is_connected() {
            if let Err(e) = self.client.disconnect(None).await {
                tracing::warn!(error = %e, "MQTT disconnect failed");
            }
        }
        self.connected.store(false, Ordering::SeqCst);
    }
}
