//! One trace from the caller (or the device) to the alert, across the services' processes,
//! as an SRE sees it in Jaeger: here the spans are read back from the test's own OTLP
//! receiver, which decodes what the services exported.

use std::time::Duration;

use aurum_testkit::{eventually, ReceivedSpan};

use crate::harness::Platform;
use crate::workload;

fn in_trace<'a>(spans: &'a [ReceivedSpan], trace_id: &str) -> Vec<&'a ReceivedSpan> {
    spans.iter().filter(|s| s.trace_id == trace_id).collect()
}

fn services(spans: &[&ReceivedSpan]) -> Vec<String> {
    let mut names: Vec<String> = spans.iter().map(|s| s.service.clone()).collect();
    names.sort();
    names.dedup();
    names
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_through_the_gateway_and_a_device_message_are_each_one_trace_to_the_alert() {
    let mut platform = Platform::start().await;
    let sent = workload::run(&mut platform).await;

    // The gateway started the trace for the request and tagged it with the request id.
    let otlp = platform.otlp.clone();
    let gateway_span = || {
        otlp.spans().into_iter().find(|s| {
            s.service == "aurum-gateway" && s.attributes.get("request_id") == Some(&sent.request_id)
        })
    };
    assert!(
        eventually(Duration::from_secs(20), || async {
            gateway_span().is_some()
        })
        .await,
        "no gateway span with request_id {}",
        sent.request_id
    );
    let trace_id = gateway_span().unwrap().trace_id;

    // Ingestion continued it (traceparent over HTTP) and so did prediction (the feature
    // vector carried it), where the alert the anomaly raised is an event of the span.
    let complete = || {
        let spans = otlp.spans();
        let trace = in_trace(&spans, &trace_id);
        services(&trace).len() >= 3
            && trace
                .iter()
                .any(|s| s.name == "score_machine" && s.events.iter().any(|e| e == "alert raised"))
    };
    let arrived = eventually(Duration::from_secs(30), || async { complete() }).await;
    let spans = otlp.spans();
    let trace = in_trace(&spans, &trace_id);
    if !arrived {
        platform.stop();
        let alerts: Vec<String> = std::fs::read_to_string(&platform.services[1].log)
            .unwrap_or_default()
            .lines()
            .filter(|l| l.contains("alert") || l.contains("score"))
            .map(str::to_owned)
            .collect();
        panic!(
            "trace {trace_id} is incomplete: {trace:#?}\nprediction's log on alerts: {alerts:#?}"
        );
    }
    assert_eq!(
        services(&trace),
        ["aurum-gateway", "aurum-ingestion", "aurum-prediction"]
    );
    // The request id travels with the request: ingestion's server span has it too.
    assert!(trace.iter().any(|s| s.service == "aurum-ingestion"
        && s.attributes.get("request_id") == Some(&sent.request_id)));
    let score = trace.iter().find(|s| s.name == "score_machine").unwrap();
    assert_eq!(score.attributes["aurum.machine_id"], workload::MACHINE);
    assert!(score.attributes.contains_key("aurum.risk_score"));

    // The device's trace: its MQTT v5 user property is the parent of ingestion's span,
    // and prediction's work for that message joins the same trace.
    let device = || {
        let spans = otlp.spans();
        let trace: Vec<ReceivedSpan> = in_trace(&spans, &sent.device_trace_id)
            .into_iter()
            .cloned()
            .collect();
        trace
    };
    let arrived = eventually(Duration::from_secs(30), || async {
        services(&device().iter().collect::<Vec<_>>()).len() >= 2
    })
    .await;
    let trace = device();
    assert!(arrived, "device trace incomplete: {trace:#?}");
    let consumer = trace
        .iter()
        .find(|s| s.service == "aurum-ingestion" && s.name == "ingest_mqtt_message")
        .expect("ingestion's span for the MQTT message");
    assert_eq!(consumer.parent_span_id, sent.device_span_id);
    assert!(trace
        .iter()
        .any(|s| s.service == "aurum-prediction" && s.name == "score_machine"));

    // The logs carry the same ids: a collector can join a line to its trace and request.
    platform.stop();
    let gateway_log = std::fs::read_to_string(&platform.services[3].log).unwrap();
    let line = gateway_log
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .find(|l| l["request_id"] == sent.request_id.as_str())
        .expect("a gateway log line with the request id");
    assert_eq!(line["trace_id"], trace_id.as_str());
    assert_eq!(line["span_id"].as_str().map(str::len), Some(16));
}
