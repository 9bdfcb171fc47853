//! Bounds the argon2 work that requests can start: each check takes about 19 MiB and tens of
//! milliseconds of CPU, and sign-in and client authentication run one per request before the
//! caller is known. Without a bound, a few dozen concurrent bad logins exceed the pod's memory.
//!
//! At most `permits` hashes run at once; a request waits up to `wait` for a turn and is then
//! answered "busy" (503 with Retry-After) rather than queued without end.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("too many password checks at once; retry shortly")]
pub struct Busy;

#[derive(Debug, Clone)]
pub struct HashGate {
    permits: Arc<Semaphore>,
    wait: Duration,
}

impl HashGate {
    pub fn new(permits: usize, wait: Duration) -> Self {
        Self {
            permits: Arc::new(Semaphore::new(permits.max(1))),
            wait,
        }
    }

    /// Runs `f` (an argon2 hash or check) on the blocking pool once a permit is free.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, Busy> {
        let permit = tokio::time::timeout(self.wait, Arc::clone(&self.permits).acquire_owned())
            .await
            .map_err(|_| Busy)?
            .map_err(|_| Busy)?;
        let out = tokio::task::spawn_blocking(move || {
            let out = f();
            drop(permit);
            out
        })
        .await
        .map_err(|_| Busy)?;
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn no_more_than_the_permits_run_at_once_and_the_rest_wait_or_are_refused() {
        // Each job holds its permit six times longer than the others may wait for one.
        let gate = HashGate::new(2, Duration::from_millis(50));
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let jobs = (0..6).map(|_| {
            let (gate, running, peak) = (gate.clone(), running.clone(), peak.clone());
            async move {
                gate.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(300));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            }
        });
        let results = futures::future::join_all(jobs).await;
        assert!(peak.load(Ordering::SeqCst) <= 2);
        let done = results.iter().filter(|r| r.is_ok()).count();
        let busy = results.iter().filter(|r| **r == Err(Busy)).count();
        assert_eq!((done, busy), (2, 4), "{results:?}");
    }
}
