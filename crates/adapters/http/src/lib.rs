//! actix-web plumbing every AurumAI service shares: request ids and trace context on every
//! request, RFC 9457 problem responses, body limits, health, readiness and metrics endpoints,
//! and HTTP metrics.

mod caller;
mod client_addr;
mod health;
mod http_metrics;
mod ops;
mod problem;
mod request_id;
mod server;
mod shutdown;

pub use caller::{Actor, Tenant, TENANT_HEADER, USER_HEADER};
pub use client_addr::{client_ip, TrustedProxies, TrustedProxyError};
pub use health::{healthz, readyz, Readiness};
pub use http_metrics::{metrics_endpoint, HttpMetrics};
pub use ops::{bind, ListenError, MetricsServer, Ops};
pub use problem::{json_config, payload_config, read_body, Problem};
pub use request_id::{request_context, RequestId};
pub use server::{start, RunningServer};
pub use shutdown::shutdown_signal;
