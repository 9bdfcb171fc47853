//! A real token issuer for tests: RSA keys generated with OpenSSL, a JWKS served over HTTP on
//! a free port, and access tokens minted per the platform's token contract.
//!
//! It is the smallest issuer that satisfies the contract, for testing verifiers and the
//! services that use them; the auth service is the issuer in production.

use std::net::TcpListener;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use actix_web::{web, App, HttpResponse, HttpServer};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Map, Value};
use url::Url;

/// An RSA signing key with its key id.
#[derive(Clone)]
pub struct TestKey {
    pub kid: String,
    pub private_pem: Vec<u8>,
    pub public_pem: Vec<u8>,
    n: String,
    e: String,
}

impl std::fmt::Debug for TestKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestKey").field("kid", &self.kid).finish()
    }
}

impl TestKey {
    /// A fresh 2048-bit RSA key.
    pub fn generate(kid: &str) -> Self {
        let rsa = openssl::rsa::Rsa::generate(2048).expect("RSA key generation");
        let b64 = |b: &openssl::bn::BigNumRef| URL_SAFE_NO_PAD.encode(b.to_vec());
        Self {
            kid: kid.to_owned(),
            private_pem: rsa.private_key_to_pem().expect("private PEM"),
            public_pem: rsa.public_key_to_pem().expect("public PEM"),
            n: b64(rsa.n()),
            e: b64(rsa.e()),
        }
    }

    /// The key's public JWK.
    pub fn jwk(&self) -> Value {
        json!({"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.kid, "n": self.n, "e": self.e})
    }

    /// Signs `claims` with RS256 under this key's `kid` and `typ: at+jwt`.
    pub fn sign(&self, claims: &Map<String, Value>) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(self.kid.clone());
        header.typ = Some("at+jwt".into());
        self.sign_with(&header, claims)
    }

    /// Signs with an arbitrary RS256 header.
    pub fn sign_with(&self, header: &Header, claims: &Map<String, Value>) -> String {
        let key = EncodingKey::from_rsa_pem(&self.private_pem).expect("encoding key");
        encode(header, claims, &key).expect("sign")
    }
}

/// An issuer serving `/jwks` and `/.well-known/openid-configuration` on 127.0.0.1 (free port).
#[derive(Debug, Clone)]
pub struct TestIssuer {
    pub issuer: Url,
    state: Arc<IssuerState>,
}

#[derive(Debug)]
struct IssuerState {
    keys: RwLock<Vec<TestKey>>,
    jwks_hits: AtomicUsize,
    available: AtomicBool,
    /// The revocation feed's entries, in order.
    revoked: RwLock<Vec<Value>>,
}

impl TestIssuer {
    /// Starts an issuer with one fresh key (`kid` "k1") on a free port (inside a tokio runtime).
    pub async fn start() -> Self {
        Self::start_with(vec![TestKey::generate("k1")]).await
    }

