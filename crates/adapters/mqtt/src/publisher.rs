//! Publishing with QoS 1, for devices, the simulator and tests.

use std::future::Future;
use std::time::Duration;

use aurum_config::MqttSettings;
use paho_mqtt as mqtt;

use crate::connection::{connect_options, create_client, drop_failed_client, MqttError};

/// A connected publisher.
pub struct Publisher {
    client: mqtt::AsyncClient,
}

impl std::fmt::Debug for Publisher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Publisher")
            .field("client_id", &self.client.client_id())
            .finish()
    }
}

impl Publisher {
    /// Connects (clean session: a publisher has nothing to resume) and reconnects by itself.
    pub async fn connect(settings: &MqttSettings, max_inflight: i32) -> Result<Self, MqttError> {
        let client = create_client(settings)?;
        let opts = connect_options(settings, true)?
            .max_inflight(max_inflight)
            .finalize();
        if let Err(e) = client.connect(opts).await {
            drop_failed_client(client);
            return Err(e.into());
        }
        Ok(Self { client })
    }

    /// Publishes at QoS 1; the future resolves when the broker acknowledged the message.
    /// Several futures may be in flight at once (up to `max_inflight`).
    pub fn publish(
        &self,
        topic: &str,
        payload: Vec<u8>,
        content_type: &str,
        traceparent: Option<&str>,
    ) -> impl Future<Output = Result<(), MqttError>> + Send + 'static {
        let mut props = mqtt::Properties::new();
        let mut bad = props
            .push_string(mqtt::PropertyCode::ContentType, content_type)
            .err();
        if let Some(tp) = traceparent {
            bad = bad.or(props
                .push_string_pair(mqtt::PropertyCode::UserProperty, "traceparent", tp)
                .err());
        }
        let msg = mqtt::MessageBuilder::new()
            .topic(topic)
            .payload(payload)
            .qos(mqtt::QOS_1)
            .properties(props)
            .finalize();
        let token = self.client.publish(msg);
        async move {
            if let Some(e) = bad {
                return Err(MqttError::Client(e));
            }
            token.await.map(|_| ()).map_err(MqttError::Client)
        }
    }

    pub fn is_connected(&self) -> bool {
        self.client.is_connected()
    }

    pub async fn disconnect(&self) -> Result<(), MqttError> {
        self.client
            .disconnect(
                mqtt::DisconnectOptionsBuilder::new()
                    .timeout(Duration::from_secs(5))
                    .finalize(),
            )
            .await?;
        Ok(())
    }
}
