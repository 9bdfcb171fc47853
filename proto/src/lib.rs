//! AurumAI's device telemetry wire contract: JSON and protobuf decoding into the domain's
//! [`TelemetryMessage`], and encoding for devices and the simulator.
//!
//! Decoding checks the envelope only (machine id, seq, timestamp). Readings are validated
//! against the catalogue later, so a bad reading is quarantined without losing the good ones.

use std::collections::HashMap;

use aurum_domain::telemetry::{RawReading, RawValue};
use aurum_domain::{MachineId, Seq, TelemetryMessage};
use chrono::{DateTime, SecondsFormat, Utc};
use prost::Message as _;
use serde::Deserialize;

pub mod features;

/// Types generated from `aurum/telemetry/v1/telemetry.proto`.
pub mod pb {
    #![allow(missing_debug_implementations, clippy::all)]
    include!(concat!(env!("OUT_DIR"), "/aurum.telemetry.v1.rs"));
}

/// The two encodings a device may send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Json,
    Protobuf,
}

impl Encoding {
    pub const JSON_MIME: &'static str = "application/json";
    pub const PROTOBUF_MIME: &'static str = "application/x-protobuf";

    /// Reads a content type (parameters such as `; charset=utf-8` are ignored). A missing
    /// content type means JSON, the default for devices that cannot set MQTT v5 properties.
    pub fn from_content_type(ct: Option<&str>) -> Option<Self> {
        let Some(ct) = ct else {
            return Some(Encoding::Json);
        };
        let essence = ct
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "" | "application/json" => Some(Encoding::Json),
            "application/x-protobuf"
            | "application/protobuf"
            | "application/vnd.google.protobuf" => Some(Encoding::Protobuf),
            _ => None,
        }
    }

    pub fn mime(self) -> &'static str {
        match self {
            Encoding::Json => Self::JSON_MIME,
            Encoding::Protobuf => Self::PROTOBUF_MIME,
        }
    }
}

/// Why a payload did not decode into a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{detail}")]
pub struct DecodeError {
    pub detail: String,
    /// The machine id the payload claimed, when it could be read, for the quarantine record.
    pub machine_hint: Option<String>,
    /// The seq the payload claimed, when it could be read.
    pub seq_hint: Option<u64>,
}

impl DecodeError {
    fn new(detail: impl Into<String>) -> Self {
        Self {
            detail: detail.into(),
            machine_hint: None,
            seq_hint: None,
        }
    }
}

/// Decodes one message.
pub fn decode_message(encoding: Encoding, payload: &[u8]) -> Result<TelemetryMessage, DecodeError> {
    match encoding {
        Encoding::Json => match serde_json::from_slice::<Wire>(payload) {
            Ok(wire) => from_wire(wire),
            // The slow path, for the error only: read what can be read, for the quarantine.
            Err(_) => {
                let value: serde_json::Value = serde_json::from_slice(payload)
                    .map_err(|e| DecodeError::new(format!("not valid JSON: {e}")))?;
                decode_json_value(value)
            }
        },
        Encoding::Protobuf => {
            let msg = pb::Telemetry::decode(payload)
                .map_err(|e| DecodeError::new(format!("not a valid Telemetry protobuf: {e}")))?;
            from_protobuf(msg)
        }
    }
}

/// A batch whose envelope decoded: each element is decoded on its own, so one malformed
/// message is reported (and quarantined) without refusing the others.
#[derive(Debug)]
pub struct DecodedBatch {
    pub messages: Vec<(Result<TelemetryMessage, DecodeError>, Vec<u8>)>,
}

/// Decodes an HTTP batch. `Err` means the body as a whole is malformed (400); per-message
/// failures are inside the `Ok`. Each message comes with its own bytes, for quarantine.
pub fn decode_batch(encoding: Encoding, body: &[u8]) -> Result<DecodedBatch, DecodeError> {
    match encoding {
        Encoding::Json => {
            #[derive(Deserialize)]
            #[serde(deny_unknown_fields)]
            struct Batch {
                messages: Vec<serde_json::Value>,
            }
            let batch: Batch = serde_json::from_slice(body).map_err(|e| {
                DecodeError::new(format!("body must be {{\"messages\": [...]}}: {e}"))
            })?;
            let messages = batch
                .messages
                .into_iter()
                .map(|v| {
                    let raw = serde_json::to_vec(&v).unwrap_or_default();
                    (decode_json_value(v), raw)
                })
                .collect();
            Ok(DecodedBatch { messages })
        }
        Encoding::Protobuf => {
            let batch = pb::TelemetryBatch::decode(body).map_err(|e| {
                DecodeError::new(format!("not a valid TelemetryBatch protobuf: {e}"))
            })?;
            let messages = batch
                .messages
                .into_iter()
                .map(|m| {
                    let raw = m.encode_to_vec();
                    (from_protobuf(m), raw)
                })
                .collect();
            Ok(DecodedBatch { messages })
        }
    }
}