    pub async fn start_with(keys: Vec<TestKey>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a free port");
        let port = listener.local_addr().expect("local addr").port();
        let issuer = Url::parse(&format!("http://127.0.0.1:{port}")).expect("issuer url");
        let state = Arc::new(IssuerState {
            keys: RwLock::new(keys),
            jwks_hits: AtomicUsize::new(0),
            available: AtomicBool::new(true),
            revoked: RwLock::new(Vec::new()),
        });
        let data = web::Data::from(state.clone());
        let issuer_str = issuer.as_str().trim_end_matches('/').to_owned();
        let server = HttpServer::new(move || {
            let issuer_str = issuer_str.clone();
            App::new()
                .app_data(data.clone())
                .route("/jwks", web::get().to(jwks))
                .route("/revocations", web::get().to(revocations))
                .route(
                    "/.well-known/openid-configuration",
                    web::get().to(move || {
                        let issuer_str = issuer_str.clone();
                        async move {
                            HttpResponse::Ok().json(json!({
                                "issuer": issuer_str,
                                "jwks_uri": format!("{issuer_str}/jwks"),
                                "id_token_signing_alg_values_supported": ["RS256"],
                            }))
                        }
                    }),
                )
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .expect("listen")
        .run();
        tokio::spawn(server);
        Self { issuer, state }
    }

    /// Puts a token's `jti` on the revocation feed, as the auth service's `/revoke` does.
    pub fn revoke_token(&self, jti: &str) {
        self.push_revocation("token", jti, None);
    }

    /// Revokes every token of `sub` issued until now, as disabling a user does.
    pub fn revoke_subject(&self, sub: &str) {
        self.push_revocation("subject", sub, Some(chrono::Utc::now()));
    }

    fn push_revocation(
        &self,
        kind: &str,
        value: &str,
        before: Option<chrono::DateTime<chrono::Utc>>,
    ) {
        if let Ok(mut feed) = self.state.revoked.write() {
            let seq = feed.len() + 1;
            feed.push(json!({
                "seq": seq,
                "kind": kind,
                "value": value,
                "issued_before": before,
                "expires_at": chrono::Utc::now() + chrono::TimeDelta::hours(1),
            }));
        }
    }

    /// The issuer as it appears in `iss` (no trailing slash).
    pub fn iss(&self) -> String {
        self.issuer.as_str().trim_end_matches('/').to_owned()
    }

    pub fn jwks_url(&self) -> Url {
        crate::verifier::default_jwks_url(&self.issuer)
    }

    /// The key that signs new tokens (the first published one).
    pub fn current_key(&self) -> TestKey {
        self.state.keys.read().expect("keys")[0].clone()
    }

    /// Publishes these keys instead (rotation); the first one signs from now on.
    pub fn set_keys(&self, keys: Vec<TestKey>) {
        *self.state.keys.write().expect("keys") = keys;
    }

    /// While unavailable the JWKS endpoint answers 503.
    pub fn set_available(&self, available: bool) {
        self.state.available.store(available, Ordering::SeqCst);
    }

    /// How many times the JWKS was requested.
    pub fn jwks_hits(&self) -> usize {
        self.state.jwks_hits.load(Ordering::SeqCst)
    }

    /// Claims of a valid user access token for the public API, valid for 300 s.
    pub fn claims(&self, sub: &str, tenant: Option<&str>, roles: &[&str]) -> Map<String, Value> {
        let now = chrono::Utc::now().timestamp();
        let mut c = Map::new();
        c.insert("iss".into(), json!(self.iss()));
        c.insert("sub".into(), json!(sub));
        c.insert("aud".into(), json!([crate::API_AUDIENCE]));
        c.insert("exp".into(), json!(now + 300));
        c.insert("iat".into(), json!(now));
        c.insert("nbf".into(), json!(now));
        c.insert("jti".into(), json!(uuid::Uuid::new_v4().to_string()));
        c.insert("client_id".into(), json!("aurumai-web"));
        c.insert("scope".into(), json!("openid profile"));
        if let Some(t) = tenant {
            c.insert("tenant".into(), json!(t));
        }
        c.insert("roles".into(), json!(roles));
        c
    }

    /// A signed user token for `sub` in `tenant` with `roles`.
    pub fn token(&self, sub: &str, tenant: &str, roles: &[&str]) -> String {
        self.current_key()
            .sign(&self.claims(sub, Some(tenant), roles))
    }

    /// Signs arbitrary claims with the current key.
    pub fn sign(&self, claims: &Map<String, Value>) -> String {
        self.current_key().sign(claims)
    }
}

async fn jwks(state: web::Data<IssuerState>) -> HttpResponse {
    state.jwks_hits.fetch_add(1, Ordering::SeqCst);
    if !state.available.load(Ordering::SeqCst) {
        return HttpResponse::ServiceUnavailable().finish();
    }
    let keys: Vec<Value> = state
        .keys
        .read()
        .map(|k| k.iter().map(TestKey::jwk).collect())
        .unwrap_or_default();
    HttpResponse::Ok().json(json!({ "keys": keys }))
}

async fn revocations(
    state: web::Data<IssuerState>,
    query: web::Query<std::collections::HashMap<String, String>>,
) -> HttpResponse {
    let after: u64 = query.get("after").and_then(|a| a.parse().ok()).unwrap_or(0);
    let entries: Vec<Value> = state
        .revoked
        .read()
        .map(|f| {
            f.iter()
                .filter(|e| e["seq"].as_u64().is_some_and(|s| s > after))
                .cloned()
                .collect()
        })
        .unwrap_or_default();
    HttpResponse::Ok().json(json!({ "entries": entries }))
}

/// A token with `alg: none` and no signature, as an attacker would send it.
pub fn unsigned_token(kid: &str, claims: &Map<String, Value>) -> String {
    let header = json!({"alg": "none", "typ": "at+jwt", "kid": kid});
    format!(
        "{}.{}.",
        URL_SAFE_NO_PAD.encode(header.to_string()),
        URL_SAFE_NO_PAD.encode(Value::Object(claims.clone()).to_string())
    )
}

/// An HS256 token whose secret is the issuer's public key in PEM (algorithm confusion).
pub fn hs256_with_public_key(key: &TestKey, claims: &Map<String, Value>) -> String {
    let mut header = Header::new(Algorithm::HS256);
    header.kid = Some(key.kid.clone());
    header.typ = Some("at+jwt".into());
    encode(&header, claims, &EncodingKey::from_secret(&key.public_pem)).expect("sign")
}
