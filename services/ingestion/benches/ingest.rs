//! `make bench-ingest`: the ingest path measured side by side on this machine.
//!
//! (a) the broker's delivery rate to a subscriber that discards messages;
//! (b) raw COPY of the same rows into the same partitioned table;
//! (c) AurumAI end to end (MQTT publish -> committed rows) with the service's RSS;
//! (d) publish-to-commit latency at 80 % of (c)'s rate, from the service's own
//!     `aurum_ingest_lag_seconds` histogram.
//!
//! Everything runs against a broker and a database of the benchmark's own. Sizes come from
//! `BENCH_MESSAGES` (default 200000), `BENCH_MACHINES` (100) and `BENCH_LATENCY_S` (20).
#![allow(clippy::print_stdout, clippy::unwrap_used, clippy::expect_used)]

#[path = "../tests/support/service.rs"]
mod service;

use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aurum_config::MqttSettings;
use aurum_mqtt::{telemetry_topic, Consumer, Publisher};
use aurum_proto::{Encoding, OutgoingMessage};
use aurum_testkit::{free_port, Broker, TestDb};
use chrono::Utc;
use futures::stream::{FuturesUnordered, StreamExt};
use futures::SinkExt;

const TENANT: &str = "bench";
const METRICS: usize = 7;

fn env_or(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn machine(i: u64) -> String {
    format!("TRUCK-{i:04}")
}

/// A haul truck's seven metrics, varied a little per message.
fn payload(machine: &str, seq: u64) -> Vec<u8> {
    let j = (seq % 100) as f64;
    let metrics = [
        ("rpm", 1600.0 + j),
        ("temperature", 85.0 + j / 10.0),
        ("vibration", 2.5 + j / 100.0),
        ("fuel_rate_lh", 180.0 + j),
        ("speed_kmh", 30.0 + j / 5.0),
        ("load_tons", 250.0 + j),
        ("oil_pressure", 4.2),
    ];
    OutgoingMessage {
        machine_id: machine,
        seq,
        ts: Utc::now(),
        metrics: &metrics,
    }
    .encode(Encoding::Json)
}

/// Publishes `n` messages round-robin over `machines`, `window` in flight, at most `rate`
/// messages/s (0 = as fast as possible). Seqs start at `first_seq`.
async fn publish(
    p: &Publisher,
    n: u64,
    machines: u64,
    first_seq: u64,
    window: usize,
    rate: f64,
) -> Duration {
    let topics: Vec<String> = (0..machines)
        .map(|i| telemetry_topic(TENANT, &machine(i)))
        .collect();
    let names: Vec<String> = (0..machines).map(machine).collect();
    let start = Instant::now();
    let mut inflight = FuturesUnordered::new();
    for k in 0..n {
        if rate > 0.0 {
            let due = start + Duration::from_secs_f64(k as f64 / rate);
            if let Some(wait) = due.checked_duration_since(Instant::now()) {
                tokio::time::sleep(wait).await;
            }
        }
        let m = (k % machines) as usize;
        let seq = first_seq + k / machines;
        inflight.push(p.publish(
            &topics[m],
            payload(&names[m], seq),
            Encoding::JSON_MIME,
            None,
        ));
        while inflight.len() >= window {
            inflight.next().await.unwrap().expect("broker ack");
        }
    }
    while let Some(r) = inflight.next().await {
        r.expect("broker ack");
    }
    start.elapsed()
}

fn mqtt(broker: &Broker, id: &str) -> MqttSettings {
    let mut s = MqttSettings::local(id);
    s.url = broker.url();
    s
}

/// Rates of the broker alone, in messages/s.
struct BrokerRates {
    /// One publisher -> broker -> a subscriber that discards, live, as (c) runs.
    live: f64,
    /// The same subscriber draining a backlog queued for its session while it was away: the
    /// broker's delivery with no publisher competing for the CPU.
    drain: f64,
}

/// The discarding subscriber runs in a process of its own, as the service does in (c): paho
/// serialises the clients of one process on a shared lock, so a subscriber beside the
/// publisher would measure that lock, not the broker.
struct Subscriber {
    child: tokio::process::Child,
    lines: tokio::io::Lines<tokio::io::BufReader<tokio::process::ChildStdout>>,
}

impl Subscriber {
    /// Starts a subscriber that exits after `count` messages (0: as soon as it subscribed),
    /// keeping its session for `expiry_s` seconds after it leaves.
    async fn start(broker: &Broker, count: u64, expiry_s: u32) -> Self {
        use tokio::io::AsyncBufReadExt;
        let mut child = tokio::process::Command::new(std::env::current_exe().unwrap())
            .env("AURUM_BENCH_CHILD", "subscribe")
            .env("AURUM_BENCH_URL", broker.url())
            .env("AURUM_BENCH_COUNT", count.to_string())
            .env("AURUM_BENCH_EXPIRY", expiry_s.to_string())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        assert_eq!(lines.next_line().await.unwrap().as_deref(), Some("ready"));
        Self { child, lines }
    }

    /// Waits for the exit; returns the seconds from subscribing to the last message.
    async fn finish(mut self) -> f64 {
        let secs = self
            .lines
            .next_line()
            .await
            .unwrap()
            .unwrap()
            .parse()
            .unwrap();
        self.child.wait().await.unwrap();
        secs
    }
}

/// The child side of [`Subscriber`].
async fn subscriber_child() {
    let url = std::env::var("AURUM_BENCH_URL").unwrap();
    let count: u64 = std::env::var("AURUM_BENCH_COUNT").unwrap().parse().unwrap();
    let mut settings = MqttSettings::local("bench-discard");
    settings.url = url;
    settings.session_expiry_s = std::env::var("AURUM_BENCH_EXPIRY")
        .unwrap()
        .parse()
        .unwrap();
    let received = Arc::new(AtomicU64::new(0));
    let r = Arc::clone(&received);
    let start = Instant::now();
    let consumer = Consumer::start(
        &settings,
        // The filter the service subscribes with by default (one replica: a plain one).
        aurum_mqtt::telemetry_filter(""),
        move |_d| {
            r.fetch_add(1, Ordering::Relaxed);
        },
    )
    .unwrap();
    while !consumer.is_connected() {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    println!("ready");
    while received.load(Ordering::Relaxed) < count {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    println!("{}", start.elapsed().as_secs_f64());
    consumer.disconnect().await;
}

/// (a) Broker -> one discarding subscriber, live and from a backlog.
async fn broker_rate(broker: &Broker, n: u64, machines: u64) -> BrokerRates {
    let p = Publisher::connect(&mqtt(broker, "bench-pub-a"), 1000)
        .await
        .unwrap();

    // Live: the clock runs from the first publish to the last message received.
    let live_sub = Subscriber::start(broker, n, 3600).await;
    let start = Instant::now();
    publish(&p, n, machines, 1, 1000, 0.0).await;
    live_sub.finish().await;
    let live = n as f64 / start.elapsed().as_secs_f64();

    // Backlog: queued while the subscriber is away, then drained. Session expiry 0 on the
    // draining connection ends the session with it, so nothing queues for it during (c).
    publish(&p, n, machines, 1, 1000, 0.0).await;
    p.disconnect().await.ok();
    let drain_sub = Subscriber::start(broker, n, 0).await;
    let drain = n as f64 / drain_sub.finish().await;
    BrokerRates { live, drain }
}

/// (b) COPY of the same rows (one per message, seven readings in JSON) into the table.
async fn copy_rate(db: &TestDb, n: u64, machines: u64) -> f64 {
    let client = db.client().await;
    let keys: Vec<i64> = client
        .query(
            "SELECT machine_key FROM ingestion.machines ORDER BY machine_id",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let now = Utc::now().to_rfc3339();
    let mut rows = Vec::with_capacity(n as usize * 200);
    for k in 0..n {
        let key = keys[(k % machines) as usize];
        let seq = 1_000_000 + k / machines;
        let j = (k % 100) as f64;
        rows.extend_from_slice(
            format!(
                "{key}\t{seq}\t{now}\t{now}\t{{\"rpm\": {}, \"temperature\": {}, \"vibration\": {}, \"fuel_rate_lh\": {}, \"speed_kmh\": {}, \"load_tons\": {}, \"oil_pressure\": 4.2}}\n",
                1600.0 + j, 85.0 + j / 10.0, 2.5 + j / 100.0, 180.0 + j, 30.0 + j / 5.0, 250.0 + j
            )
            .as_bytes(),
        );
    }
    let start = Instant::now();
    let sink = client
        .copy_in("COPY ingestion.telemetry (machine_key, seq, ts, received_at, metrics) FROM STDIN")
        .await
        .unwrap();
    futures::pin_mut!(sink);
    for chunk in rows.chunks(1 << 20) {
        sink.send(bytes::Bytes::copy_from_slice(chunk))
            .await
            .unwrap();
    }
    let copied = sink.finish().await.unwrap();
    let t = start.elapsed();
    assert_eq!(copied, n);
    let total = db.count("SELECT count(*) FROM ingestion.telemetry").await;
    assert_eq!(total, n as i64);
    client
        .batch_execute("TRUNCATE ingestion.telemetry")
        .await
        .unwrap();
    (n * METRICS as u64) as f64 / t.as_secs_f64()
}

struct Service {
    child: std::process::Child,
    port: u16,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

fn start_service(db: &TestDb, broker: &Broker, spool: &std::path::Path) -> Service {
    let port = free_port();
    let child = service::service_command(db, broker, spool, port, "bench-ingestion")
        .env("AURUM_TELEMETRY__LOG_LEVEL", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start aurum-ingestion");
    Service { child, port }
}

fn rss_kib(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

async fn wait_ready(port: u16) {
    let url = format!("http://127.0.0.1:{port}/readyz");
    for _ in 0..600 {
        if reqwest::get(&url)
            .await
            .map(|r| r.status().is_success())
            .unwrap_or(false)
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("service not ready");
}

/// Cumulative histogram buckets of `aurum_ingest_lag_seconds`: (upper bound, count).
async fn lag_buckets(port: u16) -> Vec<(f64, f64)> {
    service::metrics(&format!("http://127.0.0.1:{port}"))
        .await
        .lines()
        .filter_map(|l| l.strip_prefix("aurum_ingest_lag_seconds_bucket{le=\""))
        .filter_map(|rest| {
            let (le, count) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, count.trim().parse().ok()?))
        })
        .collect()
}

/// The q-quantile from cumulative buckets, interpolated linearly inside a bucket (as
/// Prometheus' histogram_quantile does).
fn quantile(buckets: &[(f64, f64)], q: f64) -> f64 {
    let total = buckets.last().map(|b| b.1).unwrap_or(0.0);
    let rank = q * total;
    let mut prev = (0.0, 0.0);
    for &(le, count) in buckets {
        if count >= rank {
            if le.is_infinite() {
                return prev.0;
            }
            let width = count - prev.1;
            let frac = if width > 0.0 {
                (rank - prev.1) / width
            } else {
                1.0
            };
            return prev.0 + (le - prev.0) * frac;
        }
        prev = (le, count);
    }
    f64::NAN
}

/// Waits until the service has committed `target` messages, sampling its RSS meanwhile;
/// returns the highest RSS seen (KiB).
async fn wait_committed(service: &Service, target: u64, timeout: Duration) -> u64 {
    let start = Instant::now();
    let mut peak = 0;
    loop {
        peak = peak.max(rss_kib(service.child.id(), "VmRSS:"));
        if committed(service.port).await >= target {
            return peak;
        }
        assert!(start.elapsed() < timeout, "ingestion stalled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Messages the service has committed, from its own counter: polling `count(*)` would load
/// the database being measured.
async fn committed(port: u16) -> u64 {
    let text = service::metrics(&format!("http://127.0.0.1:{port}")).await;
    aurum_testkit::metric_value(&text, "aurum_ingest_messages_written_total").unwrap_or(0.0) as u64
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    if std::env::var_os("AURUM_BENCH_CHILD").is_some() {
        return subscriber_child().await;
    }
    let n = env_or("BENCH_MESSAGES", 200_000);
    let machines = env_or("BENCH_MACHINES", 100);
    let latency_s = env_or("BENCH_LATENCY_S", 20);

    let db = TestDb::create().await;
    aurum_postgres::ingestion::migrate(&db.settings("aurumai_ingestion"))
        .await
        .unwrap();
    let admin = db.client().await;
    for i in 0..machines {
        admin
            .execute(
                "INSERT INTO ingestion.machines (tenant_id, machine_id, machine_type, profile_id) VALUES ($1, $2, 'haul_truck', 'haul_truck')",
                &[&TENANT, &machine(i)],
            )
            .await
            .unwrap();
    }
    let broker = Broker::start();
    let spool = tempfile::tempdir().unwrap();

    // Today's partitions, for (b); the service would make them too, but starting it here would
    // create its broker session early and queue (a)'s messages for it.
    {
        use aurum_ports::ingestion::TelemetryMaintenance;
        let pool = aurum_postgres::connect_pool(&db.settings("aurumai_ingestion")).unwrap();
        aurum_postgres::ingestion::PgTelemetryMaintenance::new(pool)
            .ensure_partitions(Utc::now(), 1, 1)
            .await
            .unwrap();
    }

    eprintln!("(a) broker delivery, {n} messages...");
    let rates = broker_rate(&broker, n, machines).await;
    eprintln!("(b) COPY of {n} rows...");
    let copy = copy_rate(&db, n, machines).await;

    eprintln!("(c) end to end, {n} messages...");
    let service = start_service(&db, &broker, spool.path());
    wait_ready(service.port).await;
    let pid = service.child.id();
    let p = Publisher::connect(&mqtt(&broker, "bench-pub-c"), 1000)
        .await
        .unwrap();
    let start = Instant::now();
    let pub_task = {
        let p = Arc::new(p);
        let p2 = Arc::clone(&p);
        (
            tokio::spawn(async move { publish(&p2, n, machines, 1, 1000, 0.0).await }),
            p,
        )
    };
    let mut peak_rss = wait_committed(&service, n, Duration::from_secs(900)).await;
    let e2e_time = start.elapsed();
    pub_task.0.await.unwrap();
    let e2e_msgs = n as f64 / e2e_time.as_secs_f64();
    let e2e = e2e_msgs * METRICS as f64;

    eprintln!("(d) latency at a fraction of {e2e_msgs:.0} msg/s for {latency_s} s...");
    let before = lag_buckets(service.port).await;
    let fraction = env_or("BENCH_LATENCY_PERCENT", 80) as f64 / 100.0;
    let rate = fraction * e2e_msgs;
    let m = (rate * latency_s as f64) as u64;
    let first_seq = 1 + n / machines + 1;
    let publish_time = publish(&pub_task.1, m, machines, first_seq, 1000, rate).await;
    peak_rss = peak_rss.max(wait_committed(&service, n + m, Duration::from_secs(900)).await);
    let achieved = m as f64 / publish_time.as_secs_f64();
    let after = lag_buckets(service.port).await;
    let delta: Vec<(f64, f64)> = after
        .iter()
        .zip(&before)
        .map(|(a, b)| (a.0, a.1 - b.1))
        .collect();
    let p50 = quantile(&delta, 0.50) * 1000.0;
    let p99 = quantile(&delta, 0.99) * 1000.0;
    let hwm = rss_kib(pid, "VmHWM:");
    let rows = db.count("SELECT count(*) FROM ingestion.telemetry").await;
    assert_eq!(
        rows,
        (n + m) as i64,
        "every published message is stored exactly once"
    );
    drop(service);

    let floor = (rates.live * METRICS as f64).min(copy);
    let r = |msgs: f64| msgs * METRICS as f64;
    println!("| measure | messages/s | readings/s |");
    println!("|---|---:|---:|");
    println!(
        "| (a) broker -> discarding subscriber, live, one publisher | {:.0} | {:.0} |",
        rates.live,
        r(rates.live)
    );
    println!(
        "| (a2) broker -> discarding subscriber, draining a queued backlog | {:.0} | {:.0} |",
        rates.drain,
        r(rates.drain)
    );
    println!(
        "| (b) COPY into ingestion.telemetry | {:.0} | {copy:.0} |",
        copy / METRICS as f64
    );
    println!(
        "| (c) AurumAI end to end, MQTT publish -> committed rows | {e2e_msgs:.0} | {e2e:.0} |"
    );
    println!();
    println!(
        "- (c) / min((a), (b)) = {:.2}; (c) / (a2) = {:.2}",
        e2e / floor,
        e2e / r(rates.drain)
    );
    println!("- Publish-to-commit latency at {achieved:.0} msg/s ({:.0} readings/s, {:.0} % of (c)) for {latency_s} s: p50 {p50:.1} ms, p99 {p99:.1} ms (from the service's aurum_ingest_lag_seconds histogram, interpolated within buckets)", achieved * METRICS as f64, fraction * 100.0);
    println!(
        "- Ingestion service RSS: peak sampled {:.1} MiB, VmHWM {:.1} MiB",
        peak_rss as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
    println!("- {n} messages of {METRICS} readings from {machines} machines, JSON, QoS 1; one Mosquitto, PostgreSQL 15 and the service on the same 2-core machine");
}
