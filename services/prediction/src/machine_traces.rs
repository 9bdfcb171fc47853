//! Prediction's part of a device's trace. A feature vector may carry the `traceparent` of a
//! sampled message behind it (ingestion puts it there); scoring that vector and any alert it
//! raises are recorded in a span of that trace, so device -> ingestion -> prediction -> alert
//! reads as one trace in Jaeger. The batch request itself stays in its own trace, linked.

use std::collections::HashMap;

use aurum_domain::prediction::{AlertCategory, Prediction};
use aurum_domain::{MachineId, TenantId};
use aurum_proto::features::MachineFeatures;
use opentelemetry::trace::TraceContextExt;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The open spans of one batch, by machine; closed when dropped.
#[derive(Debug, Default)]
pub struct MachineTraces {
    spans: HashMap<(TenantId, MachineId), tracing::Span>,
}

impl MachineTraces {
    /// One span for every vector with a valid, sampled `traceparent`; the others cost a
    /// field check.
    pub fn open(vectors: &[MachineFeatures]) -> Self {
        let mut spans = HashMap::new();
        let batch = tracing::Span::current()
            .context()
            .span()
            .span_context()
            .clone();
        for v in vectors {
            let Some(tp) = v.traceparent.as_deref() else {
                continue;
            };
            let parent = aurum_telemetry::context_from_traceparent(tp);
            let remote = parent.span().span_context().clone();
            if !remote.is_valid() || !remote.is_sampled() {
                continue;
            }
            let span = tracing::info_span!(
                parent: None,
                "score_machine",
                aurum.tenant_id = %v.tenant_id,
                aurum.machine_id = %v.machine_id,
                aurum.risk_score = tracing::field::Empty,
                aurum.rul_hours = tracing::field::Empty,
                aurum.anomaly_score = tracing::field::Empty,
                trace_id = tracing::field::Empty,
                span_id = tracing::field::Empty,
            );
            let _ = span.set_parent(parent);
            if batch.is_valid() {
                span.add_link(batch.clone());
            }
            aurum_telemetry::record_trace_ids(&span);
            spans.insert((v.tenant_id.clone(), v.machine_id.clone()), span);
        }
        Self { spans }
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    fn span(&self, tenant: &TenantId, machine: &MachineId) -> Option<&tracing::Span> {
        self.spans.get(&(tenant.clone(), machine.clone()))
    }

    pub fn record_prediction(&self, tenant: &TenantId, machine: &MachineId, p: &Prediction) {
        if let Some(span) = self.span(tenant, machine) {
            span.record("aurum.risk_score", p.risk_score);
            span.record("aurum.rul_hours", p.rul_hours);
            span.record("aurum.anomaly_score", p.anomaly_score);
        }
    }

    /// An alert raised, updated or cleared for the machine, as an event of its span (and a
    /// log line carrying the device's trace id).
    pub fn record_alert(
        &self,
        tenant: &TenantId,
        machine: &MachineId,
        category: AlertCategory,
        change: &'static str,
    ) {
        if let Some(span) = self.span(tenant, machine) {
            span.in_scope(|| {
                tracing::info!(
                    alert.category = category.as_str(),
                    alert.change = change,
                    machine = %machine,
                    "alert {change}"
                );
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_without_a_sampled_traceparent_get_no_span() {
        let vector = |tp: Option<&str>| -> MachineFeatures {
            serde_json::from_value(serde_json::json!({
                "tenant_id": "acme",
                "machine_id": "TRUCK-1",
                "machine_type": "haul_truck",
                "features": {"window_end": "2026-01-01T00:00:00Z", "metrics": {}},
                "traceparent": tp,
            }))
            .unwrap()
        };
        let traces = MachineTraces::open(&[
            vector(None),
            vector(Some("not a traceparent")),
            // Valid but not sampled (flags 00).
            vector(Some(
                "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00",
            )),
        ]);
        assert!(traces.is_empty());
    }

    #[test]
    fn a_sampled_traceparent_opens_a_span_for_its_machine() {
        opentelemetry::global::set_text_map_propagator(
            opentelemetry_sdk::propagation::TraceContextPropagator::new(),
        );
        let vector: MachineFeatures = serde_json::from_value(serde_json::json!({
            "tenant_id": "acme",
            "machine_id": "TRUCK-1",
            "machine_type": "haul_truck",
            "features": {"window_end": "2026-01-01T00:00:00Z", "metrics": {}},
            "traceparent": "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        }))
        .unwrap();
        let traces = MachineTraces::open(&[vector]);
        assert!(!traces.is_empty());
        let (tenant, machine) = (
            TenantId::parse("acme").unwrap(),
            MachineId::parse("TRUCK-1").unwrap(),
        );
        assert!(traces.span(&tenant, &machine).is_some());
    }
}
