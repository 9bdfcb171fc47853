//! One call sets up a service's observability: JSON logs (with request id and trace id),
//! OpenTelemetry traces exported over OTLP when an endpoint is configured, W3C trace-context
//! propagation, and the Prometheus registry the service's metrics live in.

use aurum_config::{LogFormat, OtlpProtocol, TelemetrySettings};
use opentelemetry::trace::TracerProvider as _;
use opentelemetry::KeyValue;
use opentelemetry_otlp::{WithExportConfig, WithHttpConfig as _};
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

mod certificates;
mod json_log;
mod sampler;
mod service_main;
mod trace_context;

pub use certificates::{
    earliest_not_after, register_certificate_expiry, CertificateExpiry, CertificateMetricError,
    PemError,
};
pub use json_log::{CorrelationLayer, JsonWithCorrelation, CORRELATION_FIELDS};
pub use prometheus;
pub use sampler::{RootDecision, SamplerError, SamplerSpec};
pub use service_main::run_service;
pub use trace_context::{
    context_from_traceparent, current_traceparent, record_trace_ids, traceparent,
};

#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    #[error("invalid log filter {0:?}: {1}")]
    Filter(String, String),
    #[error("cannot build the OTLP exporter: {0}")]
    Exporter(String),
    #[error("a global subscriber is already set: {0}")]
    AlreadySet(String),
    #[error(transparent)]
    Sampler(#[from] SamplerError),
    #[error("OTEL_EXPORTER_OTLP_PROTOCOL={0:?} is not supported (grpc or http/protobuf)")]
    Protocol(String),
}

/// Keeps the tracer provider alive; dropping it flushes pending spans.
#[derive(Debug)]
pub struct TelemetryGuard {
    provider: SdkTracerProvider,
    pub registry: prometheus::Registry,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        if let Err(e) = self.provider.shutdown() {
            tracing::debug!(error = %e, "tracer provider shutdown");
        }
    }
}

/// The OTLP endpoint: the service's config wins, then the standard variable.
/// `OTEL_SDK_DISABLED=true` turns export off whatever is configured.
fn otlp_endpoint(settings: &TelemetrySettings) -> Option<String> {
    if std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.trim().eq_ignore_ascii_case("true")) {
        return None;
    }
    settings
        .otlp_endpoint
        .clone()
        .or_else(|| std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok())
        .filter(|s| !s.is_empty())
}

/// `OTEL_EXPORTER_OTLP_PROTOCOL` (or its traces-only variant) wins over the config; a value
/// this exporter cannot speak (`http/json`) is refused rather than silently replaced.
fn protocol(settings: &TelemetrySettings) -> Result<OtlpProtocol, TelemetryError> {
    let var = std::env::var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        .or_else(|_| std::env::var("OTEL_EXPORTER_OTLP_PROTOCOL"));
    match var.as_deref().map(str::trim) {
        Err(_) | Ok("") => Ok(settings.otlp_protocol),
        Ok("grpc") => Ok(OtlpProtocol::Grpc),
        Ok("http/protobuf") => Ok(OtlpProtocol::HttpProtobuf),
        Ok(other) => Err(TelemetryError::Protocol(other.to_owned())),
    }
}

/// Builds the tracer provider. Trace ids exist (for logs and propagation) even when nothing
/// is exported. Must be called inside a tokio runtime (the gRPC exporter needs one).
pub fn tracer_provider(
    service: &str,
    settings: &TelemetrySettings,
) -> Result<SdkTracerProvider, TelemetryError> {
    let service = std::env::var("OTEL_SERVICE_NAME").unwrap_or_else(|_| service.to_owned());
    let resource = Resource::builder()
        .with_service_name(service)
        .with_attribute(KeyValue::new("service.namespace", "aurumai"))
        .build();
    let sampler = SamplerSpec::from_env(settings.sampling_ratio)?.build();
    let mut builder = SdkTracerProvider::builder()
        .with_resource(resource)
        .with_sampler(sampler);
    if let Some(endpoint) = otlp_endpoint(settings) {
        let exporter = match protocol(settings)? {
            OtlpProtocol::Grpc => opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .with_endpoint(endpoint)
                .build(),
            OtlpProtocol::HttpProtobuf => {
                // A programmatic HTTP endpoint is used as is: add the signal path.
                let endpoint = if endpoint.ends_with("/v1/traces") {
                    endpoint
                } else {
                    format!("{}/v1/traces", endpoint.trim_end_matches('/'))
                };
                opentelemetry_otlp::SpanExporter::builder()
                    .with_http()
                    .with_endpoint(endpoint)
                    .with_headers(Default::default())
                    .build()
            }
        }
        .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
        builder = builder.with_batch_exporter(exporter);
    }
    Ok(builder.build())
}

/// Sets up logs, traces and metrics for `service`. Call once, early in `main`, inside the
/// tokio runtime.
pub fn init(service: &str, settings: &TelemetrySettings) -> Result<TelemetryGuard, TelemetryError> {
    let filter = EnvFilter::try_new(&settings.log_level)
        .map_err(|e| TelemetryError::Filter(settings.log_level.clone(), e.to_string()))?;
    let provider = tracer_provider(service, settings)?;
    let tracer = provider.tracer(service.to_owned());
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    opentelemetry::global::set_tracer_provider(provider.clone());

    let otel = tracing_opentelemetry::layer().with_tracer(tracer);
    let registry = tracing_subscriber::registry().with(filter).with(otel);
    let result = match settings.log_format {
        LogFormat::Json => registry
            .with(CorrelationLayer)
            .with(
                tracing_subscriber::fmt::layer()
                    .fmt_fields(tracing_subscriber::fmt::format::JsonFields::new())
                    .event_format(JsonWithCorrelation::new())
                    .with_writer(std::io::stdout),
            )
            .try_init(),
        LogFormat::Pretty => registry
            .with(tracing_subscriber::fmt::layer().with_writer(std::io::stderr))
            .try_init(),
    };
    result.map_err(|e| TelemetryError::AlreadySet(e.to_string()))?;
    Ok(TelemetryGuard {
        provider,
        registry: prometheus::Registry::new(),
    })
}
