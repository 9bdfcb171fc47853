//! The soak with faults (`make soak`): the four services as processes, devices publishing
//! over MQTT at 80 % of the ingest rate measured at the start of the same run, while
//! ingestion, prediction and auth are killed (SIGKILL) and started again, the broker is
//! restarted and the database is cut off for a while, one after another. Afterwards every
//! published message is stored exactly once, the resident memory of every service process
//! is flat, and every probe machine driven anomalous has exactly one open operational alert
//! while no healthy probe has an unresolved one (load machines publish far faster than any machine the
//! models know, so their alerts are reported, not judged; see `fleet`).
//!
//! Bounded: `SOAK_SECONDS` (default 240) of faults and load, after a 15 s calibration
//! (`SOAK_CALIBRATION_SECONDS`). `TEST_LOG=1` shows the progress and the summary;
//! `SOAK_REPORT=<file>` also writes the summary there as Markdown.
#![allow(clippy::unwrap_used, clippy::expect_used)]

#[allow(dead_code)] // what only the platform tests use
#[path = "../platform/harness.rs"]
mod harness;
#[path = "../../../../services/prediction/tests/support/simulated.rs"]
mod simulated;

mod checks;
mod fleet;
mod memory;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aurum_testkit::{http_ready, init_test_logs};
use tokio::time::Instant;

use crate::fleet::{Device, Fleet};
use crate::harness::{Options, Platform};
use crate::memory::{Sampler, Watched};

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// The load as a share of the calibrated rate.
const LOAD: f64 = 0.8;
/// Devices carrying the load.
const LOAD_MACHINES: usize = 8;
/// Probe devices, half of them driven anomalous (see `fleet`).
const PROBES: usize = 6;
/// How long a killed service stays down before it is started again.
const DOWN: Duration = Duration::from_secs(3);
const DB_CUT: Duration = Duration::from_secs(10);

/// One fault, when it began and how long until the platform answered again.
#[derive(Debug, Clone)]
pub struct Fault {
    pub what: String,
    pub at_s: f64,
    pub recovered_after_s: f64,
}

async fn rows(platform: &Platform) -> u64 {
    platform
        .db()
        .count("SELECT count(*) FROM ingestion.telemetry")
        .await as u64
}

