//! Batched, retried database writes behind a bounded queue.
//!
//! Items (one message's stored row and quarantine records) queue here; a batcher groups them
//! into transactions of up to `batch_max_messages` or `batch_max_wait_ms`, and `writers` tasks
//! commit them, retrying until the database takes them. The queue is bounded: when the
//! database is slow it fills, and whoever feeds it waits (the MQTT path then stops reading
//! from the broker). After a commit, the spool learns which ids are safe to forget.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aurum_ports::ingestion::{QuarantineRecord, StoredMessage, TelemetryStore, WriteBatch};
use aurum_ports::MachineKey;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::features::{FeatureFeed, MachineRef};
use crate::metrics::IngestMetrics;
use crate::spool::Spool;

/// One message's worth of writes, with its spool id.
#[derive(Debug, Clone)]
pub struct WriteItem {
    pub spool_id: u64,
    pub stored: Option<StoredMessage>,
    /// Whose message `stored` is, for the feature stream.
    pub machine: Option<MachineRef>,
    pub quarantine: Vec<QuarantineRecord>,
}

#[derive(Debug, Clone, Copy)]
pub struct WriterSettings {
    pub batch_max_messages: usize,
    pub batch_max_wait: Duration,
    pub writers: usize,
}

/// Tracks committed spool-id ranges that may complete out of order, and the watermark below
/// which everything is committed.
#[derive(Debug, Default)]
pub struct CommitTracker {
    watermark: u64,
    done: BTreeMap<u64, u64>,
}

impl CommitTracker {
    pub fn new(watermark: u64) -> Self {
        Self {
            watermark,
            done: BTreeMap::new(),
        }
    }

    /// Starts at `watermark` with the ranges in `missing` already done: ids that no record
    /// holds will never be committed, and waiting for them would stop the watermark for good.
    pub fn with_missing(watermark: u64, missing: &[(u64, u64)]) -> Self {
        let mut t = Self::new(watermark);
        for &(lo, hi) in missing {
            t.complete(lo, hi);
        }
        t
    }

    /// Marks `[lo, hi]` committed; returns the new watermark if it moved.
    pub fn complete(&mut self, lo: u64, hi: u64) -> Option<u64> {
        self.done.insert(lo, hi);
        let before = self.watermark;
        while let Some((&lo, &hi)) = self.done.first_key_value() {
            if lo > self.watermark + 1 {
                break;
            }
            self.watermark = self.watermark.max(hi);
            self.done.remove(&lo);
        }
        (self.watermark > before).then_some(self.watermark)
    }
}

struct Batch {
    lo: u64,
    hi: u64,
    write: WriteBatch,
    /// The machines of the batch's messages, for the feature stream (empty without one).
    origins: HashMap<MachineKey, MachineRef>,
}

/// Handles to the writer tasks; `join` waits until everything queued is committed.
#[derive(Debug)]
pub struct Writers {
    tasks: Vec<JoinHandle<()>>,
}

impl Writers {
    pub async fn join(self) {
        for t in self.tasks {
            if let Err(e) = t.await {
                tracing::error!(error = %e, "writer task failed");
            }
        }
    }
}

/// Starts the batcher and writers reading from `rx`. They stop when every sender is dropped
/// and the queue is drained.
pub fn spawn(
    rx: mpsc::Receiver<WriteItem>,
    store: Arc<dyn TelemetryStore>,
    spool: Arc<Mutex<Spool>>,
    settings: WriterSettings,
    metrics: IngestMetrics,
    features: Option<FeatureFeed>,
) -> Writers {
    let tracker = spool
        .lock()
        .map(|s| CommitTracker::with_missing(s.committed(), s.missing()))
        .unwrap_or_default();
    let tracker = Arc::new(Mutex::new(tracker));
    let (batch_tx, batch_rx) = mpsc::channel::<Batch>(settings.writers);
    let batch_rx = Arc::new(tokio::sync::Mutex::new(batch_rx));
    let mut tasks = vec![tokio::spawn(batcher(
        rx,
        batch_tx,
        settings,
        metrics.clone(),
        features.is_some(),
    ))];
    for _ in 0..settings.writers.max(1) {
        let batch_rx = Arc::clone(&batch_rx);
        let store = Arc::clone(&store);
        let spool = Arc::clone(&spool);
        let tracker = Arc::clone(&tracker);
        let metrics = metrics.clone();
        let features = features.clone();
        tasks.push(tokio::spawn(async move {
            loop {
                let next = batch_rx.lock().await.recv().await;
                let Some(batch) = next else { break };
                let inserted = commit(&*store, &batch, &metrics).await;
                let Batch {
                    lo,
                    hi,
                    write,
                    origins,
                } = batch;
                if let Some(feed) = &features {
                    feed.offer_inserted(write.messages, &origins, &inserted);
                }
                let moved = tracker.lock().ok().and_then(|mut t| t.complete(lo, hi));
                if let (Some(watermark), Ok(mut spool)) = (moved, spool.lock()) {
                    if let Err(e) = spool.commit_through(watermark) {
                        metrics.spool_errors.inc();
                        tracing::error!(error = %e, "cannot advance the spool checkpoint");
                    }
                    metrics
                        .spool_pending
                        .set(i64::try_from(spool.pending()).unwrap_or(i64::MAX));
                }
            }
        }));
    }
    Writers { tasks }
}

