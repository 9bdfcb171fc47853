//! JSON log lines with `trace_id`, `span_id` and `request_id` at the top level, so a log
//! collector can join a line to its trace in Jaeger and to the request that caused it, even
//! when the line is written deep inside a child span.
//!
//! The ids are fields of the spans that start work: the HTTP request span and the MQTT
//! message span record them ([`crate::record_trace_ids`]); every event in their scope inherits them.

use std::fmt;

use tracing::{span, Event, Subscriber};
use tracing_subscriber::fmt::format::{Format, Json, JsonFields, Writer};
use tracing_subscriber::fmt::{FmtContext, FormatEvent};
use tracing_subscriber::layer::{Context, Layer};
use tracing_subscriber::registry::LookupSpan;

/// The span fields lifted to the top of every line, innermost span first.
pub const CORRELATION_FIELDS: [&str; 3] = ["trace_id", "span_id", "request_id"];

/// The correlation fields of one span, kept in its extensions by [`CorrelationLayer`] as they
/// are recorded, so formatting a line reads them without parsing anything.
#[derive(Debug, Default, Clone)]
struct Correlation {
    values: [Option<String>; 3],
}

impl Correlation {
    fn is_empty(&self) -> bool {
        self.values.iter().all(Option::is_none)
    }

    fn set(&mut self, field: &tracing::field::Field, value: String) {
        if let Some(i) = CORRELATION_FIELDS.iter().position(|n| *n == field.name()) {
            self.values[i] = Some(value);
        }
    }
}

impl tracing::field::Visit for Correlation {
    fn record_str(&mut self, field: &tracing::field::Field, value: &str) {
        self.set(field, value.to_owned());
    }

    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn fmt::Debug) {
        if CORRELATION_FIELDS.contains(&field.name()) {
            // `display(..)` values (the ids) print their Display form through Debug.
            self.set(field, format!("{value:?}"));
        }
    }
}

/// Keeps every span's correlation fields in its extensions (install it with
/// [`JsonWithCorrelation`]).
#[derive(Debug, Default, Clone, Copy)]
pub struct CorrelationLayer;

impl<S> Layer<S> for CorrelationLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        let mut c = Correlation::default();
        attrs.record(&mut c);
        if !c.is_empty() {
            if let Some(span) = ctx.span(id) {
                span.extensions_mut().insert(c);
            }
        }
    }

    fn on_record(&self, id: &span::Id, values: &span::Record<'_>, ctx: Context<'_, S>) {
        let Some(span) = ctx.span(id) else { return };
        let mut extensions = span.extensions_mut();
        if let Some(c) = extensions.get_mut::<Correlation>() {
            values.record(c);
            return;
        }
        let mut c = Correlation::default();
        values.record(&mut c);
        if !c.is_empty() {
            extensions.insert(c);
        }
    }
}

/// `tracing_subscriber`'s JSON format plus the correlation fields of the event's scope (the
/// innermost span that has each), written first on the line. Needs [`CorrelationLayer`].
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
        let mut found = Correlation::default();
        if let Some(scope) = ctx.event_scope() {
            for span in scope {
                let extensions = span.extensions();
                let Some(c) = extensions.get::<Correlation>() else {
                    continue;
                };
                for (mine, theirs) in found.values.iter_mut().zip(&c.values) {
                    if mine.is_none() {
                        mine.clone_from(theirs);
                    }
                }
                if found.values.iter().all(Option::is_some) {
                    break;
                }
            }
        }
        if found.is_empty() {
            return self.inner.format_event(ctx, writer, event);
        }
        let mut line = String::new();
        self.inner
            .format_event(ctx, Writer::new(&mut line), event)?;
        // The line is one JSON object: the fields go in right after its opening brace.
        let Some(rest) = line.strip_prefix('{') else {
            return writer.write_str(&line);
        };
        writer.write_char('{')?;
        for (name, value) in CORRELATION_FIELDS.iter().zip(&found.values) {
            if let Some(v) = value {
                let quoted = serde_json::to_string(v).map_err(|_| fmt::Error)?;
                write!(writer, "\"{name}\":{quoted},")?;
            }
        }
        writer.write_str(rest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;
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

    /// The services' JSON log setup, writing into `captured`.
    fn subscriber(captured: &Captured) -> impl Subscriber + Send + Sync {
        let writer = captured.clone();
        tracing_subscriber::registry().with(CorrelationLayer).with(
            tracing_subscriber::fmt::layer()
                .fmt_fields(JsonFields::new())
                .event_format(JsonWithCorrelation::new())
                .with_writer(move || writer.clone()),
        )
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
        tracing::subscriber::with_default(subscriber(&captured), || {
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
        tracing::subscriber::with_default(subscriber(&captured), || {
            tracing::info!("outside any span")
        });
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
    fn ids_recorded_after_the_span_starts_are_found_and_values_are_escaped() {
        let captured = Captured::default();
        tracing::subscriber::with_default(subscriber(&captured), || {
            let span = tracing::info_span!(
                "mqtt_message",
                request_id = "a\"quoted\"id",
                trace_id = tracing::field::Empty,
            );
            span.record(
                "trace_id",
                tracing::field::display("0af7651916cd43dd8448eb211c80319c"),
            );
            span.in_scope(|| tracing::warn!("late ids"));
        });
        let lines = lines(&captured);
        assert_eq!(lines[0]["trace_id"], "0af7651916cd43dd8448eb211c80319c");
        assert_eq!(lines[0]["request_id"], "a\"quoted\"id");
        assert!(lines[0].get("span_id").is_none());
    }
}
