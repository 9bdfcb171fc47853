//! `make bench-predict`: issue 3's performance targets measured on this machine.
//!
//! 1. One machine scored in process (`ModelArtifact::score`), per machine type: p50, p99
//!    and max of single calls, in µs.
//! 2. A fleet of 10,000 machines scored (a) in process and (b) end to end: `POST
//!    /v1/features` batches to the service, from the first request to the last response,
//!    every vector scored, stored in PostgreSQL and its alerts evaluated.
//! 3. `GET /v1/fleet/health` over those 10,000 machines: p50, p99 and max of sequential
//!    requests, and the size of the answer.
//!
//! The model is the test fixture's recipe (simulated field lifecycles, `aurum_models::train`),
//! trained once and cached in the target directory, or the artifact at `BENCH_MODEL`. The
//! feature vectors are the held-out simulated runs' vectors. The service runs in this
//! process on a fresh database of its own. Sizes: `BENCH_MACHINES` (10000), `BENCH_SCORE_ITERS`
//! (50000 single scores per machine type), `BENCH_ROUNDS` (5 fleet rounds per batch shape),
//! `BENCH_FLEET_REQUESTS` (200); `BENCH_KEEP_DB=1` keeps the database for a look afterwards.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::hint::black_box;
use std::time::Instant;

use aurum_domain::prediction::ActivityKind;
use aurum_domain::{FeatureVector, MachineType};
use aurum_models::ModelArtifact;
use aurum_prediction::{Application, PredictionConfig};
use aurum_testkit::TestDb;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

#[path = "../tests/support/simulated.rs"]
mod simulated;
use serde_json::{json, Value};

const TENANT: &str = "bench";
/// Bump when the recipe below changes.
const CACHE_FILE: &str = "prediction-bench-v1.json";