async fn batcher(
    mut rx: mpsc::Receiver<WriteItem>,
    tx: mpsc::Sender<Batch>,
    settings: WriterSettings,
    metrics: IngestMetrics,
    with_features: bool,
) {
    while let Some(first) = rx.recv().await {
        let deadline = tokio::time::Instant::now() + settings.batch_max_wait;
        let mut batch = Batch {
            lo: first.spool_id,
            hi: first.spool_id,
            write: WriteBatch {
                // Features are fed only what the database actually inserted.
                report_inserted: with_features,
                ..WriteBatch::default()
            },
            origins: HashMap::new(),
        };
        let mut count = 0usize;
        let add = |item: WriteItem, batch: &mut Batch| {
            batch.lo = batch.lo.min(item.spool_id);
            batch.hi = batch.hi.max(item.spool_id);
            if let (true, Some(stored), Some(machine)) = (with_features, &item.stored, item.machine)
            {
                batch.origins.entry(stored.machine).or_insert(machine);
            }
            batch.write.messages.extend(item.stored);
            batch.write.quarantine.extend(item.quarantine);
        };
        add(first, &mut batch);
        count += 1;
        while count < settings.batch_max_messages {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(item)) => {
                    add(item, &mut batch);
                    count += 1;
                }
                Ok(None) | Err(_) => break,
            }
        }
        metrics
            .queue_depth
            .set(i64::try_from(rx.len()).unwrap_or(i64::MAX));
        metrics.batch_size.observe(count as f64);
        if tx.send(batch).await.is_err() {
            tracing::error!("writers stopped before the queue was drained");
            return;
        }
    }
}

/// Writes a batch, retrying with backoff until it commits: a message that reached the queue is
/// never dropped. Readiness reports the database down meanwhile. Returns the keys of the
/// messages inserted (when the batch asked for them).
async fn commit(
    store: &dyn TelemetryStore,
    batch: &Batch,
    metrics: &IngestMetrics,
) -> Vec<(MachineKey, i64)> {
    let mut delay = Duration::from_millis(100);
    loop {
        let start = Instant::now();
        match store.write(&batch.write).await {
            Ok(outcome) => {
                metrics.write_seconds.observe(start.elapsed().as_secs_f64());
                metrics.written.inc_by(outcome.inserted);
                metrics.duplicates.inc_by(outcome.duplicates);
                let readings: usize = batch.write.messages.iter().map(|m| m.readings.len()).sum();
                metrics.readings_written.inc_by(readings as u64);
                let now = chrono::Utc::now();
                for m in &batch.write.messages {
                    let lag = (now - m.ts).num_microseconds().unwrap_or(i64::MAX) as f64 / 1e6;
                    metrics.lag_seconds.observe(lag.max(0.0));
                }
                return outcome.inserted_keys;
            }
            Err(e) => {
                metrics.write_failures.inc();
                tracing::warn!(error = %e, retry_in_ms = delay.as_millis() as u64,
                               messages = batch.write.messages.len(), "batch write failed; retrying");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(5));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_watermark_waits_for_gaps() {
        let mut t = CommitTracker::new(0);
        assert_eq!(t.complete(11, 20), None);
        assert_eq!(t.complete(1, 10), Some(20));
        assert_eq!(t.complete(21, 21), Some(21));
    }

    #[test]
    fn ids_that_no_record_holds_do_not_hold_the_watermark_back() {
        // After a restart: 1 and 4 were replayed, 2..=3 had no record.
        let mut t = CommitTracker::with_missing(0, &[(2, 3)]);
        assert_eq!(t.complete(1, 1), Some(3));
        assert_eq!(t.complete(4, 4), Some(4));
    }

    proptest! {
        /// Whatever the completion order, the watermark ends at the last id and never passes
        /// an uncommitted one.
        #[test]
        fn watermark_is_the_committed_prefix(sizes in proptest::collection::vec(1u64..20, 1..30),
                                             seed in any::<u64>()) {
            let mut ranges = Vec::new();
            let mut lo = 1;
            for s in sizes {
                ranges.push((lo, lo + s - 1));
                lo += s;
            }
            let last = lo - 1;
            let mut order: Vec<usize> = (0..ranges.len()).collect();
            let mut x = seed;
            for i in (1..order.len()).rev() {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                order.swap(i, (x >> 33) as usize % (i + 1));
            }
            let mut t = CommitTracker::new(0);
            let mut committed = std::collections::BTreeSet::new();
            for i in order {
                let (a, b) = ranges[i];
                committed.extend(a..=b);
                if let Some(w) = t.complete(a, b) {
                    prop_assert!((1..=w).all(|id| committed.contains(&id)));
                }
            }
            prop_assert_eq!(t.watermark, last);
        }
    }
}
