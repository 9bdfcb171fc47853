use chrono::{DurationRound, TimeDelta, Utc};
use serde_json::{json, Value};

use crate::helpers::{message, spawn_app, TENANT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_is_stored_with_a_result_per_message() {
    let app = spawn_app().await;
    app.register("TRUCK-21", "haul_truck").await;
    let now = Utc::now();
    let body = json!({ "messages": [
        message("TRUCK-21", 1, now, json!({"rpm": 1650.0, "vibration": 3.1})),
        message("TRUCK-21", 2, now, json!({"rpm": 1700.0, "vibration": 999.0, "warp_drive": 1.0})),
        message("GHOST-1", 1, now, json!({"rpm": 1.0})),
        {"machine_id": "TRUCK-21", "seq": "three"},
    ]});
    let r = app.post_batch(&body).await;
    assert_eq!(r.status(), 200);
    let b: Value = r.json().await.unwrap();
    let statuses: Vec<_> = b["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["status"].clone())
        .collect();
    assert_eq!(
        statuses,
        vec!["stored", "partially_stored", "rejected", "rejected"]
    );
    assert_eq!(b["accepted"], 2);
    assert_eq!(b["rejected"], 2);
    let reasons: Vec<_> = b["results"][1]["rejections"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["reason"].as_str().unwrap().to_owned())
        .collect();
    assert!(reasons.contains(&"implausible_value".to_owned()));
    assert!(reasons.contains(&"unknown_metric".to_owned()));
    assert_eq!(
        b["results"][2]["rejections"][0]["reason"],
        "unknown_machine"
    );
    assert_eq!(
        b["results"][3]["rejections"][0]["reason"],
        "malformed_payload"
    );

    assert_eq!(app.telemetry_rows().await, 2);
    let mut q = app.quarantine_reasons().await;
    q.sort();
    assert_eq!(
        q,
        vec![
            "implausible_value",
            "malformed_payload",
            "unknown_machine",
            "unknown_metric"
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retried_batch_never_duplicates_a_row() {
    let app = spawn_app().await;
    app.register("MILL-3", "grinding_mill").await;
    let now = Utc::now();
    let body = json!({ "messages": [
        message("MILL-3", 10, now, json!({"rpm": 12.0})),
        message("MILL-3", 11, now, json!({"rpm": 12.5})),
    ]});
    assert_eq!(app.post_batch(&body).await.status(), 200);
    let b: Value = app.post_batch(&body).await.json().await.unwrap();
    assert_eq!(b["duplicates"], 2);
    assert_eq!(b["results"][0]["status"], "duplicate");
    assert_eq!(app.telemetry_rows().await, 2);
    // Quarantine is idempotent too.
    let bad = json!({ "messages": [ message("MILL-3", 12, now, json!({"rpm": -5.0})) ]});
    app.post_batch(&bad).await;
    app.post_batch(&bad).await;
    assert_eq!(app.quarantine_reasons().await, vec!["implausible_value"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversized_bodies_get_problem_responses() {
    let app = spawn_app().await;
    for body in ["not json", "{\"messages\": 3}", "{}", "[]"] {
        let r = app
            .client
            .post(app.url("/v1/telemetry"))
            .header("X-Aurum-Tenant", TENANT)
            .header("Content-Type", "application/json")
            .header("X-Request-ID", "bad-body-1")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 400, "{body}");
        assert_eq!(r.headers()["content-type"], "application/problem+json");
        let p: Value = r.json().await.unwrap();
        assert_eq!(p["request_id"], "bad-body-1");
    }
    let huge = format!("{{\"messages\": [\"{}\"]}}", "x".repeat(2 * 1024 * 1024));
    let r = app
        .client
        .post(app.url("/v1/telemetry"))
        .header("X-Aurum-Tenant", TENANT)
        .header("Content-Type", "application/json")
        .body(huge)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
    let r = app
        .client
        .post(app.url("/v1/telemetry"))
        .header("X-Aurum-Tenant", TENANT)
        .header("Content-Type", "text/csv")
        .body("a,b")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 415);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn protobuf_batches_are_accepted() {
    let app = spawn_app().await;
    app.register("BOILER-7", "industrial_boiler").await;
    let metrics = [("steam_pressure_bar", 42.0), ("co2_ppm", 95_000.0)];
    let msgs = [aurum_proto::OutgoingMessage {
        machine_id: "BOILER-7",
        seq: 1,
        ts: Utc::now(),
        metrics: &metrics,
    }];
    let body = aurum_proto::encode_batch(aurum_proto::Encoding::Protobuf, &msgs);
    let r = app
        .client
        .post(app.url("/v1/telemetry"))
        .header("X-Aurum-Tenant", TENANT)
        .header("Content-Type", "application/x-protobuf")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["results"][0]["status"], "stored");
    assert_eq!(app.telemetry_rows().await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_reads_back_downsampled_into_buckets() {
    let app = spawn_app().await;
    app.register("TRUCK-21", "haul_truck").await;
    let base = Utc::now().duration_trunc(TimeDelta::minutes(1)).unwrap() - TimeDelta::minutes(10);
    // Two minutes, three readings each: 1,2,3 then 10,20,30.
    let mut msgs = Vec::new();
    for (i, v) in [1.0, 2.0, 3.0, 10.0, 20.0, 30.0].iter().enumerate() {
        let ts = base
            + TimeDelta::seconds(if i < 3 {
                i as i64 * 10
            } else {
                60 + i as i64 * 10
            });
        msgs.push(message(
            "TRUCK-21",
            i as u64 + 1,
            ts,
            json!({ "vibration": v }),
        ));
    }
    app.post_batch(&json!({ "messages": msgs })).await;
    let r = app
        .client
        .get(app.url("/v1/machines/TRUCK-21/telemetry"))
        .header("X-Aurum-Tenant", TENANT)
        .query(&[
            ("metric", "vibration"),
            ("step", "1m"),
            ("from", &base.to_rfc3339()),
            ("to", &(base + TimeDelta::minutes(5)).to_rfc3339()),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let b: Value = r.json().await.unwrap();
    assert_eq!(b["unit"], "mm/s");
    let buckets = b["buckets"].as_array().unwrap();
    assert_eq!(buckets.len(), 2, "{b}");
    assert_eq!(buckets[0]["avg"], 2.0);
    assert_eq!(buckets[0]["min"], 1.0);
    assert_eq!(buckets[0]["max"], 3.0);
    assert_eq!(buckets[0]["count"], 3);
    assert_eq!(buckets[1]["avg"], 20.0);
    assert_eq!(buckets[1]["count"], 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_downsampling_queries_are_refused() {
    let app = spawn_app().await;
    app.register("TRUCK-21", "haul_truck").await;
    let get = |q: &'static str| {
        let c = app.client.clone();
        let url = app.url(&format!("/v1/machines/TRUCK-21/telemetry?{q}"));
        async move {
            c.get(url)
                .header("X-Aurum-Tenant", TENANT)
                .send()
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(get("step=1m").await, 400, "metric is required");
    assert_eq!(
        get("metric=steam_pressure_bar").await,
        400,
        "not a truck metric"
    );
    assert_eq!(get("metric=rpm&step=1x").await, 400);
    assert_eq!(
        get("metric=rpm&step=1s&from=2020-01-01T00:00:00Z").await,
        400,
        "too many buckets"
    );
    assert_eq!(get("metric=rpm&from=yesterday").await, 400);
    let r = app
        .client
        .get(app.url("/v1/machines/NOPE/telemetry?metric=rpm"))
        .header("X-Aurum-Tenant", TENANT)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
}
