//! A bounded window of in-flight sends: at most `limit` outstanding, completions counted.

use std::time::Duration;

use futures::future::BoxFuture;
use futures::stream::{FuturesUnordered, StreamExt};

/// What one send (a message, or an HTTP batch) ended with.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Outcome {
    /// Messages the other side acknowledged (MQTT PUBACK, HTTP 2xx).
    pub acked: u64,
    /// Messages given up on after retries.
    pub failed: u64,
    /// Of the acknowledged messages, those the ingestion service reported as stored (HTTP).
    pub accepted: u64,
    /// Of the acknowledged messages, those it reported as rejected (HTTP).
    pub rejected: u64,
    /// Of the acknowledged messages, those it already had (HTTP).
    pub duplicates: u64,
}

impl Outcome {
    pub fn acked(n: u64) -> Self {
        Self {
            acked: n,
            ..Self::default()
        }
    }

    pub fn failed(n: u64) -> Self {
        Self {
            failed: n,
            ..Self::default()
        }
    }

    pub fn add(&mut self, o: Outcome) {
        self.acked += o.acked;
        self.failed += o.failed;
        self.accepted += o.accepted;
        self.rejected += o.rejected;
        self.duplicates += o.duplicates;
    }
}

/// A send in flight.
pub type Pending = BoxFuture<'static, Outcome>;

/// The in-flight window.
#[derive(Debug)]
pub struct Window {
    inflight: FuturesUnordered<Pending>,
    limit: usize,
    totals: Outcome,
}

impl Window {
    pub fn new(limit: usize) -> Self {
        Self {
            inflight: FuturesUnordered::new(),
            limit: limit.max(1),
            totals: Outcome::default(),
        }
    }

    pub fn len(&self) -> usize {
        self.inflight.len()
    }

    pub fn is_empty(&self) -> bool {
        self.inflight.is_empty()
    }

    /// Totals of the sends completed so far.
    pub fn totals(&self) -> Outcome {
        self.totals
    }

    /// Adds a send, first waiting for completions while the window is full (backpressure).
    pub async fn push(&mut self, send: Pending) {
        while self.inflight.len() >= self.limit {
            self.harvest().await;
        }
        self.inflight.push(send);
    }

    /// Waits for one send to complete and counts it. Never completes while the window is
    /// empty. Cancel-safe.
    pub async fn harvest(&mut self) {
        match self.inflight.next().await {
            Some(outcome) => self.totals.add(outcome),
            None => std::future::pending().await,
        }
    }

    /// Waits up to `timeout` for every send to complete. Returns how many were still in
    /// flight at the deadline; they are abandoned.
    pub async fn drain(&mut self, timeout: Duration) -> u64 {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.inflight.is_empty() {
            match tokio::time::timeout_at(deadline, self.inflight.next()).await {
                Ok(Some(outcome)) => self.totals.add(outcome),
                Ok(None) | Err(_) => break,
            }
        }
        let left = self.inflight.len() as u64;
        self.inflight = FuturesUnordered::new();
        left
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::FutureExt;

    #[tokio::test]
    async fn the_window_never_exceeds_its_limit_and_counts_everything() {
        let mut w = Window::new(3);
        for i in 0..10u64 {
            let send = async move {
                tokio::time::sleep(Duration::from_millis(i % 3)).await;
                if i == 4 {
                    Outcome::failed(1)
                } else {
                    Outcome::acked(1)
                }
            };
            w.push(send.boxed()).await;
            assert!(w.len() <= 3);
        }
        assert_eq!(w.drain(Duration::from_secs(5)).await, 0);
        assert_eq!(w.totals().acked, 9);
        assert_eq!(w.totals().failed, 1);
    }

    #[tokio::test]
    async fn drain_gives_up_at_the_deadline() {
        let mut w = Window::new(2);
        w.push(std::future::pending::<Outcome>().boxed()).await;
        w.push(async { Outcome::acked(1) }.boxed()).await;
        assert_eq!(w.drain(Duration::from_millis(50)).await, 1);
        assert_eq!(w.totals().acked, 1);
        assert!(w.is_empty());
    }
}
