//! AurumAI auth: the platform's OpenID Connect provider. Users sign in with the authorization
//! code flow (PKCE), services with client credentials; tokens are RS256 JWTs verified by every
//! service against the published JWKS. Users, clients and keys are managed through `/v1`.

pub mod app;
pub mod bearer;
pub mod brute_force;
pub mod clients;
pub mod config;
pub mod crypto;
pub mod devices;
pub mod federation;
pub mod hash_gate;
pub mod keys;
pub mod metrics;
pub mod oidc;
pub mod routes;
pub mod security_events;
pub mod tokens;
pub mod users;

pub use app::{AppState, Application};
pub use config::AuthConfig;
