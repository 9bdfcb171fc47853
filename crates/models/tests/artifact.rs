//! Artifacts: round trip, and refusal of damaged or mismatched files.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::OnceLock;

use aurum_domain::MachineType;
use aurum_models::{
    train, FeatureContribution, ForestParams, ModelArtifact, ModelError, ScoreError, TrainOptions,
};

/// One small model shared by the tests of this file (training is the slow part).
fn artifact_bytes() -> &'static [u8] {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    BYTES.get_or_init(|| {
        let data = common::field_dataset(9, 3, 5);
        let small = ForestParams {
            trees: 8,
            max_depth: 6,
            min_samples_leaf: 10,
            split_candidates: None,
            seed: 1,
        };
        let opts = TrainOptions {
            version: "test".into(),
            classifier: small,
            regressor: small,
            depth_candidates: vec![6],
            ..TrainOptions::default()
        };
        train(&data, &opts).unwrap().to_json().unwrap()
    })
}

#[test]
fn an_artifact_round_trips_and_scores_identically() {
    let bytes = artifact_bytes();
    let a = ModelArtifact::from_json(bytes).unwrap();
    let b = ModelArtifact::from_json(&a.to_json().unwrap()).unwrap();
    assert_eq!(a.version, "test");
    assert_eq!(a.horizon_h, 72.0);
    assert_eq!(a.window, b.window);
    assert_eq!(a.machine_types(), MachineType::ALL.to_vec());

    let data = common::field_dataset(3, 3, 99);
    for sample in data
        .samples
        .iter()
        .filter(|s| s.time_to_failure_h > 0.0)
        .take(30)
    {
        let sa = a.score(sample.machine_type, &sample.features).unwrap();
        let sb = b.score(sample.machine_type, &sample.features).unwrap();
        assert_eq!(sa, sb);
        assert!((0.0..=1.0).contains(&sa.failure_probability));
        assert!((0.0..=100.0).contains(&sa.risk_score));
        assert!((0.0..=a.rul_cap_h).contains(&sa.rul_hours));
        assert!((0.0..1.0).contains(&sa.anomaly_score));
        assert!((0.0..=1.0).contains(&sa.confidence));
        assert!(sa.top_features.len() <= 5);
        let total: f64 = sa
            .top_features
            .iter()
            .map(|c: &FeatureContribution| c.weight)
            .sum();
        assert!(total <= 1.0 + 1e-9);
        // Window counts depend on the reporting rate, never an input.
        assert!(sa
            .top_features
            .iter()
            .all(|c| !c.feature.ends_with(".count")));
    }
}

#[test]
fn a_flipped_byte_is_refused() {
    let bytes = artifact_bytes();
    let payload_start = std::str::from_utf8(bytes)
        .unwrap()
        .find("\"payload\":\"")
        .unwrap()
        + 11;
    // Flip a digit inside the payload: still valid JSON, so only the checksum can tell.
    let digit = bytes[payload_start..]
        .iter()
        .position(u8::is_ascii_digit)
        .unwrap()
        + payload_start;
    let mut tampered = bytes.to_vec();
    tampered[digit] = if tampered[digit] == b'9' {
        b'8'
    } else {
        tampered[digit] + 1
    };
    let err = ModelArtifact::from_json(&tampered).unwrap_err();
    assert!(matches!(err, ModelError::ChecksumMismatch { .. }), "{err}");
    assert!(err.to_string().contains("checksum"));

    let mut garbage = bytes.to_vec();
    garbage[0] = b'#';
    assert!(matches!(
        ModelArtifact::from_json(&garbage).unwrap_err(),
        ModelError::Malformed(_)
    ));
}

#[test]
fn a_truncated_file_is_refused() {
    let bytes = artifact_bytes();
    for keep in [0, 10, bytes.len() / 2, bytes.len() - 1] {
        let err = ModelArtifact::from_json(&bytes[..keep]).unwrap_err();
        assert!(matches!(err, ModelError::Malformed(_)), "{keep}: {err}");
    }
}

/// Rewrites the payload with `edit` and a correct checksum, as a careless hand edit would.
fn with_payload(edit: impl Fn(&mut serde_json::Value)) -> Vec<u8> {
    use sha2::Digest;
    let mut envelope: serde_json::Value = serde_json::from_slice(artifact_bytes()).unwrap();
    let mut payload: serde_json::Value =
        serde_json::from_str(envelope["payload"].as_str().unwrap()).unwrap();
    edit(&mut payload);
    let text = serde_json::to_string(&payload).unwrap();
    envelope["payload_sha256"] = hex::encode(sha2::Sha256::digest(text.as_bytes())).into();
    envelope["payload"] = text.into();
    serde_json::to_vec(&envelope).unwrap()
}

#[test]
fn a_schema_that_does_not_match_the_catalogue_is_refused() {
    let bytes = with_payload(|p| {
        let metrics = p["types"][0]["schema"]["metrics"].as_array_mut().unwrap();
        metrics.retain(|m| m != "vibration");
    });
    match ModelArtifact::from_json(&bytes).unwrap_err() {
        ModelError::SchemaMismatch {
            machine_type,
            expected,
            found,
        } => {
            assert_eq!(machine_type, MachineType::HaulTruck);
            assert!(expected.contains(&"vibration.mean".to_owned()));
            assert!(!found.contains(&"vibration.mean".to_owned()));
        }
        other => panic!("expected a schema mismatch, got {other}"),
    }
}

#[test]
fn another_format_version_is_refused() {
    let mut envelope: serde_json::Value = serde_json::from_slice(artifact_bytes()).unwrap();
    envelope["format_version"] = 999.into();
    let err = ModelArtifact::from_json(&serde_json::to_vec(&envelope).unwrap()).unwrap_err();
    assert!(matches!(err, ModelError::UnsupportedFormat { .. }), "{err}");
}

#[test]
fn scoring_errors_are_readable() {
    let a = ModelArtifact::from_json(artifact_bytes()).unwrap();
    let data = common::field_dataset(1, 1, 3);
    let mut sample = data.samples[10].clone();
    assert_eq!(sample.machine_type, MachineType::HaulTruck);
    sample
        .features
        .metrics
        .retain(|m, _| m.as_str() != "oil_pressure");
    let err = a
        .score(MachineType::HaulTruck, &sample.features)
        .unwrap_err();
    assert!(matches!(err, ScoreError::Features(_)));
    assert!(err.to_string().contains("oil_pressure"), "{err}");

    let only_trucks = with_payload(|p| {
        p["types"].as_array_mut().unwrap().truncate(1);
    });
    let trucks = ModelArtifact::from_json(&only_trucks).unwrap();
    let err = trucks
        .score(MachineType::IndustrialBoiler, &sample.features)
        .unwrap_err();
    assert_eq!(
        err,
        ScoreError::UnsupportedMachineType(MachineType::IndustrialBoiler)
    );
    assert!(err.to_string().contains("industrial_boiler"));
}

#[test]
fn scoring_one_machine_is_fast() {
    let a = ModelArtifact::from_json(artifact_bytes()).unwrap();
    let data = common::field_dataset(1, 1, 4);
    let sample = &data.samples[20];
    let started = std::time::Instant::now();
    for _ in 0..100 {
        a.score(sample.machine_type, &sample.features).unwrap();
    }
    // Generous for a debug build on a loaded machine; release is far below 1 ms.
    assert!(started.elapsed().as_secs_f64() / 100.0 < 0.01);
}
