//! Model artifacts as the prediction service reads them (`POST` to its model registry,
//! activation, registry sync): `aurum_models::ModelArtifact::from_json`.
//!
//! The input goes in twice: as a whole file, and as the payload of an envelope built here
//! with the right checksum, so the payload decoding and the artifact's validation (window,
//! horizon, schemas, models) see fuzzed JSON instead of stopping at the checksum.
//!
//! Properties: an artifact that loads writes out (`to_json`) into bytes that load again into
//! an artifact that writes out the same bytes.
#![no_main]

use aurum_models::{ModelArtifact, ARTIFACT_FORMAT, ARTIFACT_FORMAT_VERSION};
use libfuzzer_sys::fuzz_target;
use sha2::{Digest, Sha256};

fuzz_target!(|data: &[u8]| {
    if let Ok(a) = ModelArtifact::from_json(data) {
        check_roundtrip(&a);
    }
    let Ok(payload) = std::str::from_utf8(data) else {
        return;
    };
    let envelope = serde_json::json!({
        "format": ARTIFACT_FORMAT,
        "format_version": ARTIFACT_FORMAT_VERSION,
        "payload_sha256": hex::encode(Sha256::digest(payload.as_bytes())),
        "payload": payload,
    });
    if let Ok(a) = ModelArtifact::from_json(envelope.to_string().as_bytes()) {
        check_roundtrip(&a);
    }
});

fn check_roundtrip(a: &ModelArtifact) {
    let bytes = match a.to_json() {
        Ok(b) => b,
        Err(e) => panic!("a loaded artifact does not write out: {e}"),
    };
    let again = match ModelArtifact::from_json(&bytes) {
        Ok(b) => b,
        Err(e) => panic!("a written artifact does not load: {e}"),
    };
    assert_eq!(again.to_json().ok(), Some(bytes));
    assert_eq!(again.version, a.version);
    assert_eq!(again.window, a.window);
}
