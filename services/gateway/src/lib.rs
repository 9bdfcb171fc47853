//! AurumAI's API gateway: the only public entry (`/api/v1`). It verifies access tokens,
//! authorizes each route by role, pins the tenant and user from the token, limits request
//! rates, answers CORS, adds security headers, routes to ingestion, prediction and auth,
//! records every access to tenant data in a tamper-evident audit log, and serves the GDPR
//! export and the OpenAPI document.

pub mod app;
pub mod audit;
pub mod authz;
pub mod config;
pub mod gdpr;
pub mod metrics;
pub mod openapi;
pub mod proxy;
pub mod rate_limit;
pub mod routes;
pub mod security_headers;

pub use app::Application;
pub use config::GatewayConfig;
