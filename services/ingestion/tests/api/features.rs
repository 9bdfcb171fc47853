//! Feature streaming to the prediction service, against a real HTTP receiver started by the
//! test (it records what it receives; it does not stand in for any code under test).

use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use aurum_ingestion::IngestionConfig;
use aurum_mqtt::telemetry_topic;
use aurum_proto::features::{FeatureBatch, MachineFeatures};
use aurum_testkit::eventually;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde_json::{json, Value};

use crate::helpers::{message, publish_until_acked, spawn_app_with, TestApp, TENANT};

/// What the receiver does with each request.
#[derive(Debug, Clone, Copy)]
enum Behaviour {
    Accept,
    Sleep(Duration),
    Status(u16),
}

#[derive(Debug, Clone)]
struct Received {
    traceparent: Option<String>,
    request_id: Option<String>,
    content_type: Option<String>,
    batch: FeatureBatch,
}

/// A small HTTP server on a random port that records the feature batches posted to it.
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
    requests: Arc<Mutex<usize>>,
}

impl Receiver {
    fn start(behaviour: Behaviour) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let received = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(Mutex::new(0));
        let (r, n) = (Arc::clone(&received), Arc::clone(&requests));
        let server = HttpServer::new(move || {
            let (r, n) = (Arc::clone(&r), Arc::clone(&n));
            App::new()
                .app_data(web::PayloadConfig::new(64 * 1024 * 1024))
                .route(
                    "/v1/features",
                    web::post().to(move |req: HttpRequest, body: web::Bytes| {
                        let (r, n) = (Arc::clone(&r), Arc::clone(&n));
                        async move { record(req, body, behaviour, &r, &n).await }
                    }),
                )
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
        tokio::spawn(server);
        Self {
            url,
            received,
            requests,
        }
    }

    fn received(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    fn requests(&self) -> usize {
        *self.requests.lock().unwrap()
    }

    /// Every vector of `machine` received so far, in order.
    fn vectors_of(&self, machine: &str) -> Vec<MachineFeatures> {
        self.received()
            .into_iter()
            .flat_map(|r| r.batch.vectors)
            .filter(|v| v.machine_id.as_str() == machine)
            .collect()
    }

    /// The activity of `metric` of `machine` summed over every batch.
    fn activity_total(&self, machine: &str, metric: &str) -> f64 {
        self.vectors_of(machine)
            .iter()
            .flat_map(|v| &v.activity)
            .filter(|a| a.metric.as_str() == metric)
            .map(|a| a.amount)
            .sum()
    }

    /// The sample count of `metric` in `machine`'s latest vector.
    fn latest_count(&self, machine: &str, metric: &str) -> Option<u32> {
        self.vectors_of(machine).last().and_then(|v| {
            v.features
                .metrics
                .iter()
                .find(|(m, _)| m.as_str() == metric)
                .map(|(_, f)| f.stats.count)
        })
    }
}

async fn record(
    req: HttpRequest,
    body: web::Bytes,
    behaviour: Behaviour,
    received: &Mutex<Vec<Received>>,
    requests: &Mutex<usize>,
) -> HttpResponse {
    *requests.lock().unwrap() += 1;
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    match behaviour {
        Behaviour::Accept => {}
        Behaviour::Sleep(d) => {
            tokio::time::sleep(d).await;
            return HttpResponse::Accepted().finish();
        }
        Behaviour::Status(code) => {
            return HttpResponse::build(actix_web::http::StatusCode::from_u16(code).unwrap())
                .finish()
        }
    }
    // The wire contract, strictly: unknown fields are refused.
    let batch: FeatureBatch = match serde_json::from_slice(&body) {
        Ok(b) => b,
        Err(e) => return HttpResponse::BadRequest().body(e.to_string()),
    };
    received.lock().unwrap().push(Received {
        traceparent: header("traceparent"),
        request_id: header("x-request-id"),
        content_type: header("content-type"),
        batch,
    });
    HttpResponse::Accepted().finish()
}

/// Streaming to `url` every second, with short timeouts so failures show quickly.
fn streaming_to(url: &str) -> impl FnOnce(&mut IngestionConfig) {
    let url = url.to_owned();
    move |c| {
        c.features.prediction_url = url;
        c.features.interval_s = 1;
        c.features.request_timeout_ms = 500;
        c.features.max_retries = 1;
        c.features.retry_backoff_ms = 50;
    }
}

/// `n` messages of `machine` every `step_s` seconds from `start`, seqs from `first_seq`.
fn series(
    machine: &str,
    first_seq: u64,
    start: DateTime<Utc>,
    step_s: i64,
    n: usize,
    metrics: impl Fn(usize) -> Value,
) -> Vec<Value> {
    (0..n)
        .map(|i| {
            message(
                machine,
                first_seq + i as u64,
                start + TimeDelta::seconds(step_s * i as i64),
                metrics(i),
            )
        })
        .collect()
}

/// A start time such that `span_s` seconds of data end a little before now.
fn start_before_now(span_s: i64) -> DateTime<Utc> {
    Utc::now().duration_trunc(TimeDelta::seconds(1)).unwrap() - TimeDelta::seconds(span_s + 5)
}

fn close(a: f64, b: f64, tolerance: f64) -> bool {
    (a - b).abs() <= tolerance
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_telemetry_reaches_prediction_as_feature_batches() {
    let receiver = Receiver::start(Behaviour::Accept);
    let app = spawn_app_with(false, streaming_to(&receiver.url)).await;
    assert_eq!(app.register("TRUCK-7", "haul_truck").await.status(), 201);
    // One registered without a site.
    let r = app
        .client
        .post(app.url("/v1/machines"))
        .header("X-Aurum-Tenant", TENANT)
        .json(&json!({ "id": "TRUCK-8", "machine_type": "haul_truck" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    // An hour of a haul truck burning 100 L/h, one message every 30 s: 121 messages.
    let start = start_before_now(3_600);
    let messages = series("TRUCK-7", 1, start, 30, 121, |i| {
        json!({
            "fuel_rate_lh": 100.0,
            "rpm": if i % 2 == 0 { 1_500.0 } else { 1_700.0 },
            "temperature": 80.0,
        })
    });
    let r = app.post_batch(&json!({ "messages": messages })).await;
    assert_eq!(r.status(), 200);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["accepted"], 121);
    let siteless = series("TRUCK-8", 1, start, 60, 3, |_| json!({ "rpm": 900.0 }));
    let r = app.post_batch(&json!({ "messages": siteless })).await;
    assert_eq!(r.status(), 200);

    assert!(
        eventually(Duration::from_secs(20), || async {
            receiver.latest_count("TRUCK-8", "rpm") == Some(3)
                && receiver.latest_count("TRUCK-7", "rpm") == Some(121)
                && close(
                    receiver.activity_total("TRUCK-7", "fuel_rate_lh"),
                    100.0,
                    1e-6,
                )
        })
        .await,
        "received: {:?}",
        receiver.received()
    );

    let vectors = receiver.vectors_of("TRUCK-7");
    let last = vectors.last().unwrap();
    assert_eq!(last.tenant_id.as_str(), TENANT);
    assert_eq!(last.machine_type.as_str(), "haul_truck");
    // The site comes from the machine's registration.
    assert!(
        vectors
            .iter()
            .all(|v| v.site_id.as_ref().map(|s| s.as_str()) == Some("pit-north")),
        "{vectors:?}"
    );
    assert!(receiver
        .vectors_of("TRUCK-8")
        .iter()
        .all(|v| v.site_id.is_none()));
    assert_eq!(last.features.window_end, start + TimeDelta::seconds(3_600));
    let rpm = last
        .features
        .metrics
        .iter()
        .find(|(m, _)| m.as_str() == "rpm")
        .map(|(_, f)| f.stats.clone())
        .unwrap();
    // 61 samples at 1500 and 60 at 1700.
    assert!(
        close(rpm.mean, (61.0 * 1_500.0 + 60.0 * 1_700.0) / 121.0, 1e-9),
        "{rpm:?}"
    );
    assert_eq!((rpm.min, rpm.max), (1_500.0, 1_700.0));

    // The activity periods tile the hour exactly once.
    let mut periods: Vec<_> = vectors
        .iter()
        .flat_map(|v| v.activity.iter())
        .filter(|a| a.metric.as_str() == "fuel_rate_lh")
        .map(|a| (a.from, a.to))
        .collect();
    periods.sort();
    assert_eq!(periods.first().unwrap().0, start);
    assert_eq!(periods.last().unwrap().1, start + TimeDelta::seconds(3_600));
    for pair in periods.windows(2) {
        assert_eq!(pair[0].1, pair[1].0);
    }
    // Only rate metrics carry activity.
    assert!(vectors
        .iter()
        .flat_map(|v| &v.activity)
        .all(|a| a.metric.as_str() == "fuel_rate_lh"));

    for r in receiver.received() {
        let tp = r.traceparent.expect("a traceparent header");
        let parts: Vec<&str> = tp.split('-').collect();
        assert_eq!(parts.len(), 4, "{tp}");
        assert_eq!(parts[0], "00", "{tp}");
        assert!(
            parts[1].len() == 32
                && parts[1].bytes().all(|b| b.is_ascii_hexdigit())
                && parts[1] != "0".repeat(32),
            "invalid trace id in {tp}"
        );
        assert!(parts[2].len() == 16 && parts[2] != "0".repeat(16), "{tp}");
        assert!(r.request_id.is_some_and(|id| !id.is_empty()));
        assert_eq!(r.content_type.as_deref(), Some("application/json"));
        assert!(r.batch.vectors.len() <= FeatureBatch::MAX_VECTORS);
    }
    // The sender counts a batch once it has read the answer, just after the receiver has it.
    assert!(
        eventually(Duration::from_secs(5), || async {
            app.metric("aurum_features_vectors_sent_total").await >= 1.0
                && app.metric("aurum_features_batches_sent_total").await >= 1.0
        })
        .await
    );
    assert_eq!(app.metric("aurum_features_batches_failed_total").await, 0.0);
}

/// Posts `batches` requests of 10 messages, ~250 ms apart, and returns the slowest answer.
async fn post_steadily(app: &TestApp, machine: &str, batches: u64) -> Duration {
    let start = start_before_now(600);
    let mut slowest = Duration::ZERO;
    for b in 0..batches {
        let messages = series(
            machine,
            b * 10 + 1,
            start + TimeDelta::seconds(b as i64 * 10),
            1,
            10,
            |_| json!({ "fuel_rate_lh": 50.0, "rpm": 1_600.0 }),
        );
        let t = Instant::now();
        let r = app.post_batch(&json!({ "messages": messages })).await;
        slowest = slowest.max(t.elapsed());
        assert_eq!(r.status(), 200);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["accepted"], 10, "{body}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    slowest
}

/// Whatever the prediction service does, ingestion answers promptly, stores every message,
/// and counts the batches it could not deliver.
async fn ingestion_is_unaffected_by(url: &str) -> (TestApp, Duration) {
    let app = spawn_app_with(false, streaming_to(url)).await;
    assert_eq!(app.register("TRUCK-9", "haul_truck").await.status(), 201);
    let slowest = post_steadily(&app, "TRUCK-9", 16).await;
    assert!(
        slowest < Duration::from_secs(2),
        "POST /v1/telemetry took {slowest:?}"
    );
    assert_eq!(app.telemetry_rows().await, 160);
    assert!(
        eventually(Duration::from_secs(20), || async {
            app.metric("aurum_features_batches_failed_total").await >= 1.0
                && app
                    .metric(r#"aurum_features_dropped_total{reason="send_failed"}"#)
                    .await
                    >= 1.0
        })
        .await,
        "no failed batch counted"
    );
    assert_eq!(app.metric("aurum_features_batches_sent_total").await, 0.0);
    (app, slowest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prediction_service_that_hangs_does_not_slow_ingestion() {
    let receiver = Receiver::start(Behaviour::Sleep(Duration::from_secs(10)));
    let (app, _) = ingestion_is_unaffected_by(&receiver.url).await;
    assert!(receiver.requests() >= 1);
    // Timed out requests are retried once each.
    assert!(app.metric("aurum_features_send_retries_total").await >= 1.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_prediction_service_answering_503_does_not_break_ingestion() {
    let receiver = Receiver::start(Behaviour::Status(503));
    let (app, _) = ingestion_is_unaffected_by(&receiver.url).await;
    // Each batch is tried twice (one retry) before it is dropped.
    let failed = app.metric("aurum_features_batches_failed_total").await;
    assert!(
        receiver.requests() as f64 >= 2.0 * failed,
        "{} requests, {failed} failed",
        receiver.requests()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absent_prediction_service_does_not_break_ingestion() {
    // A port nobody listens on: connections are refused.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    ingestion_is_unaffected_by(&format!("http://127.0.0.1:{port}")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_feature_queue_drops_features_not_telemetry() {
    let receiver = Receiver::start(Behaviour::Accept);
    let url = receiver.url.clone();
    let app = spawn_app_with(false, move |c| {
        streaming_to(&url)(c);
        c.features.queue_capacity = 1;
    })
    .await;
    assert_eq!(app.register("TRUCK-5", "haul_truck").await.status(), 201);
    let messages = series(
        "TRUCK-5",
        1,
        start_before_now(2_000),
        1,
        2_000,
        |_| json!({ "rpm": 1_600.0 }),
    );
    let t = Instant::now();
    let r = app.post_batch(&json!({ "messages": messages })).await;
    assert_eq!(r.status(), 200);
    assert!(t.elapsed() < Duration::from_secs(5), "{:?}", t.elapsed());
    assert_eq!(app.telemetry_rows().await, 2_000);
    assert!(
        app.metric(r#"aurum_features_dropped_total{reason="queue_full"}"#)
            .await
            >= 1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_message_posted_twice_counts_once_in_features_and_activity() {
    let receiver = Receiver::start(Behaviour::Accept);
    let app = spawn_app_with(false, streaming_to(&receiver.url)).await;
    assert_eq!(app.register("TRUCK-2", "haul_truck").await.status(), 201);

    // Half an hour at 100 L/h, one message a minute: 50 L.
    let start = start_before_now(1_860);
    let messages = series(
        "TRUCK-2",
        1,
        start,
        60,
        31,
        |_| json!({ "fuel_rate_lh": 100.0, "rpm": 1_600.0 }),
    );
    let body = json!({ "messages": messages });
    assert_eq!(app.post_batch(&body).await.status(), 200);
    let again: Value = app.post_batch(&body).await.json().await.unwrap();
    assert_eq!(again["duplicates"], 31);
    // One new message a minute later, after the duplicates: once it shows, they have been
    // through the pipeline too.
    let last = message(
        "TRUCK-2",
        32,
        start + TimeDelta::seconds(31 * 60),
        json!({ "fuel_rate_lh": 100.0, "rpm": 1_600.0 }),
    );
    assert_eq!(
        app.post_batch(&json!({ "messages": [last] }))
            .await
            .status(),
        200
    );
    assert!(
        eventually(Duration::from_secs(20), || async {
            receiver.latest_count("TRUCK-2", "rpm") == Some(32)
        })
        .await,
        "received: {:?}",
        receiver.received()
    );
    let litres = receiver.activity_total("TRUCK-2", "fuel_rate_lh");
    assert!(close(litres, 100.0 * 31.0 / 60.0, 1e-6), "{litres} L");
    assert_eq!(app.telemetry_rows().await, 32);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mqtt_redelivery_counts_once_in_features_and_activity() {
    let receiver = Receiver::start(Behaviour::Accept);
    let app = spawn_app_with(true, streaming_to(&receiver.url)).await;
    assert_eq!(app.register("TRUCK-3", "haul_truck").await.status(), 201);
    let p = app.publisher().await;
    let topic = telemetry_topic(TENANT, "TRUCK-3");

    // Twenty minutes at 60 L/h, one message a minute, each published twice: 20 L.
    let start = start_before_now(1_200);
    let messages = series(
        "TRUCK-3",
        1,
        start,
        60,
        21,
        |_| json!({ "fuel_rate_lh": 60.0, "rpm": 1_600.0 }),
    );
    for m in messages.iter().chain(messages.iter()) {
        publish_until_acked(&p, &topic, m.to_string().into_bytes()).await;
    }
    assert!(
        eventually(Duration::from_secs(20), || async {
            app.telemetry_rows().await == 21
                && app.metric("aurum_ingest_messages_duplicate_total").await >= 21.0
        })
        .await,
        "rows: {}",
        app.telemetry_rows().await
    );
    assert!(
        eventually(Duration::from_secs(20), || async {
            receiver.latest_count("TRUCK-3", "rpm") == Some(21)
                && close(
                    receiver.activity_total("TRUCK-3", "fuel_rate_lh"),
                    20.0,
                    1e-6,
                )
        })
        .await,
        "received: {:?}",
        receiver.received()
    );
    // A few more intervals: the duplicates never add anything.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(receiver.latest_count("TRUCK-3", "rpm"), Some(21));
    let litres = receiver.activity_total("TRUCK-3", "fuel_rate_lh");
    assert!(close(litres, 20.0, 1e-6), "{litres} L");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_sends_the_features_of_what_was_committed_in_a_last_batch() {
    let receiver = Receiver::start(Behaviour::Accept);
    let db = aurum_testkit::TestDb::create().await;
    let broker = aurum_testkit::Broker::start();
    aurum_postgres::ingestion::migrate(&db.settings("aurumai_ingestion"))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = aurum_testkit::free_port();
    let log_path = dir.path().join("service.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = crate::service::service_command(
        &db,
        &broker,
        &dir.path().join("spool"),
        port,
        &format!("ingestion-{}", db.name),
    )
    .env("AURUM_FEATURES__PREDICTION_URL", &receiver.url)
    // No periodic batch within the test: only the one sent at shutdown.
    .env("AURUM_FEATURES__INTERVAL_S", "3600")
    .env("AURUM_TELEMETRY__LOG_FORMAT", "json")
    .stdout(log.try_clone().unwrap())
    .stderr(log)
    .stdin(std::process::Stdio::null())
    .spawn()
    .unwrap();
    let log_text = || std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(crate::helpers::ready(port).await, "{}", log_text());

    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{base}/v1/machines"))
        .header("X-Aurum-Tenant", TENANT)
        .json(&json!({ "id": "TRUCK-8", "machine_type": "haul_truck" }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let messages = series(
        "TRUCK-8",
        1,
        start_before_now(600),
        60,
        11,
        |_| json!({ "fuel_rate_lh": 120.0, "rpm": 1_600.0 }),
    );
    let r = client
        .post(format!("{base}/v1/telemetry"))
        .header("X-Aurum-Tenant", TENANT)
        .json(&json!({ "messages": messages }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(receiver.received().is_empty());

    assert!(aurum_testkit::sigterm(child.id()));
    let exit = child.wait().unwrap();
    assert!(exit.success(), "{exit:?}\n{}", log_text());
    assert_eq!(receiver.latest_count("TRUCK-8", "rpm"), Some(11));
    let litres = receiver.activity_total("TRUCK-8", "fuel_rate_lh");
    assert!(close(litres, 20.0, 1e-6), "{litres} L");
}
