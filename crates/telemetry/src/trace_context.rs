//! W3C trace context at the edges the HTTP propagator does not cover: a `traceparent` that
//! travels in an MQTT user property, a spool record or a feature vector, and the ids a span
//! records for its log lines.

use std::collections::HashMap;

use opentelemetry::trace::{SpanContext, TraceContextExt};
use tracing_opentelemetry::OpenTelemetrySpanExt;

const TRACEPARENT: &str = "traceparent";

/// `span_context` as a W3C `traceparent` header value.
pub fn traceparent(span_context: &SpanContext) -> String {
    format!(
        "00-{}-{}-{:02x}",
        span_context.trace_id(),
        span_context.span_id(),
        span_context.trace_flags().to_u8()
    )
}

/// The remote parent a `traceparent` value names, through the configured propagator; an
/// empty context when it is invalid or no propagator is installed.
pub fn context_from_traceparent(value: &str) -> opentelemetry::Context {
    let carrier = HashMap::from([(TRACEPARENT.to_owned(), value.to_owned())]);
    opentelemetry::global::get_text_map_propagator(|p| p.extract(&carrier))
}

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
    (sc.is_valid() && sc.is_sampled()).then(|| traceparent(sc))
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry::trace::{SpanId, TraceFlags, TraceId, TraceState};

    #[test]
    fn a_traceparent_is_written_as_the_w3c_header_reads_it() {
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        let sc = SpanContext::new(
            TraceId::from_hex("4bf92f3577b34da6a3ce929d0e0e4736").unwrap(),
            SpanId::from_hex("00f067aa0ba902b7").unwrap(),
            TraceFlags::SAMPLED,
            true,
            TraceState::default(),
        );
        let header = traceparent(&sc);
        assert_eq!(
            header,
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
        );
        let parent = context_from_traceparent(&header);
        assert_eq!(parent.span().span_context().trace_id(), sc.trace_id());
        assert!(!context_from_traceparent("garbage")
            .span()
            .span_context()
            .is_valid());
    }
}
