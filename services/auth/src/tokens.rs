//! Issuing and verifying JWTs per the platform's token contract: RS256, `kid` in every header,
//! access tokens typed `at+jwt`.

use std::sync::Arc;

use aurum_ports::auth::GrantStore;
use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::keys::{KeyError, KeyRing};

pub const ACCESS_TOKEN_TYP: &str = "at+jwt";
const LOGIN_FORM_TYP: &str = "aurum-login+jwt";
const LOGIN_FORM_AUD: &str = "aurumai-auth-login";
/// Audiences the auth service itself accepts on Bearer tokens.
pub const OWN_AUDIENCES: [&str; 2] = ["aurumai-api", "aurumai-auth"];

/// `aud`: one string or several.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    pub fn contains(&self, a: &str) -> bool {
        match self {
            Audience::One(s) => s == a,
            Audience::Many(v) => v.iter().any(|s| s == a),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    pub iss: String,
    pub sub: String,
    pub aud: Audience,
    pub exp: i64,
    pub iat: i64,
    pub nbf: i64,
    pub jti: String,
    pub client_id: String,
    pub scope: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(default)]
    pub roles: Vec<String>,
    /// The sign-in session, for user tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
}

impl AccessClaims {
    pub fn scopes(&self) -> impl Iterator<Item = &str> {
        self.scope.split_whitespace()
    }

    pub fn has_scope(&self, s: &str) -> bool {
        self.scopes().any(|x| x == s)
    }

