//! The fleet view: every machine's latest risk, RUL and open alerts, worst first.

use aurum_domain::MachineType;
use chrono::{TimeDelta, Utc};
use serde_json::Value;

use crate::helpers::{sample, spawn_app, vector};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_fleet_is_listed_worst_first_with_open_alerts() {
    let app = spawn_app().await;
    let t0 = Utc::now() - TimeDelta::hours(3);
    for i in 0..3 {
        let at = t0 + TimeDelta::hours(i);
        app.post_features(vec![
            vector(
                "TRUCK-1",
                MachineType::HaulTruck,
                &sample(MachineType::HaulTruck, false, at),
            ),
            vector(
                "MILL-1",
                MachineType::GrindingMill,
                &sample(MachineType::GrindingMill, true, at),
            ),
            vector(
                "BOILER-1",
                MachineType::IndustrialBoiler,
                &sample(MachineType::IndustrialBoiler, false, at),
            ),
        ])
        .await;
    }
    let r = app.get("/v1/fleet/health").await;
    assert_eq!(r.status(), 200);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["count"], 3);
    assert_eq!(body["model_version"], "fixture-1");
    let machines = body["machines"].as_array().unwrap();
    assert_eq!(machines[0]["machine_id"], "MILL-1");
    assert!(machines[0]["open_alerts"].as_i64().unwrap() >= 1);
    assert!(machines[0]["worst_open_severity"].is_string());
    let risks: Vec<f64> = machines
        .iter()
        .map(|m| m["risk_score"].as_f64().unwrap())
        .collect();
    assert!(risks.windows(2).all(|w| w[0] >= w[1]), "{risks:?}");
    for m in machines {
        assert!(m["rul_hours"].as_f64().is_some());
        assert!(m["top_feature"].is_string());
        assert_eq!(m["site_id"], "pit-a");
    }
    // Another tenant's fleet is empty.
    let other: Value = app
        .get_as("other", "/v1/fleet/health")
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(other["count"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_machine_that_moves_site_is_tracked_once_at_its_new_site() {
    let app = spawn_app().await;
    let t0 = Utc::now() - TimeDelta::hours(2);
    let f = sample(MachineType::HaulTruck, false, t0);
    app.post_features(vec![vector("TRUCK-1", MachineType::HaulTruck, &f)])
        .await;
    let mut moved = vector(
        "TRUCK-1",
        MachineType::HaulTruck,
        &sample(MachineType::HaulTruck, false, t0 + TimeDelta::hours(1)),
    );
    moved["site_id"] = "pit-b".into();
    // The same machine twice in one batch, and a new one: one row each.
    let r = app
        .post_features(vec![
            moved.clone(),
            moved,
            vector("TRUCK-2", MachineType::HaulTruck, &f),
        ])
        .await;
    assert_eq!(r.status(), 200);
    let body: Value = app.get("/v1/fleet/health").await.json().await.unwrap();
    assert_eq!(body["count"], 2, "{body}");
    let truck = body["machines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["machine_id"] == "TRUCK-1")
        .unwrap();
    assert_eq!(truck["site_id"], "pit-b");
}
