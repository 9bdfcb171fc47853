//! Rolling features on the stream, sent to the prediction service off the write path.
//!
//! ```text
//! writers / POST /v1/telemetry --commit--> FeatureFeed::offer_inserted --try_send-->
//!   feature task (windows, baselines, integrators) --every interval_s--> FeatureBatch
//!   --try_send--> sender task --POST {prediction_url}/v1/features (retries, timeout)-->
//! ```
//!
//! **Fed after commit, only with rows the database inserted.** The database's idempotent
//! insert is the one place that knows whether a message is new: a redelivered MQTT message,
//! a retried HTTP batch or a spool replay after a crash comes back as a duplicate and is not
//! fed again, so windows never hold a reading twice and activity is never counted twice.
//! Features also describe only what is stored. The price: a crash between the commit and the
//! hand-off loses those readings from features (not from storage), and a write retried after
//! a commit whose acknowledgement was lost is seen as a duplicate; activity may then be
//! slightly under-counted, never over-counted.
//!
//! **Never on the write path.** Every hand-off is a bounded queue written with `try_send`:
//! when the feature task or the sender falls behind, work is dropped and counted in
//! `aurum_features_dropped_total{reason}`, and ingestion goes on at full speed. Statistics
//! are computed on a blocking thread so they never hold up the runtime serving requests.
//!
//! Assumptions: a machine's healthy baseline is learned from the first `baseline_h` hours
//! (device time) of its data that this process sees, taken as normal operation, and then
//! frozen until the process restarts or the machine is evicted after `idle_evict_s` of
//! silence. With several replicas each sees part of a machine's messages (a shared MQTT
//! subscription splits by message): each replica's vectors and activity describe its share.

mod sender;
mod state;
mod stream;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use aurum_authn::{ClientCredentialsSettings, ServiceTokens};

use aurum_domain::features::WindowSpecError;
use aurum_domain::{
    ActivityError, MachineId, MachineType, RateIntegrator, Reading, SiteId, TenantId, WindowSpec,
};
use aurum_ports::ingestion::StoredMessage;
use aurum_ports::MachineKey;
use chrono::{DateTime, TimeDelta, Utc};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

use crate::config::FeatureSettings;
use crate::metrics::{FeatureDrop, FeatureMetrics};

pub use sender::{trace_context, FeatureSender, SendError, SenderBuildError, SenderSettings};
pub use state::{FeatureState, MachineLimit, StateSettings};

/// Feature batches waiting for the sender: a short queue, so a slow prediction service
/// costs a few batches of memory at most, then batches are dropped.
const SENDER_QUEUE: usize = 4;

/// The machine a stored message belongs to, as features need it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MachineRef {
    pub tenant: TenantId,
    pub id: MachineId,
    pub machine_type: MachineType,
    /// The site it is registered at, sent with its features.
    pub site: Option<SiteId>,
    /// The sampled trace the message was processed in (W3C `traceparent`): the machine's
    /// next feature vector carries it, so prediction's work joins the device's trace.
    pub traceparent: Option<String>,
}

/// One committed message's readings.
#[derive(Debug, Clone)]
pub struct Observation {
    pub machine: MachineRef,
    pub ts: DateTime<Utc>,
    pub readings: Vec<Reading>,
}

