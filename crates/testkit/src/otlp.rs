//! An OTLP/HTTP trace receiver of the test's own: it accepts `POST /v1/traces` bodies,
//! decodes them with the OpenTelemetry protobuf definitions, and keeps every span with the
//! `service.name` of the process that sent it. No collector or Jaeger is needed to prove that
//! spans leave a service and join up into traces.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::common::v1::{AnyValue, KeyValue};
use prost::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// One received span, flattened for assertions.
#[derive(Debug, Clone, PartialEq)]
pub struct ReceivedSpan {
    /// `service.name` of the exporting process's resource.
    pub service: String,
    pub name: String,
    /// Lower-case hex, as in `traceparent`.
    pub trace_id: String,
    pub span_id: String,
    /// Empty for a root span.
    pub parent_span_id: String,
    /// Attribute values rendered as text (strings as they are).
    pub attributes: BTreeMap<String, String>,
    /// The names of the span's events (a `tracing` event's message).
    pub events: Vec<String>,
}

/// The receiver; it runs until the test's runtime ends.
#[derive(Debug, Clone)]
pub struct OtlpReceiver {
    endpoint: String,
    spans: Arc<Mutex<Vec<ReceivedSpan>>>,
}

impl OtlpReceiver {
    /// Listens on a free loopback port.
    pub async fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("cannot bind the OTLP receiver: {e}"));
        let endpoint = match listener.local_addr() {
            Ok(a) => format!("http://{a}"),
            Err(e) => panic!("OTLP receiver address: {e}"),
        };
        let spans = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&spans);
        tokio::spawn(async move {
            while let Ok((sock, _)) = listener.accept().await {
                tokio::spawn(serve(sock, Arc::clone(&sink)));
            }
        });
        Self { endpoint, spans }
    }

    /// The base URL for `OTEL_EXPORTER_OTLP_ENDPOINT` (exporters append `/v1/traces`).
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<ReceivedSpan> {
        self.spans.lock().map(|s| s.clone()).unwrap_or_default()
    }
}

/// HTTP/1.1 with keep-alive, bodies sized by Content-Length (what OTLP exporters send).
async fn serve(mut sock: TcpStream, sink: Arc<Mutex<Vec<ReceivedSpan>>>) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    loop {
        let n = sock.read(&mut chunk).await.unwrap_or(0);
        if n == 0 {
            return;
        }
        buf.extend_from_slice(&chunk[..n]);
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() < end + 4 + len {
                break;
            }
            let body: Vec<u8> = buf[end + 4..end + 4 + len].to_vec();
            buf.drain(..end + 4 + len);
            let status = match ExportTraceServiceRequest::decode(body.as_slice()) {
                Ok(req) => {
                    if let Ok(mut spans) = sink.lock() {
                        spans.extend(flatten(&req));
                    }
                    "200 OK"
                }
                Err(_) => "400 Bad Request",
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-type: application/x-protobuf\r\ncontent-length: 0\r\n\r\n"
            );
            if sock.write_all(response.as_bytes()).await.is_err() {
                return;
            }
        }
    }
}

fn flatten(req: &ExportTraceServiceRequest) -> Vec<ReceivedSpan> {
    let mut out = Vec::new();
    for rs in &req.resource_spans {
        let service = rs
            .resource
            .as_ref()
            .and_then(|r| attribute(&r.attributes, "service.name"))
            .unwrap_or_default();
        for span in rs.scope_spans.iter().flat_map(|s| &s.spans) {
            out.push(ReceivedSpan {
                service: service.clone(),
                name: span.name.clone(),
                trace_id: hex(&span.trace_id),
                span_id: hex(&span.span_id),
                parent_span_id: hex(&span.parent_span_id),
                attributes: span
                    .attributes
                    .iter()
                    .filter_map(|kv| Some((kv.key.clone(), text(kv.value.as_ref()?)?)))
                    .collect(),
                events: span.events.iter().map(|e| e.name.clone()).collect(),
            });
        }
    }
    out
}

fn attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    attributes
        .iter()
        .find(|a| a.key == key)
        .and_then(|a| text(a.value.as_ref()?))
}

fn text(v: &AnyValue) -> Option<String> {
    Some(match v.value.as_ref()? {
        Value::StringValue(s) => s.clone(),
        Value::BoolValue(b) => b.to_string(),
        Value::IntValue(i) => i.to_string(),
        Value::DoubleValue(d) => d.to_string(),
        other => format!("{other:?}"),
    })
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
