//! The published JSON Schemas (docs/schemas) and the decoder agree: what devices are told is
//! valid decodes, and what the schema refuses, the decoder refuses too.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurum_proto::{decode_batch, decode_message, encode_batch, Encoding, OutgoingMessage};
use chrono::DateTime;
use proptest::prelude::*;
use serde_json::{json, Value};

fn schema(name: &str) -> jsonschema::Validator {
    let path = format!("{}/../docs/schemas/{name}", env!("CARGO_MANIFEST_DIR"));
    let mut schema: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    // The batch schema refers to the message schema by file name; resolve it locally.
    if let Some(items) = schema.pointer_mut("/properties/messages/items") {
        let message: Value = serde_json::from_str(
            &std::fs::read_to_string(format!(
                "{}/../docs/schemas/telemetry-message.schema.json",
                env!("CARGO_MANIFEST_DIR")
            ))
            .unwrap(),
        )
        .unwrap();
        *items = message;
    }
    jsonschema::options()
        .should_validate_formats(true)
        .build(&schema)
        .unwrap()
}

#[test]
fn the_documented_examples_are_valid_and_decode() {
    let v = schema("telemetry-message.schema.json");
    let example = json!({"machine_id":"TRUCK-21","seq":42,"ts":"2026-11-28T01:00:00Z","metrics":{"rpm":1650.0,"vibration":3.1}});
    assert!(v.is_valid(&example));
    assert!(decode_message(Encoding::Json, example.to_string().as_bytes()).is_ok());
    let batch = schema("telemetry-batch.schema.json");
    assert!(batch.is_valid(&json!({ "messages": [example] })));
}

#[test]
fn what_the_schema_refuses_the_decoder_refuses() {
    let v = schema("telemetry-message.schema.json");
    let bad = [
        json!({"machine_id":"a/b","seq":1,"ts":"2026-11-28T01:00:00Z","metrics":{}}),
        json!({"machine_id":"A","seq":-1,"ts":"2026-11-28T01:00:00Z","metrics":{}}),
        json!({"machine_id":"A","seq":1,"ts":"yesterday","metrics":{}}),
        json!({"machine_id":"A","seq":1,"ts":"2026-11-28T01:00:00Z","metrics":{},"extra":true}),
        json!({"machine_id":"A","seq":1,"ts":"2026-11-28T01:00:00Z"}),
        json!({"seq":1,"ts":"2026-11-28T01:00:00Z","metrics":{}}),
    ];
    for b in bad {
        assert!(!v.is_valid(&b), "schema accepts {b}");
        assert!(
            decode_message(Encoding::Json, b.to_string().as_bytes()).is_err(),
            "decoder accepts {b}"
        );
    }
}

proptest! {
    /// Everything the encoder produces is valid under the published schema, and decodes.
    #[test]
    fn encoded_messages_satisfy_the_schema(id in "[A-Za-z0-9][A-Za-z0-9_-]{0,63}",
                                           seq in 0u64..=i64::MAX as u64,
                                           secs in 0i64..4_000_000_000,
                                           value in -1e9f64..1e9) {
        let v = schema("telemetry-message.schema.json");
        let batch = schema("telemetry-batch.schema.json");
        let ts = DateTime::from_timestamp(secs, 0).unwrap();
        let metrics = [("vibration", value)];
        let m = OutgoingMessage { machine_id: &id, seq, ts, metrics: &metrics };
        prop_assert!(v.is_valid(&m.to_json_value()));
        let body: Value = serde_json::from_slice(&encode_batch(Encoding::Json, std::slice::from_ref(&m))).unwrap();
        prop_assert!(batch.is_valid(&body));
        prop_assert!(decode_batch(Encoding::Json, body.to_string().as_bytes()).is_ok());
    }
}