/// The JSON message as it travels.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Wire {
    machine_id: String,
    seq: u64,
    ts: String,
    metrics: serde_json::Map<String, serde_json::Value>,
}

fn decode_json_value(value: serde_json::Value) -> Result<TelemetryMessage, DecodeError> {
    let machine_hint = value
        .get("machine_id")
        .and_then(|v| v.as_str())
        .map(|s| s.chars().take(64).collect::<String>());
    let seq_hint = value.get("seq").and_then(|v| v.as_u64());
    let wire: Wire = serde_json::from_value(value).map_err(|e| DecodeError {
        detail: format!("invalid message: {e}"),
        machine_hint,
        seq_hint,
    })?;
    from_wire(wire)
}

fn from_wire(wire: Wire) -> Result<TelemetryMessage, DecodeError> {
    let hinted = |detail: String| DecodeError {
        detail,
        machine_hint: Some(truncate(&wire.machine_id)),
        seq_hint: Some(wire.seq),
    };
    let machine_id = MachineId::parse(&wire.machine_id).map_err(|e| hinted(e.to_string()))?;
    let seq = Seq::new(wire.seq).map_err(|e| hinted(e.to_string()))?;
    let ts = DateTime::parse_from_rfc3339(&wire.ts)
        .map_err(|e| hinted(format!("ts {:?} is not RFC 3339: {e}", truncate(&wire.ts))))?
        .with_timezone(&Utc);
    let readings = wire
        .metrics
        .into_iter()
        .map(|(metric, v)| RawReading {
            metric,
            value: match v.as_f64() {
                Some(n) => RawValue::Number(n),
                None => RawValue::NotANumber(truncate(&v.to_string())),
            },
        })
        .collect();
    Ok(TelemetryMessage {
        machine_id,
        seq,
        ts,
        readings,
    })
}

fn from_protobuf(m: pb::Telemetry) -> Result<TelemetryMessage, DecodeError> {
    let hinted = |detail: String| DecodeError {
        detail,
        machine_hint: Some(m.machine_id.chars().take(64).collect()),
        seq_hint: Some(m.seq),
    };
    let machine_id = MachineId::parse(&m.machine_id).map_err(|e| hinted(e.to_string()))?;
    let seq = Seq::new(m.seq).map_err(|e| hinted(e.to_string()))?;
    let ts =
        m.ts.as_ref()
            .ok_or_else(|| hinted("ts is missing".into()))
            .and_then(|t| {
                let nanos =
                    u32::try_from(t.nanos).map_err(|_| hinted("ts.nanos is negative".into()))?;
                DateTime::from_timestamp(t.seconds, nanos)
                    .ok_or_else(|| hinted("ts is out of range".into()))
            })?;
    let readings = m
        .metrics
        .into_iter()
        .map(|(metric, v)| RawReading {
            metric,
            value: RawValue::Number(v),
        })
        .collect();
    Ok(TelemetryMessage {
        machine_id,
        seq,
        ts,
        readings,
    })
}

fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

/// A message as a device builds it, for encoding.
#[derive(Debug, Clone, PartialEq)]
pub struct OutgoingMessage<'a> {
    pub machine_id: &'a str,
    pub seq: u64,
    pub ts: DateTime<Utc>,
    pub metrics: &'a [(&'a str, f64)],
}

impl OutgoingMessage<'_> {
    pub fn to_json_value(&self) -> serde_json::Value {
        let metrics: serde_json::Map<String, serde_json::Value> = self
            .metrics
            .iter()
            .map(|(k, v)| ((*k).to_owned(), serde_json::json!(v)))
            .collect();
        serde_json::json!({
            "machine_id": self.machine_id,
            "seq": self.seq,
            "ts": self.ts.to_rfc3339_opts(SecondsFormat::Millis, true),
            "metrics": metrics,
        })
    }

    pub fn to_protobuf(&self) -> pb::Telemetry {
        pb::Telemetry {
            machine_id: self.machine_id.to_owned(),
            seq: self.seq,
            ts: Some(prost_types::Timestamp {
                seconds: self.ts.timestamp(),
                nanos: i32::try_from(self.ts.timestamp_subsec_nanos()).unwrap_or(0),
            }),
            metrics: self
                .metrics
                .iter()
                .map(|(k, v)| ((*k).to_owned(), *v))
                .collect::<HashMap<_, _>>(),
        }
    }

    pub fn encode(&self, encoding: Encoding) -> Vec<u8> {
        match encoding {
            Encoding::Json => self.to_json_value().to_string().into_bytes(),
            Encoding::Protobuf => self.to_protobuf().encode_to_vec(),
        }
    }
}

