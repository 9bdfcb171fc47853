//! Where simulated telemetry goes: an MQTT broker or the ingestion service's HTTP API.

pub mod http;
pub mod mqtt;
pub mod window;

use std::time::Duration;

use aurum_config::MqttSettings;
use aurum_domain::TenantId;
use aurum_proto::Encoding;

pub use self::http::{HttpOptions, HttpSink};
pub use self::mqtt::MqttSink;
pub use self::window::{Outcome, Window};
use crate::error::SimError;
use crate::fleet::MachineInfo;
use crate::machine::Sample;

/// Which transport, and how it is set up.
#[derive(Debug, Clone)]
pub enum TransportConfig {
    Mqtt {
        settings: MqttSettings,
        max_inflight: usize,
    },
    Http(HttpOptions),
}

/// Totals of a finished run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SendStats {
    /// Messages handed to the transport.
    pub published: u64,
    /// Of those, acknowledged (and, for HTTP, how ingestion classified them).
    pub outcome: Outcome,
    /// Still unacknowledged when the drain timed out (counted in `outcome.failed` too).
    pub abandoned: u64,
}

/// A connected transport.
#[derive(Debug)]
pub enum Transport {
    Mqtt(MqttSink),
    Http(HttpSink),
}

impl Transport {
    pub async fn connect(
        config: &TransportConfig,
        tenant: &TenantId,
        machines: &[MachineInfo],
        encoding: Encoding,
    ) -> Result<Self, SimError> {
        Ok(match config {
            TransportConfig::Mqtt {
                settings,
                max_inflight,
            } => Transport::Mqtt(
                MqttSink::connect(settings, *max_inflight, tenant, machines, encoding).await?,
            ),
            TransportConfig::Http(options) => {
                Transport::Http(HttpSink::new(options, tenant, machines, encoding)?)
            }
        })
    }

    /// Sends (or queues, for HTTP batching) one message of fleet machine `machine`.
    pub async fn submit(&mut self, machine: usize, sample: Sample) {
        match self {
            Transport::Mqtt(s) => s.submit(machine, &sample).await,
            Transport::Http(s) => s.submit(machine, sample).await,
        }
    }

    /// Called after every tick: a partial HTTP batch goes out now rather than waiting for
    /// the next tick.
    pub async fn end_of_tick(&mut self) {
        if let Transport::Http(s) = self {
            s.flush().await;
        }
    }

    fn window(&mut self) -> &mut Window {
        match self {
            Transport::Mqtt(s) => s.window(),
            Transport::Http(s) => s.window(),
        }
    }

    pub fn has_inflight(&mut self) -> bool {
        !self.window().is_empty()
    }

    /// Waits for one in-flight send to complete (never completes while none is in flight).
    pub async fn harvest(&mut self) {
        self.window().harvest().await;
    }

    /// Totals so far.
    pub fn stats(&mut self) -> SendStats {
        let published = match self {
            Transport::Mqtt(s) => s.published(),
            Transport::Http(s) => s.published(),
        };
        SendStats {
            published,
            outcome: self.window().totals(),
            abandoned: 0,
        }
    }

    /// Sends what is queued and waits up to `drain` for acknowledgements; what is still
    /// unacknowledged then counts as failed.
    pub async fn drain(&mut self, drain: Duration) -> SendStats {
        self.end_of_tick().await;
        let in_flight = self.window().len();
        if in_flight > 0 {
            tracing::info!(
                in_flight,
                timeout_s = drain.as_secs_f64(),
                "waiting for acknowledgements"
            );
        }
        let abandoned = self.window().drain(drain).await;
        if abandoned > 0 {
            tracing::warn!(
                abandoned,
                "messages still unacknowledged at the drain deadline; counted as failed"
            );
        }
        let mut stats = self.stats();
        stats.outcome.failed += abandoned;
        stats.abandoned = abandoned;
        stats
    }

    /// Disconnects.
    pub async fn close(self) {
        if let Transport::Mqtt(s) = &self {
            s.close().await;
        }
    }
}
