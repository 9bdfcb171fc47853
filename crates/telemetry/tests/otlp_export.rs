//! Spans reach a real OTLP receiver (this test's own, decoding the OTLP protobuf).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use aurum_config::{OtlpProtocol, TelemetrySettings};
use opentelemetry::trace::{Tracer, TracerProvider as _};
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::mpsc;

/// A minimal OTLP/HTTP receiver: reads each POST body and decodes it.
async fn receiver() -> (String, mpsc::UnboundedReceiver<ExportTraceServiceRequest>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok((mut sock, _)) = listener.accept().await {
            let tx = tx.clone();
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                loop {
                    let n = sock.read(&mut chunk).await.unwrap_or(0);
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                        continue;
                    };
                    let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    if buf.len() < end + 4 + len {
                        continue;
                    }
                    let body = buf[end + 4..end + 4 + len].to_vec();
                    buf.drain(..end + 4 + len);
                    if let Ok(req) = ExportTraceServiceRequest::decode(body.as_slice()) {
                        let _ = tx.send(req);
                    }
                    let _ = sock
                        .write_all(b"HTTP/1.1 200 OK\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n")
                        .await;
                }
            });
        }
    });
    (addr, rx)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_are_exported_over_otlp_http_when_an_endpoint_is_set() {
    let (endpoint, mut rx) = receiver().await;
    let settings = TelemetrySettings {
        otlp_endpoint: Some(endpoint),
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

    let req = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("no export reached the receiver")
        .unwrap();
    let rs = &req.resource_spans[0];
    let service = rs
        .resource
        .as_ref()
        .unwrap()
        .attributes
        .iter()
        .find(|a| a.key == "service.name")
        .and_then(|a| a.value.as_ref())
        .map(|v| format!("{:?}", v.value));
    assert!(service.unwrap().contains("aurum-probe"));
    let names: Vec<_> = rs
        .scope_spans
        .iter()
        .flat_map(|s| &s.spans)
        .map(|s| s.name.clone())
        .collect();
    assert_eq!(names, vec!["probe-span"]);
    tokio::task::spawn_blocking(move || provider.shutdown())
        .await
        .unwrap()
        .ok();
}
