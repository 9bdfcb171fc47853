//! Publishing to a real Mosquitto started by the test.

#![allow(clippy::unwrap_used)] // helpers of tests, not #[test] functions

use std::collections::BTreeMap;
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use aurum_config::MqttSettings;
use aurum_domain::TenantId;
use aurum_mqtt::{parse_telemetry_topic, Consumer, Delivery};
use aurum_proto::{decode_message, Encoding};
use aurum_simulator::degradation::LifecycleParams;
use aurum_simulator::fleet::FleetSpec;
use aurum_simulator::transport::TransportConfig;
use aurum_simulator::{run, RunConfig};

const MOSQUITTO: &str = "/usr/sbin/mosquitto";

/// A Mosquitto of our own on a free port; killed (by its pid) when dropped.
struct Broker {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Broker {
    fn start() -> Self {
        let port = TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\n"),
        )
        .unwrap();
        let log = std::fs::File::create(dir.path().join("mosquitto.log")).unwrap();
        let child = Command::new(MOSQUITTO)
            .arg("-c")
            .arg(&conf)
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("mosquitto starts");
        let broker = Broker { child, port, dir };
        let deadline = Instant::now() + Duration::from_secs(10);
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                Instant::now() < deadline,
                "mosquitto did not listen: {}",
                broker.log()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        broker
    }

    fn url(&self) -> String {
        format!("mqtt://127.0.0.1:{}", self.port)
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("mosquitto.log")).unwrap_or_default()
    }
}

fn settings(url: &str, client_id: &str) -> MqttSettings {
    let mut s = MqttSettings::local(client_id);
    s.url = url.to_owned();
    s
}

fn config(url: &str, encoding: Encoding, count: Option<u64>, labels: Option<PathBuf>) -> RunConfig {
    RunConfig {
        tenant: TenantId::parse("demo").unwrap(),
        machines: FleetSpec::Seed.machines().unwrap(),
        transport: TransportConfig::Mqtt {
            settings: settings(url, &format!("sim-test-{}", std::process::id())),
            max_inflight: 100,
        },
        encoding,
        rate: 50.0,
        duration: None,
        count,
        time_scale: 3_600.0,
        seed: 7,
        first_seq: 1,
        labels_csv: labels,
        drain_timeout: Duration::from_secs(5),
        lifecycle: LifecycleParams::default(),
        progress_every: Duration::from_secs(60),
    }
}

/// Subscribes to every telemetry topic; returns once the subscription is likely in place.
fn subscribe(url: &str, name: &str) -> (Consumer, mpsc::Receiver<Delivery>) {
    let (tx, rx) = mpsc::channel();
    let consumer = Consumer::start(
        &settings(url, name),
        "aurum/v1/+/+/telemetry".into(),
        move |d| {
            let _ = tx.send(d);
        },
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !consumer.is_connected() {
        assert!(Instant::now() < deadline, "subscriber did not connect");
        std::thread::sleep(Duration::from_millis(20));
    }
    // The subscribe request is sent from the connected callback without waiting for SUBACK.
    std::thread::sleep(Duration::from_millis(500));
    (consumer, rx)
}

fn collect(rx: &mpsc::Receiver<Delivery>, n: usize) -> Vec<Delivery> {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut out = Vec::new();
    while out.len() < n {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(d) => out.push(d),
            Err(_) => break,
        }
    }
    out
}

async fn publishes_decodable_messages_in_order(encoding: Encoding) {
    let broker = Broker::start();
    let (consumer, rx) = subscribe(
        &broker.url(),
        &format!("sub-{:?}-{}", encoding, std::process::id()),
    );
    let dir = tempfile::tempdir().unwrap();
    let labels = dir.path().join("labels.csv");

    let count = 20u64;
    let summary = run(
        config(&broker.url(), encoding, Some(count), Some(labels.clone())),
        std::future::pending(),
    )
    .await
    .unwrap();
    assert_eq!(summary.published, 3 * count);
    assert_eq!(summary.acked, 3 * count);
    assert_eq!(summary.failed, 0);

    let deliveries = tokio::task::spawn_blocking(move || collect(&rx, 60))
        .await
        .unwrap();
    assert_eq!(deliveries.len(), 60, "broker log: {}", broker.log());
    let mut seqs: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    for d in &deliveries {
        let (tenant, machine) = parse_telemetry_topic(&d.topic).unwrap();
        assert_eq!(tenant, "demo");
        assert_eq!(d.content_type.as_deref(), Some(encoding.mime()));
        let message = decode_message(encoding, &d.payload).unwrap();
        assert_eq!(message.machine_id.as_str(), machine);
        assert_eq!(message.readings.len(), 7);
        seqs.entry(machine.to_owned())
            .or_default()
            .push(message.seq.get());
    }
    let expected: Vec<u64> = (1..=count).collect();
    assert_eq!(
        seqs.keys().cloned().collect::<Vec<_>>(),
        ["BOILER-7", "MILL-3", "TRUCK-21"]
    );
    for (machine, s) in &seqs {
        assert_eq!(
            s, &expected,
            "{machine}: seq starts at 1 and arrives in order"
        );
    }

    let labels = std::fs::read_to_string(labels).unwrap();
    let mut lines = labels.lines();
    assert_eq!(
        lines.next(),
        Some("machine_id,seq,ts,run_id,phase,time_to_failure_h")
    );
    assert_eq!(lines.count(), 60);

    consumer.disconnect().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn json_messages_reach_the_broker_in_order() {
    publishes_decodable_messages_in_order(Encoding::Json).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protobuf_messages_reach_the_broker_in_order() {
    publishes_decodable_messages_in_order(Encoding::Protobuf).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_request_drains_and_reports_everything_acknowledged() {
    let broker = Broker::start();
    let stop = tokio::time::sleep(Duration::from_millis(800));
    let summary = run(config(&broker.url(), Encoding::Json, None, None), stop)
        .await
        .unwrap();
    assert!(summary.published >= 3, "{summary:?}");
    assert_eq!(summary.acked, summary.published);
    assert_eq!(summary.failed, 0);
    assert!(summary.elapsed_s >= 0.8);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_broker_is_an_error() {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let url = format!("mqtt://127.0.0.1:{port}");
    assert!(run(
        config(&url, Encoding::Json, Some(1), None),
        std::future::pending()
    )
    .await
    .is_err());
}

#[test]
fn the_binary_runs_against_the_broker_and_prints_a_summary() {
    let broker = Broker::start();
    let out = Command::new(env!("CARGO_BIN_EXE_aurum-sim"))
        .args([
            "run",
            "--machines",
            "30",
            "--rate",
            "20",
            "--count",
            "10",
            "--max-inflight",
            "200",
        ])
        .args(["--mqtt-url", &broker.url(), "--seed", "1"])
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(summary["published"], 300);
    assert_eq!(summary["acked"], 300);
    assert_eq!(summary["failed"], 0);
    assert!(summary["elapsed_s"].as_f64().unwrap() > 0.0);
    assert!(summary["rate_msgs_per_s"].as_f64().unwrap() > 0.0);
}