/// Kills `service` with SIGKILL, waits [`DOWN`], starts it again and waits until it is ready.
async fn kill_and_restart(platform: &mut Platform, watched: &Watched, service: &'static str) {
    let s = platform.service_mut(service);
    s.kill();
    watched.lock().unwrap().insert(service, None);
    tokio::time::sleep(DOWN).await;
    let s = platform.service_mut(service);
    s.respawn();
    let (pid, url) = (s.pid(), s.url.clone());
    watched.lock().unwrap().insert(service, pid);
    assert!(
        http_ready(&platform.client, &url, Duration::from_secs(90)).await,
        "{service} did not become ready again after SIGKILL"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "minutes long: run with `make soak`"]
async fn soak_with_faults_stores_every_message_once_with_flat_memory_and_one_alert_each() {
    init_test_logs();
    let soak_s = env_u64("SOAK_SECONDS", 240);
    let calibration_s = env_u64("SOAK_CALIBRATION_SECONDS", 15);
    let mut platform = Platform::start_with(Options {
        db_proxy: true,
        log_level: "info".to_owned(),
    })
    .await;
    tracing::info!(soak_s, calibration_s, "platform started");

    let token = platform.console_token().await;
    let mut devices = Vec::new();
    for i in 0..LOAD_MACHINES + PROBES {
        let probe = i >= LOAD_MACHINES;
        let anomalous = probe && i - LOAD_MACHINES < PROBES / 2;
        let machine = match (probe, anomalous) {
            (false, _) => format!("LOAD-{i:02}"),
            (true, true) => format!("PROBE-SICK-{i:02}"),
            (true, false) => format!("PROBE-WELL-{i:02}"),
        };
        platform
            .register_machine(&token, &machine, "haul_truck")
            .await;
        let (username, password) = platform.provision_device(&token, &machine).await;
        devices.push(Device {
            machine,
            username,
            password,
            anomalous,
            probe,
        });
    }
    let fleet = Fleet::start(&platform.broker, &devices).await;
    tracing::info!(load = LOAD_MACHINES, probes = PROBES, "devices connected");

    // Calibration: as fast as the devices can publish; the rate is what the database gained.
    fleet.set_rate(f64::INFINITY);
    tokio::time::sleep(Duration::from_secs(3)).await;
    let (t0, r0) = (Instant::now(), rows(&platform).await);
    tokio::time::sleep(Duration::from_secs(calibration_s)).await;
    let r1 = rows(&platform).await;
    let calibrated = (r1 - r0) as f64 / t0.elapsed().as_secs_f64();
    let soak_rate = (calibrated * LOAD).max(1.0);
    assert!(
        fleet.settle(Duration::from_secs(120)).await,
        "calibration messages unacknowledged"
    );
    let drained = drain(&platform, fleet.issued(), Duration::from_secs(180)).await;
    assert!(drained, "the calibration's messages were not all stored");
    tracing::info!(
        calibrated_per_s = calibrated.round(),
        soak_per_s = soak_rate.round(),
        published = fleet.issued(),
        "calibrated"
    );

    // The soak: load, and one fault after another at even intervals.
    let watched: Watched = Arc::new(Mutex::new(
        platform
            .services
            .iter()
            .map(|s| (s.name, s.pid()))
            .collect::<BTreeMap<_, _>>(),
    ));
    let sampler = Sampler::start(Arc::clone(&watched));
    let before_soak = fleet.issued();
    fleet.set_rate(soak_rate);
    let start = Instant::now();
    let started_at = chrono::Utc::now();
    let gap = soak_s as f64 / 6.0;
    let mut faults = Vec::new();
    for (k, what) in [
        "SIGKILL aurum-ingestion, restart",
        "SIGKILL aurum-prediction, restart",
        "SIGKILL aurum-auth, restart",
        "restart the broker",
        "cut the database (proxy) for 10 s",
    ]
    .into_iter()
    .enumerate()
    {
        let at = Duration::from_secs_f64(gap * (k + 1) as f64);
        tokio::time::sleep_until(start + at).await;
        let began = start.elapsed().as_secs_f64();
        tracing::info!(at_s = began.round(), fault = what, "fault");
        match k {
            0 => kill_and_restart(&mut platform, &watched, "aurum-ingestion").await,
            1 => kill_and_restart(&mut platform, &watched, "aurum-prediction").await,
            2 => kill_and_restart(&mut platform, &watched, "aurum-auth").await,
            3 => tokio::task::block_in_place(|| platform.broker.restart()),
            _ => {
                let proxy = platform.db_proxy.as_ref().expect("a database proxy");
                proxy.cut();
                tokio::time::sleep(DB_CUT).await;
                proxy.restore();
                let url = platform.url("aurum-ingestion").to_owned();
                assert!(
                    http_ready(&platform.client, &url, Duration::from_secs(90)).await,
                    "ingestion not ready after the database came back"
                );
            }
        }
        let recovered = start.elapsed().as_secs_f64() - began;
        tracing::info!(
            fault = what,
            recovered_after_s = (recovered * 10.0).round() / 10.0,
            published = fleet.issued(),
            acked = fleet.acked(),
            stored = rows(&platform).await,
            "recovered"
        );
        faults.push(Fault {
            what: what.to_owned(),
            at_s: began,
            recovered_after_s: recovered,
        });
    }
    tokio::time::sleep_until(start + Duration::from_secs(soak_s)).await;
    let soak_elapsed = start.elapsed().as_secs_f64();
    let soak_published = fleet.issued() - before_soak;
    tracing::info!(
        published = fleet.issued(),
        acked = fleet.acked(),
        "load stopped; draining"
    );

    // Drain: every message acknowledged, then stored.
    assert!(
        fleet.settle(Duration::from_secs(120)).await,
        "messages still unacknowledged by the broker after 120 s"
    );
    let published = fleet.issued();
    let drain_start = Instant::now();
    let drained = drain(&platform, published, Duration::from_secs(240)).await;
    let drain_s = drain_start.elapsed().as_secs_f64();
    // Prediction scores features every second: give the last vectors time to land.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let memory = sampler.finish();
    let retries = fleet
        .counters
        .retries
        .load(std::sync::atomic::Ordering::SeqCst);
    let issued = fleet.issued_by_machine();
    fleet.stop().await;

    let stored = checks::stored(platform.db(), &issued).await;
    let alerts = checks::alerts(platform.db(), &devices, started_at).await;
    let summary = checks::Summary {
        soak_s,
        calibration_s,
        calibrated,
        soak_rate,
        soak_published,
        soak_elapsed,
        published,
        retries,
        drain_s,
        drained,
        faults,
        stored,
        memory,
        alerts,
    };
    summary.log();
    if let Some(path) = std::env::var_os("SOAK_REPORT") {
        std::fs::write(&path, summary.markdown()).expect("write the soak report");
    }
    platform.stop();
    summary.assert_passed();
}

/// Waits until the database holds `published` rows; `false` when `timeout` passes first or
/// nothing more has been stored for a minute (what is missing by then will not come).
async fn drain(platform: &Platform, published: u64, timeout: Duration) -> bool {
    let deadline = Instant::now() + timeout;
    let mut last = (0, Instant::now());
    loop {
        let stored = rows(platform).await;
        if stored >= published {
            return true;
        }
        if stored != last.0 {
            last = (stored, Instant::now());
        }
        if Instant::now() >= deadline || last.1.elapsed() > Duration::from_secs(60) {
            tracing::warn!(stored, published, "not drained");
            return false;
        }
        tracing::info!(stored, published, "draining");
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
