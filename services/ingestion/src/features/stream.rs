//! The feature task: folds committed messages into the per-machine state and, every interval,
//! turns what changed into feature batches for the sender task.

use std::time::{Duration, Instant};

use aurum_proto::features::{FeatureBatch, MachineFeatures};
use tokio::sync::{mpsc, oneshot};
use tokio::time::MissedTickBehavior;

use super::{FeatureSender, FeatureState, Observation, StateSettings};
use crate::metrics::{FeatureDrop, FeatureMetrics};

#[derive(Debug, Clone, Copy)]
pub(super) struct StreamSettings {
    pub interval: Duration,
    pub max_batch_vectors: usize,
}

/// Runs until `stop` fires or every feed is dropped, then emits a last time.
pub(super) async fn run(
    mut rx: mpsc::Receiver<Observation>,
    mut stop: oneshot::Receiver<()>,
    mut state: FeatureState,
    batches: mpsc::Sender<FeatureBatch>,
    settings: StreamSettings,
    metrics: FeatureMetrics,
) {
    let fresh = state.settings().clone();
    let mut ticker = tokio::time::interval_at(
        tokio::time::Instant::now() + settings.interval,
        settings.interval,
    );
    // After a stall, one emission covers it: there is nothing to catch up on.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            biased;
            _ = &mut stop => break,
            _ = ticker.tick() => {
                state = emit(state, &fresh, &batches, settings, &metrics).await;
            }
            obs = rx.recv() => match obs {
                Some(obs) => observe(&mut state, &obs, &metrics),
                None => break,
            },
        }
    }
    // What was committed before shutdown still counts: drain, then the last batch.
    rx.close();
    while let Ok(obs) = rx.try_recv() {
        observe(&mut state, &obs, &metrics);
    }
    let _ = emit(state, &fresh, &batches, settings, &metrics).await;
    tracing::debug!("feature task stopped");
}

fn observe(state: &mut FeatureState, obs: &Observation, metrics: &FeatureMetrics) {
    if let Err(e) = state.observe(obs, Instant::now()) {
        metrics.count_drop(FeatureDrop::MachineLimit, 1);
        tracing::debug!(error = %e, machine = %obs.machine.id, "machine not tracked for features");
    }
}

/// Computes the features of the machines that reported and queues them for the sender.
/// Statistics are linear in the windows' sizes, for every machine: that runs on a blocking
/// thread, not on a worker that serves requests.
async fn emit(
    mut state: FeatureState,
    fresh: &StateSettings,
    batches: &mpsc::Sender<FeatureBatch>,
    settings: StreamSettings,
    metrics: &FeatureMetrics,
) -> FeatureState {
    let joined = tokio::task::spawn_blocking(move || {
        let evicted = state.evict_idle(Instant::now());
        let vectors = state.emit();
        (state, vectors, evicted)
    })
    .await;
    let (state, vectors, evicted) = match joined {
        Ok(done) => done,
        Err(e) => {
            // Only a panic in the statistics could get here; the state went with it. Start
            // afresh rather than stop streaming for good.
            tracing::error!(error = %e, "feature computation failed; feature state reset");
            return FeatureState::new(fresh.clone());
        }
    };
    metrics
        .machines
        .set(i64::try_from(state.len()).unwrap_or(i64::MAX));
    if evicted > 0 {
        tracing::debug!(evicted, "idle machines forgotten");
    }
    queue(vectors, batches, settings.max_batch_vectors, metrics);
    state
}

fn queue(
    vectors: Vec<MachineFeatures>,
    batches: &mpsc::Sender<FeatureBatch>,
    max_batch_vectors: usize,
    metrics: &FeatureMetrics,
) {
    let mut vectors = vectors.into_iter().peekable();
    while vectors.peek().is_some() {
        let chunk: Vec<MachineFeatures> = vectors.by_ref().take(max_batch_vectors).collect();
        let n = chunk.len() as u64;
        if batches.try_send(FeatureBatch { vectors: chunk }).is_err() {
            metrics.count_drop(FeatureDrop::SenderBusy, n);
        }
    }
}

/// Delivers queued batches one at a time until the queue closes.
pub(super) async fn send_batches(mut rx: mpsc::Receiver<FeatureBatch>, sender: FeatureSender) {
    while let Some(batch) = rx.recv().await {
        sender.deliver(&batch).await;
    }
}
