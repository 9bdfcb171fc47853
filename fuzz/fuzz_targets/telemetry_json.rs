//! Telemetry JSON as devices send it over MQTT and HTTP: `aurum_proto::decode_message` and
//! `decode_batch` (JSON), then the catalogue validation ingestion applies
//! (`ValidationPolicy::validate`).
//!
//! Properties: a decoded message has a valid machine id and a storable seq; it re-encodes
//! with the crate's encoder (`OutgoingMessage`) into the same message; every element of a
//! decoded batch decodes on its own, from the bytes kept for its quarantine record, into the
//! same result; validation accounts for every reading and accepts only catalogue metrics with
//! plausible values.
#![no_main]

use aurum_domain::ingestion::ValidationPolicy;
use aurum_domain::telemetry::RawValue;
use aurum_domain::{MachineId, MachineType, Profile, Seq, TelemetryMessage};
use aurum_fuzz::same_readings;
use aurum_proto::{decode_batch, decode_message, Encoding, OutgoingMessage};
use chrono::{Datelike, Timelike};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = decode_message(Encoding::Json, data) {
        check_message(&msg);
        check_reencoding(&msg);
        check_validation(&msg);
    }

    if let Ok(batch) = decode_batch(Encoding::Json, data) {
        for (decoded, raw) in &batch.messages {
            let alone = decode_message(Encoding::Json, raw);
            match (decoded, &alone) {
                (Ok(a), Ok(b)) => {
                    assert_eq!(a.machine_id, b.machine_id);
                    assert_eq!(a.seq, b.seq);
                    assert_eq!(a.ts, b.ts);
                    assert!(same_readings(&a.readings, &b.readings));
                }
                (Err(_), Err(_)) => {}
                _ => panic!("batch element and its raw bytes disagree: {decoded:?} vs {alone:?}"),
            }
            if let Ok(m) = decoded {
                check_message(m);
            }
        }
    }
});

fn check_message(msg: &TelemetryMessage) {
    assert_eq!(
        MachineId::parse(msg.machine_id.as_str()).as_ref(),
        Ok(&msg.machine_id)
    );
    assert!(msg.seq.get() <= Seq::MAX);
    let mut names: Vec<&str> = msg.readings.iter().map(|r| r.metric.as_str()).collect();
    names.sort_unstable();
    let before = names.len();
    names.dedup();
    assert_eq!(before, names.len(), "a JSON object gave one metric twice");
}

/// Encodes the decoded message again (JSON numbers only; the encoder writes milliseconds and
/// RFC 3339 years 0000-9999) and decodes it.
fn check_reencoding(msg: &TelemetryMessage) {
    let mut metrics = Vec::with_capacity(msg.readings.len());
    for r in &msg.readings {
        match r.value {
            RawValue::Number(v) => {
                assert!(v.is_finite(), "JSON has no non-finite numbers");
                metrics.push((r.metric.as_str(), v));
            }
            RawValue::NotANumber(_) => return,
        }
    }
    if !(0..=9999).contains(&msg.ts.year()) {
        return;
    }
    let out = OutgoingMessage {
        machine_id: msg.machine_id.as_str(),
        seq: msg.seq.get(),
        ts: msg.ts,
        metrics: &metrics,
    };
    let again = match decode_message(Encoding::Json, &out.encode(Encoding::Json)) {
        Ok(m) => m,
        Err(e) => panic!("re-encoded message does not decode: {e:?}"),
    };
    assert_eq!(again.machine_id, msg.machine_id);
    assert_eq!(again.seq, msg.seq);
    let nanos = msg.ts.nanosecond();
    let millis = msg.ts.with_nanosecond(nanos - nanos % 1_000_000);
    assert_eq!(Some(again.ts), millis);
    assert!(same_readings(&again.readings, &msg.readings));
}

fn check_validation(msg: &TelemetryMessage) {
    let policy = ValidationPolicy::default();
    for t in MachineType::ALL {
        let profile = Profile::builtin(t);
        // "now" is the message's own time: the readings themselves get checked.
        let v = policy.validate(msg, &profile, msg.ts);
        if msg.readings.is_empty() {
            assert!(v.accepted.is_empty());
            assert_eq!(v.rejected.len(), 1);
            continue;
        }
        assert_eq!(v.accepted.len() + v.rejected.len(), msg.readings.len());
        for a in &v.accepted {
            let spec = profile.spec.metric(&a.metric);
            assert!(spec.is_some_and(|s| s.is_plausible(a.value)), "{a:?}");
            assert!(msg
                .readings
                .iter()
                .any(|r| r.metric == a.metric.as_str() && r.value == RawValue::Number(a.value)));
        }
    }
}