#[derive(Debug, thiserror::Error)]
pub enum FeatureStartError {
    #[error("invalid features.window_s / features.max_samples: {0}")]
    Window(#[from] WindowSpecError),
    #[error("invalid features.activity_max_gap_s: {0}")]
    Activity(#[from] ActivityError),
    #[error(transparent)]
    Sender(#[from] SenderBuildError),
    #[error("invalid features.client: {0}")]
    Client(String),
}

/// The pipeline's end of the hand-off: cheap to clone, never waits.
#[derive(Debug, Clone)]
pub struct FeatureFeed {
    tx: mpsc::Sender<Observation>,
    metrics: FeatureMetrics,
}

impl FeatureFeed {
    /// Hands one observation over, or drops it (counted) when the feature task is behind.
    pub fn offer(&self, obs: Observation) {
        match self.tx.try_send(obs) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.metrics.count_drop(FeatureDrop::QueueFull, 1);
            }
            // The feature task has stopped (shutdown): nothing is waiting for it.
            Err(mpsc::error::TrySendError::Closed(_)) => {}
        }
    }

    /// Offers the messages of a committed write that the database reported as inserted
    /// (`inserted`: (machine, seq) keys), oldest first, so that integration sees each
    /// machine's readings in time order. Duplicates and machines without `origins` are skipped.
    pub fn offer_inserted(
        &self,
        messages: Vec<StoredMessage>,
        origins: &HashMap<MachineKey, MachineRef>,
        inserted: &[(MachineKey, i64)],
    ) {
        if inserted.is_empty() {
            return;
        }
        // Each inserted key admits one message: a batch may carry the same message twice
        // (a redelivery landing in the same write), of which the database kept the first.
        let mut inserted: HashSet<&(MachineKey, i64)> = inserted.iter().collect();
        let mut fresh: Vec<Observation> = messages
            .into_iter()
            .filter(|m| inserted.remove(&(m.machine, m.seq.as_i64())))
            .filter_map(|m| {
                Some(Observation {
                    machine: origins.get(&m.machine)?.clone(),
                    ts: m.ts,
                    readings: m.readings,
                })
            })
            .collect();
        fresh.sort_by_key(|o| o.ts);
        for o in fresh {
            self.offer(o);
        }
    }
}

/// The running feature task; [`shutdown`](Self::shutdown) flushes a last batch.
#[derive(Debug)]
pub struct FeatureTask {
    stop: oneshot::Sender<()>,
    stream: JoinHandle<()>,
    sender: JoinHandle<()>,
    flush_budget: Duration,
}

impl FeatureTask {
    /// Emits what accumulated since the last batch and gives the sender one request's time to
    /// deliver it; whatever is still in flight after that is abandoned, so a prediction
    /// service that does not answer never holds up shutdown for long.
    pub async fn shutdown(self) {
        let _ = self.stop.send(());
        let mut stream = self.stream;
        let mut sender = self.sender;
        let done = tokio::time::timeout(self.flush_budget, async {
            if let Err(e) = (&mut stream).await {
                tracing::error!(error = %e, "feature task failed");
            }
            if let Err(e) = (&mut sender).await {
                tracing::error!(error = %e, "feature sender failed");
            }
        })
        .await;
        if done.is_err() {
            tracing::warn!("feature batches still in flight at shutdown were abandoned");
            stream.abort();
            sender.abort();
        }
    }
}

/// The audience of the service tokens ingestion sends to prediction.
pub const PREDICTION_AUDIENCE: &str = "aurumai-prediction";

/// Starts feature streaming when `settings` names a prediction service; `None` when it is
/// disabled.
pub fn start(
    settings: &FeatureSettings,
    metrics: FeatureMetrics,
) -> Result<Option<(FeatureFeed, FeatureTask)>, FeatureStartError> {
    if !settings.enabled() {
        return Ok(None);
    }
    let seconds = |s: u64| TimeDelta::seconds(i64::try_from(s).unwrap_or(i64::MAX / 1_000_000));
    let state = FeatureState::new(StateSettings {
        window: WindowSpec::new(seconds(settings.window_s), settings.max_samples)?,
        baseline_period: seconds(settings.baseline_h.saturating_mul(3_600)),
        integrator: RateIntegrator::new(seconds(settings.activity_max_gap_s))?,
        max_machines: settings.max_machines,
        idle_evict: Duration::from_secs(settings.idle_evict_s),
    });
    let timeout = Duration::from_millis(settings.request_timeout_ms.max(1));
    let tokens = settings
        .client
        .as_ref()
        .map(|c| {
            let token_url = url::Url::parse(&c.token_url)
                .map_err(|e| FeatureStartError::Client(format!("token_url: {e}")))?;
            ServiceTokens::new(ClientCredentialsSettings {
                token_url,
                client_id: c.client_id.clone(),
                client_secret: c.client_secret.clone(),
                audience: PREDICTION_AUDIENCE.into(),
                http_timeout: timeout,
            })
            .map(Arc::new)
            .map_err(|e| FeatureStartError::Client(e.to_string()))
        })
        .transpose()?;
    let sender = FeatureSender::new(
        SenderSettings {
            base_url: settings.prediction_url.clone(),
            timeout,
            max_retries: settings.max_retries,
            backoff: Duration::from_millis(settings.retry_backoff_ms),
            tokens,
        },
        metrics.clone(),
    )?;
    tracing::info!(
        url = sender.url(),
        interval_s = settings.interval_s,
        "feature streaming to prediction enabled"
    );

    let (tx, rx) = mpsc::channel(settings.queue_capacity.max(1));
    let (batch_tx, batch_rx) = mpsc::channel(SENDER_QUEUE);
    let (stop_tx, stop_rx) = oneshot::channel();
    let sender_task = tokio::spawn(stream::send_batches(batch_rx, sender));
    let stream_task = tokio::spawn(stream::run(
        rx,
        stop_rx,
        state,
        batch_tx,
        stream::StreamSettings {
            interval: Duration::from_secs(settings.interval_s.max(1)),
            max_batch_vectors: settings.max_batch_vectors.max(1),
        },
        metrics.clone(),
    ));
    Ok(Some((
        FeatureFeed { tx, metrics },
        FeatureTask {
            stop: stop_tx,
            stream: stream_task,
            sender: sender_task,
            // One attempt at the last batch, plus a margin to compute it.
            flush_budget: timeout + Duration::from_secs(2),
        },
    )))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aurum_domain::{MetricName, Seq};

    fn stored(key: i64, seq: u64, second: i64) -> StoredMessage {
        StoredMessage {
            machine: MachineKey(key),
            seq: Seq::new(seq).unwrap(),
            ts: DateTime::<Utc>::UNIX_EPOCH + TimeDelta::seconds(second),
            received_at: Utc::now(),
            readings: vec![Reading {
                metric: MetricName::parse("rpm").unwrap(),
                value: 1.0,
            }],
        }
    }

    #[test]
    fn only_inserted_messages_are_offered_once_each_oldest_first() {
        let metrics = FeatureMetrics::register(&prometheus::Registry::new()).unwrap();
        let (tx, mut rx) = mpsc::channel(16);
        let feed = FeatureFeed { tx, metrics };
        let machine = MachineRef {
            tenant: TenantId::parse("demo").unwrap(),
            id: MachineId::parse("T-1").unwrap(),
            machine_type: MachineType::HaulTruck,
            site: None,
            traceparent: None,
        };
        let origins = HashMap::from([(MachineKey(1), machine)]);
        // seq 2 twice in one write (a redelivery), seq 3 already stored, machine 9 unknown.
        let messages = vec![
            stored(1, 2, 20),
            stored(1, 1, 10),
            stored(1, 2, 20),
            stored(1, 3, 30),
            stored(9, 1, 5),
        ];
        let inserted = [(MachineKey(1), 1), (MachineKey(1), 2), (MachineKey(9), 1)];
        feed.offer_inserted(messages, &origins, &inserted);
        let mut seconds = Vec::new();
        while let Ok(o) = rx.try_recv() {
            seconds.push(o.ts.timestamp());
        }
        assert_eq!(seconds, [10, 20]);
    }
}
