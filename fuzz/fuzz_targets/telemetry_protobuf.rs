//! Telemetry protobuf (`application/x-protobuf`) as devices send it over MQTT and HTTP:
//! `aurum_proto::decode_message` and `decode_batch` (protobuf).
//!
//! Properties: a decoded message has a valid machine id and a storable seq; re-encoded with
//! the crate's encoder it decodes into the same message, bit for bit (NaN included; -0.0 comes
//! back as 0.0, see `same_readings`); when its values are finite and its time whole
//! milliseconds, its JSON encoding decodes into the same message too; every element of a
//! decoded batch decodes on its own, from the bytes kept for its quarantine record, into the
//! same result.
#![no_main]

use aurum_domain::telemetry::RawValue;
use aurum_domain::{MachineId, Seq, TelemetryMessage};
use aurum_fuzz::same_readings;
use aurum_proto::{decode_batch, decode_message, Encoding, OutgoingMessage};
use chrono::{Datelike, Timelike};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(msg) = decode_message(Encoding::Protobuf, data) {
        check_message(&msg);
        check_reencoding(&msg);
    }

    if let Ok(batch) = decode_batch(Encoding::Protobuf, data) {
        for (decoded, raw) in &batch.messages {
            let alone = decode_message(Encoding::Protobuf, raw);
            match (decoded, &alone) {
                (Ok(a), Ok(b)) => assert_same(a, b),
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
    assert!(msg
        .readings
        .iter()
        .all(|r| matches!(r.value, RawValue::Number(_))));
}

fn assert_same(a: &TelemetryMessage, b: &TelemetryMessage) {
    assert_eq!(a.machine_id, b.machine_id);
    assert_eq!(a.seq, b.seq);
    assert_eq!(a.ts, b.ts);
    assert!(same_readings(&a.readings, &b.readings), "{a:?} vs {b:?}");
}

fn check_reencoding(msg: &TelemetryMessage) {
    let metrics: Vec<(&str, f64)> = msg
        .readings
        .iter()
        .filter_map(|r| match r.value {
            RawValue::Number(v) => Some((r.metric.as_str(), v)),
            RawValue::NotANumber(_) => None,
        })
        .collect();
    let out = OutgoingMessage {
        machine_id: msg.machine_id.as_str(),
        seq: msg.seq.get(),
        ts: msg.ts,
        metrics: &metrics,
    };
    match decode_message(Encoding::Protobuf, &out.encode(Encoding::Protobuf)) {
        Ok(again) => assert_same(&again, msg),
        Err(e) => panic!("re-encoded protobuf does not decode: {e:?}"),
    }

    let json_safe = metrics.iter().all(|(_, v)| v.is_finite())
        && msg.ts.nanosecond().is_multiple_of(1_000_000)
        && (0..=9999).contains(&msg.ts.year());
    if json_safe {
        match decode_message(Encoding::Json, &out.encode(Encoding::Json)) {
            Ok(again) => assert_same(&again, msg),
            Err(e) => panic!("the message as JSON does not decode: {e:?}"),
        }
    }
}
