//! Test helpers shared by every service's tests: real dependencies, isolated per test.
//!
//! - [`TestDb`]: a uniquely named database on the local PostgreSQL, dropped afterwards.
//! - [`Broker`]: a Mosquitto process of the test's own on a free port, restartable.
//! - [`TcpProxy`]: a proxy in front of a dependency that a test can cut and restore.
//! - [`OtlpReceiver`]: an OTLP/HTTP endpoint that decodes and keeps the spans it receives.

mod broker;
mod db;
mod otlp;
mod proxy;

pub use broker::{Broker, BrokerTls};
pub use db::TestDb;
pub use otlp::{OtlpReceiver, ReceivedSpan};
pub use proxy::TcpProxy;

/// The services' logs in test output when `TEST_LOG` is set (`TEST_LOG=1 cargo test ...`);
/// silent otherwise. Safe to call from every test.
pub fn init_test_logs() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if std::env::var_os("TEST_LOG").is_some() {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new("info"))
                .with_test_writer()
                .try_init();
        }
    });
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("cannot find a free port: {e}"))
}

/// The value of one series in a Prometheus text exposition, e.g.
/// `aurum_ingest_messages_received_total{source="mqtt"}`.
pub fn metric_value(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|l| {
        let rest = l.strip_prefix(series)?.strip_prefix(' ')?;
        rest.trim().parse().ok()
    })
}

/// Sends SIGTERM to process `pid` (a service or broker the test started); `true` when the
/// signal was delivered. `unsafe` is forbidden in this workspace: it goes through kill(1).
pub fn sigterm(pid: u32) -> bool {
    std::process::Command::new("kill")
        .arg("-TERM")
        .arg(pid.to_string())
        .status()
        .is_ok_and(|s| s.success())
}

/// Polls `check` every 50 ms until it returns true or `timeout` passes.
pub async fn eventually<F, Fut>(timeout: std::time::Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if check().await {
            return true;
        }
        if tokio::time::Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

/// Polls `{base_url}/readyz` until it answers 2xx; `false` when `timeout` passes first.
pub async fn http_ready(
    client: &reqwest::Client,
    base_url: &str,
    timeout: std::time::Duration,
) -> bool {
    let url = format!("{base_url}/readyz");
    eventually(timeout, || {
        let request = client.get(&url).send();
        async move { request.await.is_ok_and(|r| r.status().is_success()) }
    })
    .await
}

/// `path` with its segments after the first `keep` percent-encoded, the way a client may
/// spell them: every ASCII letter and digit when `all`, else the first of each segment. A
/// router decodes both to the plain path, so every check must see the same route.
pub fn percent_encoded_path(path: &str, keep: usize, all: bool) -> String {
    path.split('/')
        .enumerate()
        .map(|(i, seg)| {
            if i < keep {
                return seg.to_owned();
            }
            seg.chars()
                .enumerate()
                .map(|(j, c)| {
                    if (all || j == 0) && c.is_ascii_alphanumeric() {
                        format!("%{:02X}", u32::from(c))
                    } else {
                        c.to_string()
                    }
                })
                .collect()
        })
        .collect::<Vec<_>>()
        .join("/")
}
