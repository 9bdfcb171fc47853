//! JSON log lines with `trace_id`, `span_id` and `request_id` at the top level, so a log
//! collector can join a line to its trace in Jaeger and to the request that caused it, even
//! when the line is written deep inside a child span.
//!
//! The ids are fields of the spans that start work: the HTTP request span and the MQTT
//! message span record them ([`record_trace_ids`]); every event in their scope inherits them.

use std::fmt;

use opentelemetry::trace::TraceContextExt;
use serde_json::{Map, Value};
use tracing::{Event, Subscriber};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::fmt::format::{Format, Json, JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// The span fields lifted to the top of every line, innermost span first.
pub const CORRELATION_FIELDS: [&str; 3] = ["trace_id", "span_id", "request_id"];

/// Records the span's OpenTelemetry ids in its `trace_id` and `span_id` fields (declared
/// `tracing::field::Empty` when the span was created). Call it after any `set_parent`: the
/// parent decides the trace id. Without an OpenTelemetry layer (some tests) nothing is
/// recorded.
pub fn record_trace_ids(span: &tracing::Span) {
    let context = span.context();
    let otel = context.span();
    let sc = otel.span_context();
    if sc.is_valid() {
        span.record("trace_id", tracing::field::display(sc.trace_id()));
        span.record("span_id", tracing::field::display(sc.span_id()));
    }
}

/// The current span's trace as a W3C `traceparent`, when it is sampled: work done later on
/// behalf of this span (a feature vector, say) can continue the trace.
pub fn current_traceparent() -> Option<String> {
    let context = tracing::Span::current().context();
    let otel = context.span();
    let sc = otel.span_context();
    (sc.is_valid() && sc.is_sampled()).then(|| {
        format!(
            "00-{}-{}-{:02x}",
            sc.trace_id(),
            sc.span_id(),
            sc.trace_flags().to_u8()
        )
    })
}

/// `tracing_subscriber`'s JSON format plus the correlation fields of the event's scope.
#[derive(Debug)]
pub struct JsonWithCorrelation {
    inner: Format<Json>,
}

impl JsonWithCorrelation {
    pub fn new() -> Self {
        Self {
            inner: tracing_subscriber::fmt::format()
                .json()
                .flatten_event(true)
                .with_current_span(true)
                .with_span_list(false),
        }
    }
}

impl Default for JsonWithCorrelation {
    fn default() -> Self {
        Self::new()
    }
}

impl<S> FormatEvent<S, JsonFields> for JsonWithCorrelation
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        let mut found = Map::new();
        if let Some(scope) = ctx.event_scope() {
            for span in scope {
                let extensions = span.extensions();
                let Some(fields) = extensions.get::<FormattedFields<JsonFields>>() else {
                    continue;
                };
                collect_correlation(fields.as_str(), &mut found);
                if found.len() == CORRELATION_FIELDS.len() {
                    break;
                }
            }
        }
        writer.write_str(&with_fields(&line, &found))
    }
}

/// Adds the correlation fields found in one span's JSON-formatted fields that an inner span
/// has not already provided.
fn collect_correlation(span_fields: &str, found: &mut Map<String, Value>) {
    let Ok(Value::Object(fields)) = serde_json::from_str::<Value>(span_fields) else {
        return;
    };
    for name in CORRELATION_FIELDS {
        if found.contains_key(name) {
            continue;
        }
        if let Some(v) = fields.get(name) {
            found.insert(name.to_owned(), v.clone());
        }
    }
}

/// `line` (one JSON object and a newline) with `extra` merged in at the top level; fields
/// the event itself carries win. A line that is not a JSON object is left as it is.
fn with_fields(line: &str, extra: &Map<String, Value>) -> String {
    if extra.is_empty() {
        return line.to_owned();
    }
    let Ok(Value::Object(mut object)) = serde_json::from_str::<Value>(line.trim_end()) else {
        return line.to_owned();
    };
    for (k, v) in extra {
        object.entry(k.clone()).or_insert_with(|| v.clone());
    }
    let mut out = Value::Object(object).to_string();
    out.push('\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::sync::{Arc, Mutex};
    use tracing_subscriber::layer::SubscriberExt;

    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if let Ok(mut b) = self.0.lock() {
                b.extend_from_slice(buf);
            }
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn lines(captured: &Captured) -> Vec<Value> {
        let bytes = captured.0.lock().map(|b| b.clone()).unwrap_or_default();
        String::from_utf8_lossy(&bytes)
            .lines()
            .map(|l| serde_json::from_str(l).expect("every line is JSON"))
            .collect()
    }

    #[test]
    fn events_in_a_child_span_carry_the_request_and_trace_ids_of_its_parents() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::registry().with(
            tracing_subscriber::fmt::layer()
                .fmt_fields(JsonFields::new())
                .event_format(JsonWithCorrelation::new())
                .with_writer(move || writer.clone()),
        );
        tracing::subscriber::with_default(subscriber, || {
            let request = tracing::info_span!(
                "http_request",
                request_id = "req-1",
                trace_id = "4bf92f3577b34da6a3ce929d0e0e4736",
                span_id = "00f067aa0ba902b7",
            );
            let _r = request.enter();
            let child = tracing::info_span!("db_query", span_id = "1111111111111111");
            let _c = child.enter();
            tracing::info!(rows = 3, "queried");
        });
        tracing::subscriber::with_default(
            tracing_subscriber::registry().with(
                tracing_subscriber::fmt::layer()
                    .fmt_fields(JsonFields::new())
                    .event_format(JsonWithCorrelation::new())
                    .with_writer({
                        let w = captured.clone();
                        move || w.clone()
                    }),
            ),
            || tracing::info!("outside any span"),
        );
        let lines = lines(&captured);
        assert_eq!(lines.len(), 2);
        let inside = &lines[0];
        assert_eq!(inside["message"], "queried");
        assert_eq!(inside["rows"], 3);
        assert_eq!(inside["request_id"], "req-1");
        assert_eq!(inside["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736");
        // The innermost span's id: the line belongs to the query.
        assert_eq!(inside["span_id"], "1111111111111111");
        let outside = &lines[1];
        assert_eq!(outside["message"], "outside any span");
        assert!(outside.get("trace_id").is_none());
    }

    #[test]
    fn an_event_field_of_the_same_name_is_not_overwritten() {
        let mut extra = Map::new();
        extra.insert("request_id".into(), Value::from("from-span"));
        let line = "{\"message\":\"m\",\"request_id\":\"from-event\"}\n";
        let merged: Value = serde_json::from_str(&with_fields(line, &extra)).unwrap();
        assert_eq!(merged["request_id"], "from-event");
        assert_eq!(with_fields("not json\n", &extra), "not json\n");
    }
}
