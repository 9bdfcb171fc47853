//! Verification of AurumAI access tokens (the platform's token contract).
//!
//! Access tokens are RS256 JWTs with a `kid` and `typ: at+jwt`, issued by the auth service and
//! verified against its JWKS (`{issuer}/jwks`). [`JwksVerifier`] caches one decoding key per
//! `kid`; an unknown `kid` makes it fetch the JWKS again, at most once per
//! `min_refetch_interval`, so a flood of made-up key ids cannot hammer the issuer.
//!
//! Services use [`JwksVerifier::verify`] on the value of [`bearer_token`], or take a
//! [`Principal`] as an actix extractor once the verifier is registered as app data.

mod bearer;
mod client_credentials;
mod error;
mod guard;
mod principal;
mod revocations;
mod verified_cache;
mod verifier;

#[cfg(feature = "testing")]
pub mod testing;

pub use bearer::{bearer_token, parse_bearer};
pub use client_credentials::{ClientCredentialsSettings, ServiceTokens, TokenError};
pub use error::AuthnError;
pub use guard::{declared, require_token, Access, TokenGuard};
pub use principal::{Principal, TenantRequired};
pub use verifier::{JwksVerifier, VerifierSettings};

/// The audience of user tokens for the public API.
pub const API_AUDIENCE: &str = "aurumai-api";
