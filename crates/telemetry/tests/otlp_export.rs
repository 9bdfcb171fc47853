//! Spans reach a real OTLP receiver (this test's own, decoding the OTLP protobuf).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use aurum_config::{OtlpProtocol, TelemetrySettings};
use aurum_testkit::{eventually, OtlpReceiver};
use opentelemetry::trace::{Tracer, TracerProvider as _};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_over_otlp_http_when_an_endpoint_is_set() {
    let receiver = OtlpReceiver::start().await;
    let settings = TelemetrySettings {
        otlp_endpoint: Some(receiver.endpoint().to_owned()),
        otlp_protocol: OtlpProtocol::HttpProtobuf,
        ..TelemetrySettings::default()
    };
    let provider = aurum_telemetry::tracer_provider("aurum-probe", &settings).unwrap();
    provider.tracer("probe").in_span("probe-span", |_cx| {});
    let p = provider.clone();
    tokio::task::spawn_blocking(move || p.force_flush())
        .await
        .unwrap()
        .unwrap();

    assert!(
        eventually(Duration::from_secs(10), || async {
            !receiver.spans().is_empty()
        })
        .await,
        "no export reached the receiver"
    );
    let spans = receiver.spans();
    assert_eq!(spans.len(), 1, "{spans:?}");
    assert_eq!(spans[0].service, "aurum-probe");
    assert_eq!(spans[0].name, "probe-span");
    assert_eq!(spans[0].trace_id.len(), 32);
    tokio::task::spawn_blocking(move || provider.shutdown())
        .await
        .unwrap()
        .ok();
}
