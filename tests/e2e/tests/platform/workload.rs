//! What the tests do to the platform: register a truck, send an hour of its telemetry
//! ending in anomalous readings through the gateway (prediction raises an alert), and
//! publish one message as a provisioned device over MQTT v5 with a `traceparent` user
//! property.

use std::time::Duration;

use aurum_mqtt::Publisher;
use aurum_testkit::eventually;
use chrono::{DateTime, TimeDelta, Utc};
use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{truck_reading, Platform, TENANT};

pub const MACHINE: &str = "TRUCK-21";

fn reading(seq: u64, ts: DateTime<Utc>, vibration: f64, temperature: f64) -> Value {
    truck_reading(MACHINE, seq, ts, vibration, temperature)
}

/// What the workload sent, to find its traces by.
pub struct Sent {
    /// `X-Request-ID` of the anomalous request through the gateway.
    pub request_id: String,
    /// The trace id the device put in its MQTT message's `traceparent`.
    pub device_trace_id: String,
    pub device_span_id: String,
}

pub async fn run(platform: &mut Platform) -> Sent {
    let token = platform.console_token().await;
    platform
        .register_machine(&token, MACHINE, "haul_truck")
        .await;

    // An hour of a truck, one message a minute, that ends shaking and running hot.
    let start = Utc::now() - TimeDelta::minutes(70);
    let messages: Vec<Value> = (0..=63)
        .map(|i| {
            let at = start + TimeDelta::minutes(i as i64);
            if i > 60 {
                reading(i + 1, at, 14.0, 131.0)
            } else {
                reading(
                    i + 1,
                    at,
                    2.8 + (i % 5) as f64 * 0.05,
                    88.0 + (i % 3) as f64 * 0.5,
                )
            }
        })
        .collect();
    let request_id = format!("e2e-{}", uuid::Uuid::new_v4());
    let r = platform
        .api(Method::POST, "/telemetry", &token)
        .header("x-request-id", &request_id)
        .json(&json!({ "messages": messages }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(r.headers()["x-request-id"], request_id.as_str());
    // Prediction scores that request's features before the device's message arrives, so
    // each carries its own trace (a vector carries the newest traced message's trace).
    let otlp = platform.otlp.clone();
    let scored = || {
        let spans = otlp.spans();
        let trace = spans
            .iter()
            .find(|s| {
                s.service == "aurum-gateway" && s.attributes.get("request_id") == Some(&request_id)
            })
            .map(|s| s.trace_id.clone());
        trace.is_some_and(|t| {
            spans
                .iter()
                .any(|s| s.trace_id == t && s.name == "score_machine")
        })
    };
    assert!(
        eventually(Duration::from_secs(60), || async { scored() }).await,
        "prediction never scored the features of request {request_id}"
    );

    // A device provisioned through the gateway publishes one reading with its own trace.
    let (username, password) = platform.provision_device(&token, MACHINE).await;
    let settings = platform
        .broker
        .settings("e2e-device", Some((&username, &password)));
    let publisher = Publisher::connect(&settings, 10).await.unwrap();
    let device_trace_id = uuid::Uuid::new_v4().simple().to_string();
    let device_span_id = uuid::Uuid::new_v4().simple().to_string()[..16].to_owned();
    let traceparent = format!("00-{device_trace_id}-{device_span_id}-01");
    let payload = reading(65, start + TimeDelta::minutes(64), 14.5, 132.0);
    publisher
        .publish(
            &format!("aurum/v1/{TENANT}/{MACHINE}/telemetry"),
            serde_json::to_vec(&payload).unwrap(),
            "application/json",
            Some(&traceparent),
        )
        .await
        .unwrap();
    Sent {
        request_id,
        device_trace_id,
        device_span_id,
    }
}
