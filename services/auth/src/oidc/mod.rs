//! The OpenID Connect provider's endpoints.

pub mod authorize;
pub mod client_auth;
pub mod discovery;
pub mod error;
pub mod introspect;
pub mod jwks;
pub mod logout;
pub mod revocations;
pub mod revoke;
pub mod token;
pub mod userinfo;

pub use error::OAuthError;

/// Scopes this provider knows.
pub const SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];
