//! Telemetry into ingestion, out of prediction: the real ingestion service streams rolling
//! features and activity of what it stored to the real prediction service, which scores them
//! with the active model and accounts the fuel burned.

use std::time::Duration;

use aurum_ingestion::{Application as Ingestion, IngestionConfig};
use aurum_testkit::eventually;
use chrono::{SecondsFormat, TimeDelta, Utc};
use serde_json::{json, Value};

use crate::helpers::{spawn_app, TENANT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn telemetry_posted_to_ingestion_becomes_a_prediction_and_esg_activity() {
    let prediction = spawn_app().await;

    let spool = tempfile::tempdir().unwrap();
    let mut config = IngestionConfig::default();
    config.http.port = 0;
    config.database = prediction.db.settings("aurumai_ingestion");
    config.ingest.mqtt_enabled = false;
    config.ingest.spool_dir = spool.path().to_owned();
    config.ingest.batch_max_wait_ms = 5;
    config.features.prediction_url = prediction.address.clone();
    config.features.interval_s = 1;
    // Ingestion's own schema, as its `migrate` creates it.
    aurum_postgres::ingestion::migrate(&config.database)
        .await
        .unwrap();
    let ingestion = Ingestion::build(config, prometheus::Registry::new())
        .await
        .unwrap();
    let ingestion_url = format!("http://127.0.0.1:{}", ingestion.port());
    tokio::spawn(ingestion.run_until_stopped());
    let client = reqwest::Client::new();
    assert!(aurum_testkit::http_ready(&client, &ingestion_url, Duration::from_secs(20)).await);

    let r = client
        .post(format!("{ingestion_url}/v1/machines"))
        .header("x-aurum-tenant", TENANT)
        .json(&json!({"id": "TRUCK-21", "machine_type": "haul_truck", "site": "pit-a"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    // An hour of a healthy truck, one message a minute, burning 100 L/h.
    let start = Utc::now() - TimeDelta::minutes(61);
    let messages: Vec<Value> = (0..=60)
        .map(|i| {
            json!({
                "machine_id": "TRUCK-21",
                "seq": i + 1,
                "ts": (start + TimeDelta::minutes(i)).to_rfc3339_opts(SecondsFormat::Millis, true),
                "metrics": {
                    "rpm": 1650.0 + (i % 7) as f64,
                    "temperature": 88.0 + (i % 3) as f64 * 0.5,
                    "vibration": 2.8 + (i % 5) as f64 * 0.05,
                    "fuel_rate_lh": 100.0,
                    "speed_kmh": 32.0 + (i % 4) as f64,
                    "load_tons": if i % 20 < 10 { 220.0 } else { 0.0 },
                    "oil_pressure": 4.2 + (i % 3) as f64 * 0.05,
                },
            })
        })
        .collect();
    let r = client
        .post(format!("{ingestion_url}/v1/telemetry"))
        .header("x-aurum-tenant", TENANT)
        .json(&json!({ "messages": messages }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let predictions = || {
        let c = client.clone();
        let url = prediction.url("/v1/machines/TRUCK-21/predictions?from=2000-01-01T00:00:00Z");
        async move {
            let r = c
                .get(&url)
                .header("x-aurum-tenant", TENANT)
                .send()
                .await
                .ok()?;
            let body: Value = r.json().await.ok()?;
            body["predictions"]
                .as_array()
                .filter(|p| !p.is_empty())
                .cloned()
        }
    };
    assert!(
        eventually(Duration::from_secs(30), || async {
            predictions().await.is_some()
        })
        .await,
        "no prediction arrived"
    );
    let p = predictions().await.unwrap();
    assert_eq!(p[0]["model_version"], "fixture-1");

    // The hour of fuel, integrated by ingestion and priced by prediction: 100 L of diesel.
    let esg_url = prediction.url(&format!(
        "/v1/esg/machines/TRUCK-21?from={}&to={}",
        (start - TimeDelta::hours(1)).to_rfc3339_opts(SecondsFormat::Secs, true),
        (Utc::now() + TimeDelta::hours(1)).to_rfc3339_opts(SecondsFormat::Secs, true),
    ));
    let esg: Value = client
        .get(&esg_url)
        .header("x-aurum-tenant", TENANT)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let text = esg.to_string();
    assert!(
        text.contains("\"scope1") || text.contains("scope_1"),
        "{text}"
    );
    let fleet: Value = client
        .get(prediction.url("/v1/fleet/health"))
        .header("x-aurum-tenant", TENANT)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(fleet["machines"][0]["machine_id"], "TRUCK-21");
}
