//! ESG over HTTP: activity from feature batches priced with versioned factors into scope 1 and
//! scope 2 CO2e per machine, site and tenant; reports reproducible after a factor change.

use aurum_domain::MachineType;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::{json, Value};

use crate::helpers::{sample, spawn_app, vector, TestApp, TENANT};

fn ts(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// Posts one machine's activity for `[from, to)`.
async fn activity(
    app: &TestApp,
    machine: &str,
    t: MachineType,
    records: &[(&str, f64)],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) {
    let mut v = vector(machine, t, &sample(t, false, to));
    v["activity"] = records
        .iter()
        .map(|(metric, amount)| json!({"metric": metric, "from": from, "to": to, "amount": amount}))
        .collect();
    let r = app.post_features(vec![v]).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
}

async fn put_region(app: &TestApp, site: &str, region: &str) {
    let r = app
        .client
        .put(app.url(&format!("/v1/esg/sites/{site}/region")))
        .header("x-aurum-tenant", TENANT)
        .json(&json!({ "grid_region": region }))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "{}", r.text().await.unwrap());
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-6 * b.abs().max(1.0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scope_1_and_2_per_site_with_carbon_intensity() {
    let app = spawn_app().await;
    put_region(&app, "pit-a", "US").await;
    let to = Utc::now() - TimeDelta::hours(3);
    let from = to - TimeDelta::hours(1);
    activity(
        &app,
        "TRUCK-1",
        MachineType::HaulTruck,
        &[("fuel_rate_lh", 100.0)],
        from,
        to,
    )
    .await;
    activity(
        &app,
        "MILL-1",
        MachineType::GrindingMill,
        &[("power_kw", 1_000.0), ("throughput_tph", 500.0)],
        from,
        to,
    )
    .await;
    let q = format!(
        "/v1/esg/summary?from={}&to={}",
        ts(from - TimeDelta::hours(1)),
        ts(to + TimeDelta::hours(1))
    );
    let r = app.get(&q).await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let t = &body["totals"];
    // 100 L diesel x 2.69627 kg/L (EPA, global); 1,000 kWh x 0.39009 kg/kWh (EIA, US grid).
    assert!(
        close(t["scope1_kg_co2e"].as_f64().unwrap(), 269.627),
        "{body}"
    );
    assert!(
        close(t["scope2_kg_co2e"].as_f64().unwrap(), 390.09),
        "{body}"
    );
    assert!(
        close(t["total_kg_co2e"].as_f64().unwrap(), 659.717),
        "{body}"
    );
    assert!(close(t["production_t"].as_f64().unwrap(), 500.0), "{body}");
    assert!(
        close(
            t["intensity_kg_co2e_per_t"].as_f64().unwrap(),
            659.717 / 500.0
        ),
        "{body}"
    );
    assert_eq!(body["machines"].as_array().unwrap().len(), 2);
    // Another tenant has none of it.
    let other: Value = app.get_as("other", &q).await.json().await.unwrap();
    assert!(
        close(
            other["totals"]["total_kg_co2e"].as_f64().unwrap_or(0.0) + 1.0,
            1.0
        ),
        "{other}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_factor_version_leaves_past_reports_unchanged() {
    let app = spawn_app().await;
    let to = Utc::now() - TimeDelta::hours(2);
    let from = to - TimeDelta::hours(1);
    activity(
        &app,
        "TRUCK-1",
        MachineType::HaulTruck,
        &[("fuel_rate_lh", 50.0)],
        from,
        to,
    )
    .await;
    // The query window holds the whole activity period.
    let q = format!(
        "/v1/esg/machines/TRUCK-1?from={}&to={}",
        ts(from - TimeDelta::hours(1)),
        ts(to + TimeDelta::minutes(30))
    );
    let before: Value = app.get(&q).await.json().await.unwrap();

    let r = app
        .client
        .post(app.url("/v1/esg/factors"))
        .json(&json!({
            "kind": "diesel", "region": "GLOBAL", "kg_co2e_per_unit": 3.1,
            "source": "other", "citation": "test: a revised factor",
            "valid_from": ts(Utc::now()),
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());

    let after: Value = app.get(&q).await.json().await.unwrap();
    assert_eq!(before["totals"], after["totals"]);
    assert!(close(
        after["totals"]["scope1_kg_co2e"].as_f64().unwrap(),
        50.0 * 2.69627
    ));
    // A version that would rewrite the past is refused.
    let r = app
        .client
        .post(app.url("/v1/esg/factors"))
        .json(&json!({
            "kind": "diesel", "region": "GLOBAL", "kg_co2e_per_unit": 1.0,
            "source": "other", "citation": "test", "valid_from": "2000-01-01T00:00:00Z",
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 409);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_csv_report_lists_activity_factor_and_source_per_machine() {
    let app = spawn_app().await;
    let to = Utc::now() - TimeDelta::hours(2);
    let from = to - TimeDelta::hours(1);
    activity(
        &app,
        "BOILER-1",
        MachineType::IndustrialBoiler,
        &[("fuel_rate_lh", 400.0)],
        from,
        to,
    )
    .await;
    let r = app
        .get(&format!(
            "/v1/esg/report.csv?from={}&to={}",
            ts(from - TimeDelta::hours(1)),
            ts(to + TimeDelta::minutes(30))
        ))
        .await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/csv"));
    let text = r.text().await.unwrap();
    let mut lines = text.lines();
    let header = lines.next().unwrap();
    assert!(
        header.contains("machine_id") && header.contains("kg_co2e"),
        "{header}"
    );
    let row = lines
        .find(|l| l.contains("BOILER-1"))
        .expect("a row for the boiler");
    assert!(row.contains("fuel_oil") && row.contains("scope1"), "{row}");
    assert!(row.contains("400"), "{row}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_forecast_covers_the_next_24_hours_from_recent_emissions() {
    let app = spawn_app().await;
    let now = Utc::now();
    for h in 1..=3 {
        let to = now - TimeDelta::hours(24 * h);
        activity(
            &app,
            "TRUCK-1",
            MachineType::HaulTruck,
            &[("fuel_rate_lh", 10.0)],
            to - TimeDelta::hours(1),
            to,
        )
        .await;
    }
    let r = app.get("/v1/esg/forecast").await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    let hours = body["hours"].as_array().unwrap();
    assert_eq!(hours.len(), 24);
    let total: f64 = hours
        .iter()
        .map(|h| h["total_kg_co2e"].as_f64().unwrap())
        .sum();
    assert!(total > 0.0, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn report_periods_are_validated() {
    let app = spawn_app().await;
    for q in [
        "/v1/esg/summary",
        "/v1/esg/summary?from=2026-01-02&to=2026-01-01",
        "/v1/esg/summary?from=2020-01-01&to=2026-01-01",
        "/v1/esg/summary?from=yesterday&to=2026-01-01",
        "/v1/esg/report.csv?from=2026-01-01",
    ] {
        assert_eq!(app.get(q).await.status(), 400, "{q}");
    }
    let r = app
        .get("/v1/esg/machines/NOPE-1?from=2026-01-01&to=2026-01-02")
        .await;
    assert_eq!(r.status(), 404);
}
