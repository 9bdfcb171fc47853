//! Resident memory of every service process, sampled once a second from
//! `/proc/<pid>/status` (`VmRSS`). A restarted service is a new process: its samples form a
//! series of their own, compared only with themselves.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;

/// The first seconds of a process are its start-up (caches, pools, the model): not judged.
pub const WARM_UP_S: f64 = 20.0;
/// Series shorter than this (after the warm-up) are reported but not judged.
pub const MIN_SAMPLES: usize = 30;
/// A series is flat when the median of its last third is at most this much above the median
/// of its first third, relative...
pub const TOLERANCE_RATIO: f64 = 0.25;
/// ...plus this much, so that a small process's few pages of allocator growth do not count.
pub const TOLERANCE_KIB: u64 = 16 * 1024;

/// The processes to sample, by service name; updated when one is killed or restarted.
pub type Watched = Arc<Mutex<BTreeMap<&'static str, Option<u32>>>>;

#[derive(Debug, Clone)]
pub struct Series {
    pub service: &'static str,
    pub pid: u32,
    /// Seconds since the sampler started, and VmRSS in KiB.
    pub samples: Vec<(f64, u64)>,
}

/// What one series shows.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub service: &'static str,
    pub pid: u32,
    pub from_s: f64,
    pub to_s: f64,
    pub samples: usize,
    pub first_kib: u64,
    pub last_kib: u64,
    pub max_kib: u64,
    /// `None` when the series is too short to judge.
    pub flat: Option<bool>,
}

pub struct Sampler {
    series: Arc<Mutex<Vec<Series>>>,
    task: JoinHandle<()>,
}

fn vm_rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

impl Sampler {
    pub fn start(watched: Watched) -> Self {
        let series: Arc<Mutex<Vec<Series>>> = Arc::default();
        let sink = Arc::clone(&series);
        let task = tokio::spawn(async move {
            let start = Instant::now();
            let mut tick = tokio::time::interval(Duration::from_secs(1));
            loop {
                tick.tick().await;
                let now = start.elapsed().as_secs_f64();
                let pids: Vec<(&'static str, u32)> = watched
                    .lock()
                    .map(|w| w.iter().filter_map(|(s, p)| Some((*s, (*p)?))).collect())
                    .unwrap_or_default();
                let Ok(mut all) = sink.lock() else {
                    return;
                };
                for (service, pid) in pids {
                    let Some(kib) = vm_rss_kib(pid) else {
                        continue;
                    };
                    match all
                        .iter_mut()
                        .find(|s| s.service == service && s.pid == pid)
                    {
                        Some(s) => s.samples.push((now, kib)),
                        None => all.push(Series {
                            service,
                            pid,
                            samples: vec![(now, kib)],
                        }),
                    }
                }
            }
        });
        Self { series, task }
    }

    /// Stops sampling and judges every series.
    pub fn finish(self) -> Vec<Verdict> {
        self.task.abort();
        let series = self.series.lock().map(|s| s.clone()).unwrap_or_default();
        series.iter().map(judge).collect()
    }
}

fn median(values: &[u64]) -> u64 {
    let mut v = values.to_vec();
    v.sort_unstable();
    v.get(v.len() / 2).copied().unwrap_or(0)
}

fn judge(s: &Series) -> Verdict {
    let born = s.samples.first().map_or(0.0, |(t, _)| *t);
    let kib: Vec<u64> = s
        .samples
        .iter()
        .filter(|(t, _)| *t >= born + WARM_UP_S)
        .map(|(_, k)| *k)
        .collect();
    let third = (kib.len() / 3).max(1).min(kib.len());
    let first = median(&kib[..third]);
    let last = median(&kib[kib.len() - third..]);
    let flat = (kib.len() >= MIN_SAMPLES).then(|| {
        let allowed = first as f64 * (1.0 + TOLERANCE_RATIO) + TOLERANCE_KIB as f64;
        last as f64 <= allowed
    });
    Verdict {
        service: s.service,
        pid: s.pid,
        from_s: s.samples.first().map_or(0.0, |(t, _)| *t),
        to_s: s.samples.last().map_or(0.0, |(t, _)| *t),
        samples: kib.len(),
        first_kib: first,
        last_kib: last,
        max_kib: kib.iter().copied().max().unwrap_or(0),
        flat,
    }
}