/// Encodes an HTTP batch body.
pub fn encode_batch(encoding: Encoding, messages: &[OutgoingMessage<'_>]) -> Vec<u8> {
    match encoding {
        Encoding::Json => {
            let list: Vec<_> = messages
                .iter()
                .map(OutgoingMessage::to_json_value)
                .collect();
            serde_json::json!({ "messages": list })
                .to_string()
                .into_bytes()
        }
        Encoding::Protobuf => pb::TelemetryBatch {
            messages: messages.iter().map(OutgoingMessage::to_protobuf).collect(),
        }
        .encode_to_vec(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const EXAMPLE: &str = r#"{"machine_id":"TRUCK-21","seq":42,"ts":"2026-11-28T01:00:00Z","metrics":{"rpm":1650.0,"vibration":3.1}}"#;

    #[test]
    fn the_documented_example_decodes() {
        let m = decode_message(Encoding::Json, EXAMPLE.as_bytes()).unwrap();
        assert_eq!(m.machine_id.as_str(), "TRUCK-21");
        assert_eq!(m.seq.get(), 42);
        assert_eq!(m.readings.len(), 2);
    }

    #[test]
    fn json_and_protobuf_carry_the_same_message() {
        let ts = DateTime::parse_from_rfc3339("2026-11-28T01:00:00.250Z")
            .unwrap()
            .with_timezone(&Utc);
        let out = OutgoingMessage {
            machine_id: "MILL-3",
            seq: 7,
            ts,
            metrics: &[("rpm", 12.5), ("kwh", 3.25)],
        };
        let mut a = decode_message(Encoding::Json, &out.encode(Encoding::Json)).unwrap();
        let mut b = decode_message(Encoding::Protobuf, &out.encode(Encoding::Protobuf)).unwrap();
        a.readings.sort_by(|x, y| x.metric.cmp(&y.metric));
        b.readings.sort_by(|x, y| x.metric.cmp(&y.metric));
        assert_eq!(a, b);
        assert_eq!(a.ts, ts);
    }

    #[test]
    fn a_wrongly_typed_value_survives_decoding_to_be_quarantined() {
        let m = decode_message(
            Encoding::Json,
            br#"{"machine_id":"TRUCK-21","seq":1,"ts":"2026-11-28T01:00:00Z","metrics":{"rpm":"fast"}}"#,
        )
        .unwrap();
        assert_eq!(m.readings[0].value, RawValue::NotANumber("\"fast\"".into()));
    }

    #[test]
    fn envelope_errors_keep_what_could_be_read() {
        let e = decode_message(
            Encoding::Json,
            br#"{"machine_id":"TRUCK-21","seq":1,"ts":"yesterday","metrics":{}}"#,
        )
        .unwrap_err();
        assert_eq!(e.machine_hint.as_deref(), Some("TRUCK-21"));
        assert_eq!(e.seq_hint, Some(1));
        for bad in [
            &b"{"[..],
            b"[]",
            b"null",
            br#"{"machine_id":"a/b","seq":1,"ts":"2026-11-28T01:00:00Z","metrics":{}}"#,
            br#"{"machine_id":"A","seq":-1,"ts":"2026-11-28T01:00:00Z","metrics":{}}"#,
            br#"{"machine_id":"A","seq":1,"ts":"2026-11-28T01:00:00Z","metrics":{},"extra":1}"#,
        ] {
            assert!(decode_message(Encoding::Json, bad).is_err());
        }
    }

    #[test]
    fn a_batch_reports_each_message_on_its_own() {
        let body = format!(r#"{{"messages":[{EXAMPLE},{{"seq":"x"}}]}}"#);
        let b = decode_batch(Encoding::Json, body.as_bytes()).unwrap();
        assert!(b.messages[0].0.is_ok());
        assert!(b.messages[1].0.is_err());
        assert!(decode_batch(Encoding::Json, EXAMPLE.as_bytes()).is_err());
    }

    #[test]
    fn content_types() {
        assert_eq!(Encoding::from_content_type(None), Some(Encoding::Json));
        assert_eq!(
            Encoding::from_content_type(Some("application/json; charset=utf-8")),
            Some(Encoding::Json)
        );
        assert_eq!(
            Encoding::from_content_type(Some("application/x-protobuf")),
            Some(Encoding::Protobuf)
        );
        assert_eq!(Encoding::from_content_type(Some("text/plain")), None);
    }

    proptest! {
        #[test]
        fn decoding_arbitrary_bytes_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
            let _ = decode_message(Encoding::Json, &bytes);
            let _ = decode_message(Encoding::Protobuf, &bytes);
            let _ = decode_batch(Encoding::Json, &bytes);
            let _ = decode_batch(Encoding::Protobuf, &bytes);
        }

        #[test]
        fn encoded_messages_roundtrip(seq in 0u64..=Seq::MAX, secs in 0i64..4_000_000_000, v in -1e12f64..1e12) {
            let ts = DateTime::from_timestamp_millis(secs * 1000).unwrap();
            let out = OutgoingMessage { machine_id: "BOILER-7", seq, ts, metrics: &[("temperature", v)] };
            for enc in [Encoding::Json, Encoding::Protobuf] {
                let m = decode_message(enc, &out.encode(enc)).unwrap();
                prop_assert_eq!(m.seq.get(), seq);
                prop_assert_eq!(m.ts, ts);
                prop_assert_eq!(&m.readings[0].value, &RawValue::Number(v));
            }
        }
    }
}
