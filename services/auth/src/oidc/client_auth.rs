//! Form parameters of the OAuth endpoints and client authentication (`client_secret_basic`,
//! `client_secret_post`, or none for public clients).

use actix_web::{web, HttpRequest};
use aurum_ports::auth::ClientRecord;
use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;

use super::OAuthError;
use crate::app::AppState;
use crate::crypto;
use crate::security_events::{EventKind, Origin, Subject};

/// `application/x-www-form-urlencoded` parameters; a repeated parameter is refused
/// (RFC 6749 §3.1) and empty values count as absent.
#[derive(Debug, Default, Clone)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(raw: &[u8]) -> Result<Self, OAuthError> {
        let mut out: Vec<(String, String)> = Vec::new();
        for (k, v) in url::form_urlencoded::parse(raw) {
            if v.is_empty() {
                continue;
            }
            if out.iter().any(|(x, _)| *x == k) {
                return Err(OAuthError::invalid_request(format!(
                    "parameter {k} is repeated"
                )));
            }
            out.push((k.into_owned(), v.into_owned()));
        }
        Ok(Self(out))
    }

    pub fn from_query(req: &HttpRequest) -> Result<Self, OAuthError> {
        Self::parse(req.query_string().as_bytes())
    }

    /// A form body; the content type must say so.
    pub fn from_form(req: &HttpRequest, body: &web::Bytes) -> Result<Self, OAuthError> {
        let ct = req
            .headers()
            .get(actix_web::http::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        if !ct
            .to_ascii_lowercase()
            .starts_with("application/x-www-form-urlencoded")
        {
            return Err(OAuthError::invalid_request(
                "the body must be application/x-www-form-urlencoded",
            ));
        }
        Self::parse(body)
    }

    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(x, _)| x == k).map(|(_, v)| v.as_str())
    }

    pub fn require(&self, k: &str) -> Result<&str, OAuthError> {
        self.get(k)
            .ok_or_else(|| OAuthError::invalid_request(format!("{k} is required")))
    }
}

/// Credentials a client presented.
#[derive(Debug)]
struct Presented {
    client_id: String,
    secret: Option<String>,
}

fn presented(req: &HttpRequest, p: &Params) -> Result<Option<Presented>, OAuthError> {
    let basic = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("basic"))
        .map(|(_, b)| b.trim().to_owned());
    if let Some(b) = basic {
        if p.get("client_secret").is_some() {
            return Err(OAuthError::invalid_request(
                "use one client authentication method, not two",
            ));
        }
        let bad = || OAuthError::invalid_client("malformed Basic credentials");
        let raw = STANDARD.decode(b).map_err(|_| bad())?;
        let text = String::from_utf8(raw).map_err(|_| bad())?;
        let (id, secret) = text.split_once(':').ok_or_else(bad)?;
        // RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
        let decode = |s: &str| {
            url::form_urlencoded::parse(format!("x={s}").as_bytes())
                .next()
                .map(|(_, v)| v.into_owned())
                .unwrap_or_default()
        };
        let id = decode(id);
        if let Some(form_id) = p.get("client_id") {
            if form_id != id {
                return Err(OAuthError::invalid_request(
                    "client_id differs from the authenticated client",
                ));
            }
        }
        return Ok(Some(Presented {
            client_id: id,
            secret: Some(decode(secret)),
        }));
    }
    Ok(p.get("client_id").map(|id| Presented {
        client_id: id.to_owned(),
        secret: p.get("client_secret").map(str::to_owned),
    }))
}

/// Authenticates the calling client. Confidential clients must prove their secret; public
/// clients are accepted by id only where `allow_public` (the code flow with PKCE, revocation).
pub async fn authenticate(
    state: &AppState,
    req: &HttpRequest,
    p: &Params,
    allow_public: bool,
) -> Result<ClientRecord, OAuthError> {
    let origin = Origin::of(req, &state.settings.trusted_proxies);
    let Some(creds) = presented(req, p)? else {
        return Err(OAuthError::invalid_client(
            "client authentication is required",
        ));
    };
    let client = match state.clients.client(&creds.client_id).await {
        Ok(c) => c,
        Err(e) => return Err(OAuthError::store(&e)),
    };
    let Some(client) = client else {
        // No argon2 for an unknown client: client ids are not secrets, and a flood of made-up
        // ids must cost next to nothing.
        return Err(refuse(
            state,
            &creds.client_id,
            &origin,
            "unknown client or wrong credentials",
        )
        .await);
    };
    match (&client.secret_hash, creds.secret.clone()) {
        (Some(hash), Some(secret)) => {
            let hash = hash.clone();
            let ok = state
                .hashes
                .run(move || crypto::verify_secret(&secret, &hash))
                .await
                .map_err(|_| OAuthError::busy())?;
            if !ok {
                return Err(refuse(
                    state,
                    &creds.client_id,
                    &origin,
                    "unknown client or wrong credentials",
                )
                .await);
            }
        }
        (Some(_), None) => {
            return Err(refuse(
                state,
                &creds.client_id,
                &origin,
                "this client must authenticate with its secret",
            )
            .await)
        }
        (None, Some(_)) => {
            return Err(refuse(
                state,
                &creds.client_id,
                &origin,
                "a public client has no secret",
            )
            .await)
        }
        (None, None) if !allow_public => {
            return Err(refuse(
                state,
                &creds.client_id,
                &origin,
                "a public client cannot use this endpoint",
            )
            .await)
        }
        (None, None) => {}
    }
    Ok(client)
}

async fn refuse(state: &AppState, client_id: &str, origin: &Origin, why: &str) -> OAuthError {
    state
        .events
        .record(
            EventKind::InvalidClientAuth,
            Subject {
                client_id: Some(client_id.chars().take(100).collect()),
                ..Subject::default()
            },
            origin,
        )
        .await;
    OAuthError::invalid_client(why)
}