    /// A user's token (the subject is a user id), as opposed to a service client's.
    pub fn user_id(&self) -> Option<Uuid> {
        if self.sub == self.client_id {
            return None;
        }
        Uuid::parse_str(&self.sub).ok()
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub auth_time: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub azp: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preferred_username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub roles: Option<Vec<String>>,
}

/// A pending authorization request, signed into the login form so any replica can finish it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginFormClaims {
    pub iss: String,
    pub aud: String,
    pub exp: i64,
    pub iat: i64,
    pub client_id: String,
    pub redirect_uri: String,
    pub scope: String,
    #[serde(default)]
    pub state: Option<String>,
    #[serde(default)]
    pub nonce: Option<String>,
    pub code_challenge: String,
    /// SHA-256 of the CSRF cookie this form was issued with (hex).
    pub csrf: String,
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("token is malformed or its signature, issuer, audience or lifetime is wrong: {0}")]
    Invalid(String),
    #[error("unknown signing key")]
    UnknownKey,
    #[error("wrong token type")]
    WrongType,
    #[error("token was revoked")]
    Revoked,
    #[error(transparent)]
    Key(#[from] KeyError),
    #[error("cannot check revocation: {0}")]
    Store(#[from] aurum_ports::StoreError),
}

/// Signs and verifies the service's tokens.
#[derive(Debug)]
pub struct Tokens {
    pub keys: Arc<KeyRing>,
    pub grants: Arc<dyn GrantStore>,
    pub issuer: String,
    pub leeway_s: u64,
}

impl Tokens {
    fn sign<T: Serialize>(&self, typ: &str, claims: &T) -> Result<String, TokenError> {
        let key = self.keys.signing_key()?;
        let mut header = Header::new(Algorithm::RS256);
        header.typ = Some(typ.to_owned());
        header.kid = Some(key.kid.clone());
        jsonwebtoken::encode(&header, claims, &key.encoding)
            .map_err(|e| TokenError::Invalid(e.to_string()))
    }

    pub fn sign_access(&self, claims: &AccessClaims) -> Result<String, TokenError> {
        self.sign(ACCESS_TOKEN_TYP, claims)
    }

    pub fn sign_id(&self, claims: &IdClaims) -> Result<String, TokenError> {
        self.sign("JWT", claims)
    }

    pub fn sign_login_form(&self, claims: &LoginFormClaims) -> Result<String, TokenError> {
        self.sign(LOGIN_FORM_TYP, claims)
    }

    /// Checks the signature with the header's `kid`, then the claims `validation` asks for,
    /// and the header `typ`.
    async fn decode<T: serde::de::DeserializeOwned>(
        &self,
        token: &str,
        typ: Option<&str>,
        mut validation: Validation,
    ) -> Result<T, TokenError> {
        let header =
            jsonwebtoken::decode_header(token).map_err(|e| TokenError::Invalid(e.to_string()))?;
        if header.alg != Algorithm::RS256 {
            return Err(TokenError::Invalid("algorithm must be RS256".into()));
        }
        if let Some(typ) = typ {
            if !header
                .typ
                .as_deref()
                .is_some_and(|t| t.eq_ignore_ascii_case(typ) || t == "application/at+jwt")
            {
                return Err(TokenError::WrongType);
            }
        }
        let kid = header.kid.ok_or(TokenError::UnknownKey)?;
        let key = self
            .keys
            .verification_key(&kid)
            .await
            .ok_or(TokenError::UnknownKey)?;
        validation.leeway = self.leeway_s;
        validation.set_issuer(&[&self.issuer]);
        validation.algorithms = vec![Algorithm::RS256];
        jsonwebtoken::decode::<T>(token, &key.decoding, &validation)
            .map(|d| d.claims)
            .map_err(|e| TokenError::Invalid(e.to_string()))
    }

    /// An access token presented to this service: audience `aurumai-api` or `aurumai-auth`.
    pub async fn verify_access(&self, token: &str) -> Result<AccessClaims, TokenError> {
        self.verify_access_for(token, Some(&OWN_AUDIENCES)).await
    }

    /// An access token of any audience (`None`) or one of `audiences`; not revoked.
    pub async fn verify_access_for(
        &self,
        token: &str,
        audiences: Option<&[&str]>,
    ) -> Result<AccessClaims, TokenError> {
        let mut v = Validation::new(Algorithm::RS256);
        v.validate_nbf = true;
        v.set_required_spec_claims(&["exp", "iss", "aud", "sub", "nbf"]);
        match audiences {
            Some(a) => v.set_audience(a),
            None => v.validate_aud = false,
        }
        let claims: AccessClaims = self.decode(token, Some(ACCESS_TOKEN_TYP), v).await?;
        if self.grants.access_token_revoked(&claims.jti).await? {
            return Err(TokenError::Revoked);
        }
        Ok(claims)
    }

    /// An access token for revocation: signature and issuer only (expired ones are fine).
    pub async fn access_token_for_revocation(
        &self,
        token: &str,
    ) -> Result<AccessClaims, TokenError> {
        let mut v = Validation::new(Algorithm::RS256);
        v.validate_exp = false;
        v.validate_aud = false;
        v.set_required_spec_claims(&["iss", "sub"]);
        self.decode(token, Some(ACCESS_TOKEN_TYP), v).await
    }

    /// An `id_token_hint`: our signature and issuer; it may have expired.
    pub async fn verify_id_token_hint(&self, token: &str) -> Result<IdClaims, TokenError> {
        let mut v = Validation::new(Algorithm::RS256);
        v.validate_exp = false;
        v.validate_aud = false;
        v.set_required_spec_claims(&["iss", "sub", "aud"]);
        let claims: IdClaims = self.decode(token, None, v).await?;
        Ok(claims)
    }

    pub async fn verify_login_form(&self, token: &str) -> Result<LoginFormClaims, TokenError> {
        let mut v = Validation::new(Algorithm::RS256);
        v.set_audience(&[LOGIN_FORM_AUD]);
        v.set_required_spec_claims(&["exp", "iss", "aud"]);
        self.decode(token, Some(LOGIN_FORM_TYP), v).await
    }

    pub fn login_form_audience() -> &'static str {
        LOGIN_FORM_AUD
    }

    /// `path` as the browser reaches it: below the issuer's own path, so that links and
    /// cookie paths work when the service is public under a prefix (`https://host/auth`
    /// behind the gateway) as well as at a host's root.
    pub fn public_path(&self, path: &str) -> String {
        format!("{}{path}", issuer_path(&self.issuer))
    }
}

/// The path of an issuer URL without its trailing slash: `""` for `https://host` and
/// `https://host/`, `"/auth"` for `https://host/auth`.
pub fn issuer_path(issuer: &str) -> String {
    url::Url::parse(issuer)
        .map(|u| u.path().trim_end_matches('/').to_owned())
        .unwrap_or_default()
}

pub fn timestamp(t: DateTime<Utc>) -> i64 {
    t.timestamp()
}

#[cfg(test)]
mod tests {
    use super::issuer_path;

    #[test]
    fn the_issuers_path_prefixes_public_paths() {
        assert_eq!(issuer_path("https://api.example.com"), "");
        assert_eq!(issuer_path("https://api.example.com/"), "");
        assert_eq!(issuer_path("http://127.0.0.1:8083"), "");
        assert_eq!(issuer_path("https://api.example.com/auth"), "/auth");
        assert_eq!(issuer_path("https://api.example.com/auth/"), "/auth");
    }
}
