//! The offline dataset: header, determinism, complete runs.

#![allow(clippy::unwrap_used)] // helpers of tests, not #[test] functions

use aurum_simulator::dataset::{self, DatasetOptions};
use aurum_simulator::degradation::LifecycleParams;
use aurum_simulator::fleet::FleetSpec;
use chrono::{DateTime, Utc};

fn options(runs: usize, seed: u64) -> DatasetOptions {
    DatasetOptions {
        runs,
        seed,
        interval_s: 60.0,
        start: DateTime::parse_from_rfc3339("2026-01-01T00:00:00Z")
            .unwrap()
            .with_timezone(&Utc),
        machines: FleetSpec::Seed.machines().unwrap(),
        params: LifecycleParams::default(),
    }
}

fn generate(runs: usize, seed: u64) -> String {
    let mut out = Vec::new();
    let stats = dataset::generate(&options(runs, seed), &mut out).unwrap();
    let text = String::from_utf8(out).unwrap();
    assert_eq!(stats.rows as usize, text.lines().count() - 1);
    assert_eq!(stats.runs, runs);
    text
}

#[test]
fn the_header_has_labels_then_the_union_of_metrics() {
    let text = generate(1, 1);
    assert_eq!(
        text.lines().next().unwrap(),
        "run_id,machine_id,machine_type,seq,ts,phase,time_to_failure_h,\
         rpm,temperature,vibration,fuel_rate_lh,speed_kmh,load_tons,oil_pressure,\
         power_kw,kwh,throughput_tph,pressure,steam_pressure_bar,co2_ppm,o2_percent,steam_flow_m3h"
    );
}

#[test]
fn the_same_seed_gives_the_same_bytes() {
    assert_eq!(generate(7, 99), generate(7, 99));
    assert_ne!(generate(3, 1), generate(3, 2));
}

#[test]
fn every_run_is_complete_and_ends_in_a_failure() {
    let text = generate(9, 5);
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let col = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (run_c, phase_c, ttf_c, type_c, seq_c) = (
        col("run_id"),
        col("phase"),
        col("time_to_failure_h"),
        col("machine_type"),
        col("seq"),
    );
    let mut runs: Vec<(String, Vec<Vec<String>>)> = Vec::new();
    for line in text.lines().skip(1) {
        let fields: Vec<String> = line.split(',').map(str::to_owned).collect();
        assert_eq!(fields.len(), header.len());
        match runs.last_mut() {
            Some((id, rows)) if *id == fields[run_c] => rows.push(fields),
            _ => runs.push((fields[run_c].clone(), vec![fields])),
        }
    }
    assert_eq!(runs.len(), 9);
    let mut ids: Vec<&String> = runs.iter().map(|(id, _)| id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 9, "run ids are unique");
    for (id, rows) in &runs {
        assert_eq!(rows.first().unwrap()[phase_c], "normal", "{id}");
        assert_eq!(rows.last().unwrap()[phase_c], "failure", "{id}");
        assert!(rows.iter().any(|r| r[phase_c] == "drift"), "{id}");
        let ttf: Vec<f64> = rows.iter().map(|r| r[ttf_c].parse().unwrap()).collect();
        assert!(
            ttf.windows(2).all(|w| w[1] <= w[0]),
            "{id}: time to failure never increases"
        );
        assert_eq!(*ttf.last().unwrap(), 0.0);
        let seqs: Vec<u64> = rows.iter().map(|r| r[seq_c].parse().unwrap()).collect();
        assert!(
            seqs.windows(2).all(|w| w[1] == w[0] + 1),
            "{id}: consecutive seqs"
        );
        // A type's own metrics are filled, the others left empty.
        let machine_type: aurum_domain::MachineType = rows[0][type_c].parse().unwrap();
        for (i, name) in header.iter().enumerate().skip(7) {
            let known = machine_type.catalogue().iter().any(|s| s.name == *name);
            assert_eq!(!rows[0][i].is_empty(), known, "{id} {name}");
        }
    }
}

#[test]
fn the_binary_writes_a_dataset_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("runs.csv");
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_aurum-sim"))
        .args([
            "dataset",
            "--runs",
            "3",
            "--seed",
            "8",
            "--interval-s",
            "120",
            "--out",
        ])
        .arg(&out)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let summary: serde_json::Value = serde_json::from_slice(&status.stdout).unwrap();
    assert_eq!(summary["runs"], 3);
    let text = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        summary["rows"].as_u64().unwrap() as usize,
        text.lines().count() - 1
    );
    assert!(text.starts_with("run_id,machine_id,machine_type,seq,ts,phase,time_to_failure_h,"));
}