fn env_or(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A model and the held-out vectors of each machine type, in emission order (each run's
/// windows one after the other, so consecutive vectors are one machine's consecutive
/// windows).
#[derive(Serialize, Deserialize)]
struct Material {
    model: Vec<u8>,
    samples: Vec<(MachineType, Vec<FeatureVector>)>,
}

impl Material {
    fn of(&self, t: MachineType) -> &[FeatureVector] {
        &self.samples.iter().find(|(ty, _)| *ty == t).unwrap().1
    }
}

fn material() -> Material {
    let given = std::env::var_os("BENCH_MODEL").map(|p| {
        let bytes = std::fs::read(&p).unwrap_or_else(|e| panic!("BENCH_MODEL {p:?}: {e}"));
        ModelArtifact::from_json(&bytes).expect("BENCH_MODEL is not a model artifact");
        bytes
    });
    let mut m = simulated::cached(CACHE_FILE, || {
        let started = Instant::now();
        let (train_set, test_set) = simulated::simulated_runs();
        let samples = MachineType::ALL
            .iter()
            .map(|t| {
                let v: Vec<FeatureVector> = test_set
                    .samples
                    .iter()
                    .filter(|s| s.machine_type == *t)
                    .map(|s| s.features.clone())
                    .collect();
                (*t, v)
            })
            .collect();
        let model = simulated::trained(&train_set, "bench-1").to_json().unwrap();
        eprintln!(
            "simulated and trained in {:.1} s",
            started.elapsed().as_secs_f64()
        );
        Material { model, samples }
    });
    if let Some(bytes) = given {
        m.model = bytes;
    }
    m
}

/// The value at quantile `q` of sorted `xs` (nearest rank).
fn quantile(xs: &[f64], q: f64) -> f64 {
    let rank = ((q * xs.len() as f64).ceil() as usize).clamp(1, xs.len());
    xs[rank - 1]
}

fn sorted(mut xs: Vec<f64>) -> Vec<f64> {
    xs.sort_by(f64::total_cmp);
    xs
}

fn median(xs: &[f64]) -> f64 {
    quantile(&sorted(xs.to_vec()), 0.5)
}

/// A machine of the benchmark fleet: its type and where in its type's held-out vectors its
/// own trajectory starts.
struct Machine {
    id: String,
    machine_type: MachineType,
    start: usize,
}

fn fleet(material: &Material, n: usize) -> Vec<Machine> {
    (0..n)
        .map(|i| {
            let t = MachineType::ALL[i % MachineType::ALL.len()];
            let len = material.of(t).len();
            Machine {
                id: format!("M-{i:05}"),
                machine_type: t,
                // Spread over the whole held-out set: early, drifting and failing windows.
                start: (i / MachineType::ALL.len()).wrapping_mul(7_919) % len,
            }
        })
        .collect()
}

/// Machine `m`'s vector in round `round`: its trajectory's next window, ending at `at`.
fn vector_at(material: &Material, m: &Machine, round: usize, at: DateTime<Utc>) -> FeatureVector {
    let set = material.of(m.machine_type);
    let mut f = set[(m.start + round) % set.len()].clone();
    f.window_end = at;
    f
}

// ---------------------------------------------------------------------------------------
// 1 and 2a: in process

struct Single {
    machine_type: MachineType,
    iterations: usize,
    p50_us: f64,
    p99_us: f64,
    max_us: f64,
}

fn score_single(model: &ModelArtifact, material: &Material, iterations: usize) -> Vec<Single> {
    MachineType::ALL
        .iter()
        .map(|t| {
            let set = material.of(*t);
            for f in set.iter().cycle().take(2_000) {
                black_box(model.score(*t, f).unwrap());
            }
            let mut us = Vec::with_capacity(iterations);
            for f in set.iter().cycle().take(iterations) {
                let start = Instant::now();
                let s = model.score(*t, black_box(f)).unwrap();
                us.push(start.elapsed().as_secs_f64() * 1e6);
                black_box(s);
            }
            let us = sorted(us);
            Single {
                machine_type: *t,
                iterations,
                p50_us: quantile(&us, 0.5),
                p99_us: quantile(&us, 0.99),
                max_us: quantile(&us, 1.0),
            }
        })
        .collect()
}

/// Milliseconds to score every machine once, one thread, per repetition.
fn score_fleet(
    model: &ModelArtifact,
    material: &Material,
    machines: &[Machine],
    repeats: usize,
) -> Vec<f64> {
    let at = Utc::now();
    let vectors: Vec<(MachineType, FeatureVector)> = machines
        .iter()
        .map(|m| (m.machine_type, vector_at(material, m, 0, at)))
        .collect();
    (0..repeats)
        .map(|_| {
            let start = Instant::now();
            for (t, f) in &vectors {
                black_box(model.score(*t, black_box(f)).unwrap());
            }
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect()
}

// ---------------------------------------------------------------------------------------
// 2b and 3: through the service

struct Service {
    address: String,
    db: TestDb,
    client: reqwest::Client,
}

async fn start_service(model: &[u8]) -> Service {
    let db = TestDb::create().await;
    let mut config = PredictionConfig::default();
    config.http.port = 0;
    // Room for FeatureBatch::MAX_VECTORS vectors in one request (the default is 1 MiB).
    config.http.body_limit_bytes = 32 * 1024 * 1024;
    config.database = db.settings("aurumai_prediction");
    config.database.pool_max_size = PredictionConfig::default().database.pool_max_size;
    aurum_postgres::prediction::migrate(&config.database)
        .await
        .expect("migrate");
    let app = Application::build(config, prometheus::Registry::new())
        .await
        .expect("build the service");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    let client = reqwest::Client::new();
    let r = client
        .post(format!("{address}/v1/models"))
        .header("content-type", "application/json")
        .body(model.to_vec())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());
    let version = r.json::<Value>().await.unwrap()["version"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = client
        .post(format!("{address}/v1/models/{version}/activate"))
        .header("x-aurum-user", "bench@bench")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
    Service {
        address,
        db,
        client,
    }
}

/// One fleet round: `requests` concurrent POSTs that together carry every machine's next
/// window. Bodies are encoded before the clock starts.
struct Round {
    requests: usize,
    bodies: Vec<Vec<u8>>,
}

/// Minutes between consecutive rounds' window ends, as `main` spaces them: each round's
/// activity covers the time since the previous round, so no two rounds overlap.
const ROUND_MINUTES: i64 = 10;

/// The activity a machine sends with its vector, as ingestion does: every rate metric its
/// type accounts for ESG (fuel for trucks and boilers, power and ore throughput for mills)
/// integrated over `[window_end - ROUND_MINUTES, window_end)` at the window's mean rate. The
/// end-to-end figure then includes recording it.
fn activity_of(machine_type: MachineType, features: &FeatureVector) -> Vec<Value> {
    let to = features.window_end;
    let from = to - chrono::Duration::minutes(ROUND_MINUTES);
    let hours = ROUND_MINUTES as f64 / 60.0;
    features
        .metrics
        .iter()
        .filter(|(metric, f)| {
            ActivityKind::classify(machine_type, metric.as_str()).is_some()
                && f.stats.mean.is_finite()
        })
        .map(|(metric, f)| {
            json!({
                "metric": metric,
                "from": from,
                "to": to,
                "amount": f.stats.mean.max(0.0) * hours,
            })
        })
        .collect()
}

fn round_bodies(
    material: &Material,
    machines: &[Machine],
    requests: usize,
    round: usize,
    at: DateTime<Utc>,
) -> Round {
    let per = machines.len().div_ceil(requests);
    let bodies = machines
        .chunks(per)
        .map(|chunk| {
            let vectors: Vec<Value> = chunk
                .iter()
                .map(|m| {
                    let features = vector_at(material, m, round, at);
                    json!({
                        "tenant_id": TENANT,
                        "machine_id": m.id,
                        "machine_type": m.machine_type,
                        "site_id": format!("site-{}", m.start % 4),
                        "activity": activity_of(m.machine_type, &features),
                        "features": features,
                    })
                })
                .collect();
            serde_json::to_vec(&json!({ "vectors": vectors })).unwrap()
        })
        .collect();
    Round { requests, bodies }
}

/// Sends the round; milliseconds from the first request to the last response.
async fn send_round(service: &Service, round: Round) -> f64 {
    let url = format!("{}/v1/features", service.address);
    let expected: Vec<usize> = round.bodies.iter().map(Vec::len).collect();
    let start = Instant::now();
    let answers = futures::future::join_all(round.bodies.into_iter().map(|body| {
        service
            .client
            .post(&url)
            .header("content-type", "application/json")
            .body(body)
            .send()
    }))
    .await;
    let mut reports = Vec::with_capacity(answers.len());
    for a in answers {
        let r = a.unwrap();
        let status = r.status();
        let text = r.text().await.unwrap();
        assert_eq!(status, 200, "{text}");
        reports.push(serde_json::from_str::<Value>(&text).unwrap());
    }
    let ms = start.elapsed().as_secs_f64() * 1e3;
    assert_eq!(reports.len(), round.requests.min(expected.len()));
    for r in &reports {
        assert_eq!(r["rejected"].as_array().unwrap().len(), 0, "{r}");
        assert_eq!(r["unscored"], 0, "{r}");
    }
    ms
}

#[derive(Serialize)]
struct Shape {
    requests: usize,
    vectors_per_request: usize,
    body_bytes: usize,
    rounds_ms: Vec<f64>,
    median_ms: f64,
    max_ms: f64,
}

#[derive(Serialize)]
struct FleetHealth {
    requests: usize,
    machines: usize,
    body_bytes: usize,
    p50_ms: f64,
    p99_ms: f64,
    max_ms: f64,
}

async fn fleet_health(service: &Service, requests: usize, machines: usize) -> FleetHealth {
    let url = format!("{}/v1/fleet/health", service.address);
    let get = || async {
        let r = service
            .client
            .get(&url)
            .header("x-aurum-tenant", TENANT)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.bytes().await.unwrap()
    };
    let first = get().await;
    let body: Value = serde_json::from_slice(&first).unwrap();
    assert_eq!(body["count"].as_u64(), Some(machines as u64));
    for _ in 0..5 {
        get().await;
    }
    let mut ms = Vec::with_capacity(requests);
    for _ in 0..requests {
        let start = Instant::now();
        black_box(get().await);
        ms.push(start.elapsed().as_secs_f64() * 1e3);
    }
    let ms = sorted(ms);
    FleetHealth {
        requests,
        machines,
        body_bytes: first.len(),
        p50_ms: quantile(&ms, 0.5),
        p99_ms: quantile(&ms, 0.99),
        max_ms: quantile(&ms, 1.0),
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "pass"
    } else {
        "FAIL"
    }
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else is understood.
    let n = env_or("BENCH_MACHINES", 10_000);
    let iterations = env_or("BENCH_SCORE_ITERS", 50_000);
    let rounds = env_or("BENCH_ROUNDS", 5).max(1);
    let health_requests = env_or("BENCH_FLEET_REQUESTS", 200).max(1);

    let material = material();
    let model = ModelArtifact::from_json(&material.model).unwrap();
    let machines = fleet(&material, n);
    for (t, v) in &material.samples {
        eprintln!("{} held-out vectors of {t}", v.len());
    }

    eprintln!("1. single scores, {iterations} per machine type");
    let single = score_single(&model, &material, iterations);
    eprintln!("2a. {n} machines in process");
    let in_process = score_fleet(&model, &material, &machines, 20);

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let (cold_ms, shapes, health, counts) = runtime.block_on(async {
        let service = start_service(&material.model).await;
        let base = Utc::now() - chrono::Duration::days(30);
        let mut round = 0usize;
        let mut next = |requests: usize| {
            round += 1;
            let at = base + chrono::Duration::minutes(10 * round as i64);
            round_bodies(&material, &machines, requests, round, at)
        };
        eprintln!("2b. {n} machines through the service");
        // The first round tracks 10,000 new machines: reported on its own.
        let cold = send_round(&service, next(2)).await;
        let mut shapes = Vec::new();
        for requests in [2usize, 10, 20] {
            let mut rounds_ms = Vec::with_capacity(rounds);
            let mut body_bytes = 0;
            for _ in 0..rounds {
                let r = next(requests);
                body_bytes = r.bodies.iter().map(Vec::len).max().unwrap_or(0);
                rounds_ms.push(send_round(&service, r).await);
            }
            eprintln!("   {requests} x {}: {rounds_ms:.0?} ms", n.div_ceil(requests));
            shapes.push(Shape {
                requests,
                vectors_per_request: n.div_ceil(requests),
                body_bytes,
                median_ms: median(&rounds_ms),
                max_ms: rounds_ms.iter().copied().fold(0.0, f64::max),
                rounds_ms,
            });
        }
        let client = service.db.client().await;
        let count = |sql: &'static str| {
            let client = &client;
            async move { client.query_one(sql, &[]).await.unwrap().get::<_, i64>(0) }
        };
        let counts = json!({
            "rounds": round,
            "machines": count("SELECT count(*) FROM prediction.machine_status WHERE predicted_at IS NOT NULL").await,
            "predictions": count("SELECT count(*) FROM prediction.predictions").await,
            "alerts_raised": count("SELECT count(*) FROM prediction.alerts").await,
            "alerts_unresolved": count("SELECT count(*) FROM prediction.alerts WHERE state <> 'resolved'").await,
        });
        assert_eq!(counts["machines"], n as i64);
        assert_eq!(counts["predictions"], (n * round) as i64);
        client
            .batch_execute("VACUUM ANALYZE prediction.machine_status, prediction.machines, prediction.alerts")
            .await
            .unwrap();
        eprintln!("3. GET /v1/fleet/health x {health_requests}");
        let health = fleet_health(&service, health_requests, n).await;
        if std::env::var_os("BENCH_KEEP_DB").is_some() {
            eprintln!("database {} kept", service.db.name);
            std::mem::forget(service.db);
        }
        (cold, shapes, health, counts)
    });

    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    println!("| measure | result | target | |");
    println!("|---|---:|---:|---|");
    for s in &single {
        println!(
            "| 1. score one {} in process ({} calls): p50 / p99 / max | {:.1} / {:.1} / {:.1} µs | p99 < 1000 µs | {} |",
            s.machine_type,
            s.iterations,
            s.p50_us,
            s.p99_us,
            s.max_us,
            verdict(s.p99_us < 1_000.0)
        );
    }
    let ip_max = in_process.iter().copied().fold(0.0, f64::max);
    println!(
        "| 2a. score {n} machines in process, one thread (20 repetitions): median / max | {:.1} / {:.1} ms | < 1000 ms | {} |",
        median(&in_process),
        ip_max,
        verdict(ip_max < 1_000.0)
    );
    println!(
        "| 2b. {n} new machines through POST /v1/features, 2 x {} (first round: machines tracked) | {:.0} ms | < 1000 ms | {} |",
        n.div_ceil(2),
        cold_ms,
        verdict(cold_ms < 1_000.0)
    );
    for s in &shapes {
        println!(
            "| 2b. {n} machines through POST /v1/features, {} concurrent x {} vectors ({:.1} MB each), {} rounds: median / max | {:.0} / {:.0} ms | < 1000 ms | {} |",
            s.requests,
            s.vectors_per_request,
            s.body_bytes as f64 / 1e6,
            s.rounds_ms.len(),
            s.median_ms,
            s.max_ms,
            verdict(s.max_ms < 1_000.0)
        );
    }
    println!(
        "| 3. GET /v1/fleet/health, {} machines, {:.1} MB, {} sequential requests: p50 / p99 / max | {:.1} / {:.1} / {:.1} ms | p99 < 100 ms | {} |",
        health.machines,
        health.body_bytes as f64 / 1e6,
        health.requests,
        health.p50_ms,
        health.p99_ms,
        health.max_ms,
        verdict(health.p99_ms < 100.0)
    );
    println!();
    println!(
        "- After the run the database held {} machines' status, {} predictions ({} rounds), {} alerts raised, {} unresolved",
        counts["machines"],
        counts["predictions"],
        counts["rounds"],
        counts["alerts_raised"],
        counts["alerts_unresolved"]
    );
    let summary = json!({
        "cores": cores,
        "model_version": model.version,
        "single": single.iter().map(|s| json!({
            "machine_type": s.machine_type,
            "iterations": s.iterations,
            "p50_us": s.p50_us,
            "p99_us": s.p99_us,
            "max_us": s.max_us,
        })).collect::<Vec<_>>(),
        "fleet_in_process_ms": in_process,
        "fleet_service_cold_ms": cold_ms,
        "fleet_service": shapes,
        "fleet_health": health,
        "database": counts,
    });
    println!();
    println!("```json");
    println!("{}", serde_json::to_string(&summary).unwrap());
    println!("```");
}
