//! Access tokens: `aurum_authn::JwksVerifier::verify` against a JWKS served on 127.0.0.1
//! (a fresh RSA key, `kid` "k1"), which reaches the JWT header decoding, the header checks
//! (algorithm, `typ`, `kid`), the claims decoding and the claims -> `Principal` mapping.
//!
//! The first byte picks what the rest of the input is:
//! - 0: a whole token, as a client sends it. Properties: a token is accepted only if it is
//!   exactly what the key signs (RS256 signatures are deterministic, so the signature is
//!   recomputed and compared): nothing forged, re-encoded or unsigned gets in.
//! - 1: the claims (any bytes; `@I` stands for the fixture's issuer URL, whose port changes
//!   from run to run), signed here under a valid header: the claims decoder runs on fuzzed
//!   JSON. Properties: an accepted token's principal is exactly what its claims say
//!   (subject, tenant, roles, audiences, expiry, issuer, ...).
//! - 2: the header (any bytes), signed here over valid claims. Properties: an accepted token's
//!   header says RS256, `typ` at+jwt and `kid` k1.
#![no_main]

use std::sync::OnceLock;
use std::time::Duration;

use aurum_authn::testing::TestKey;
use aurum_authn::{JwksVerifier, Principal, VerifierSettings, API_AUDIENCE};
use aurum_domain::{Role, TenantId};
use aurum_fuzz::{runtime, substitute, DocServer};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey};
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use serde_json::{json, Value};

const KID: &str = "k1";
const LEEWAY_S: u64 = 30;

struct Fixture {
    rt: tokio::runtime::Runtime,
    issuer: String,
    encoding: EncodingKey,
    /// Sees only the fuzzer's own tokens: its cache of verified tokens never holds one signed
    /// here.
    raw: JwksVerifier,
    /// Sees the tokens signed here.
    signed: JwksVerifier,
    /// Valid claims, for the header mode.
    claims: Vec<u8>,
    _server: DocServer,
}

#[allow(clippy::expect_used)]
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let rt = runtime();
        let server = DocServer::start();
        let key = TestKey::generate(KID);
        server.set(
            "/jwks",
            json!({ "keys": [key.jwk()] }).to_string().into_bytes(),
        );
        server.set("/revocations", br#"{"entries":[]}"#.to_vec());
        let issuer = server.base().to_owned();
        let mut settings = VerifierSettings::new(
            url::Url::parse(&issuer).expect("issuer URL"),
            vec![API_AUDIENCE.to_owned()],
        );
        settings.leeway_s = LEEWAY_S;
        // One fetch at start; unknown kids never make the verifier fetch again.
        settings.min_refetch_interval = Duration::from_secs(24 * 3600);
        let (raw, signed) = rt.block_on(async {
            let raw = JwksVerifier::new(settings.clone()).expect("verifier");
            let signed = JwksVerifier::new(settings).expect("verifier");
            raw.refresh().await.expect("JWKS of the fixture");
            signed.refresh().await.expect("JWKS of the fixture");
            (raw, signed)
        });
        let now = chrono::Utc::now().timestamp();
        let claims = json!({
            "iss": issuer, "sub": "user-1", "aud": [API_AUDIENCE],
            "exp": now + 7 * 24 * 3600, "nbf": now - 60, "iat": now - 60,
            "jti": "3f1c", "client_id": "aurumai-web", "scope": "openid profile",
            "tenant": "acme", "roles": ["operator"],
        });
        Fixture {
            rt,
            issuer,
            encoding: EncodingKey::from_rsa_pem(&key.private_pem).expect("encoding key"),
            raw,
            signed,
            claims: claims.to_string().into_bytes(),
            _server: server,
        }
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let f = fixture();
    match mode % 3 {
        0 => {
            let Ok(token) = std::str::from_utf8(rest) else {
                return;
            };
            if let Ok(p) = f.rt.block_on(f.raw.verify(token)) {
                let (input, signature) = token.rsplit_once('.').unwrap_or_default();
                assert_eq!(
                    sign(f, input).as_deref(),
                    Some(signature),
                    "accepted a token the key did not sign: {token:?}"
                );
                check_principal_basics(&p);
            }
        }
        1 => {
            let header = json!({"alg": "RS256", "typ": "at+jwt", "kid": KID}).to_string();
            let claims = substitute(rest, &[(&b"@I"[..], f.issuer.as_str())]);
            let Some(token) = token(f, header.as_bytes(), &claims) else {
                return;
            };
            if let Ok(p) = f.rt.block_on(f.signed.verify(&token)) {
                check_principal_basics(&p);
                check_claims(f, &claims, &p);
            }
        }
        _ => {
            let Some(token) = token(f, rest, &f.claims) else {
                return;
            };
            if let Ok(p) = f.rt.block_on(f.signed.verify(&token)) {
                check_principal_basics(&p);
                let header: SeenHeader = match serde_json::from_slice(rest) {
                    Ok(v) => v,
                    Err(e) => panic!("accepted a token whose header is not a JWT header: {e}"),
                };
                assert_eq!(header.alg, "RS256");
                assert_eq!(header.kid, KID);
                let typ = header.typ.as_str().unwrap_or_default();
                assert!(
                    typ.eq_ignore_ascii_case("at+jwt")
                        || typ.eq_ignore_ascii_case("application/at+jwt"),
                    "{typ:?}"
                );
            }
        }
    }
});

fn sign(f: &Fixture, input: &str) -> Option<String> {
    jsonwebtoken::crypto::sign(input.as_bytes(), &f.encoding, Algorithm::RS256).ok()
}

fn token(f: &Fixture, header: &[u8], claims: &[u8]) -> Option<String> {
    let input = format!(
        "{}.{}",
        URL_SAFE_NO_PAD.encode(header),
        URL_SAFE_NO_PAD.encode(claims)
    );
    let signature = sign(f, &input)?;
    Some(format!("{input}.{signature}"))
}

fn check_principal_basics(p: &Principal) {
    assert!(!p.subject.is_empty());
    assert!(p.audiences.iter().any(|a| a == API_AUDIENCE), "{p:?}");
    let leeway = chrono::TimeDelta::seconds(LEEWAY_S as i64);
    let until = p.expires_at.checked_add_signed(leeway);
    assert!(
        until.is_none_or(|u| u >= chrono::Utc::now()),
        "expired: {p:?}"
    );
    if let Some(t) = &p.tenant {
        assert_eq!(TenantId::parse(t.as_str()).as_ref(), Ok(t));
    }
    assert!(p.scopes.iter().all(|s| !s.is_empty() && !s.contains(' ')));
}

/// What a verifier reads of a header and of claims, each field as any JSON value (`Null` when
/// absent). Read with types rather than as a `serde_json::Value` because serde_json skips the
/// members a type ignores without checking them (invalid UTF-8, lone surrogate escapes): an
/// accepted token's JSON need not be valid there.
#[derive(Deserialize, Default)]
#[serde(default)]
struct SeenHeader {
    alg: Value,
    typ: Value,
    kid: Value,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SeenClaims {
    iss: Value,
    sub: Value,
    aud: Value,
    exp: Value,
    iat: Value,
    jti: Value,
    client_id: Value,
    scope: Value,
    tenant: Value,
    roles: Value,
    sid: Value,
}

/// The principal says what the (accepted) claims say.
fn check_claims(f: &Fixture, claims: &[u8], p: &Principal) {
    let c: SeenClaims = match serde_json::from_slice(claims) {
        Ok(v) => v,
        Err(e) => panic!("accepted claims that are not JWT claims: {e}"),
    };
    let iss = c.iss.as_str().unwrap_or_default();
    assert!(
        iss == f.issuer || iss == format!("{}/", f.issuer),
        "iss {iss:?}"
    );
    assert_eq!(c.sub.as_str(), Some(p.subject.as_str()));
    assert_eq!(c.jti.as_str(), Some(p.token_id.as_str()));
    assert_eq!(c.client_id.as_str(), Some(p.client_id.as_str()));
    assert_eq!(c.exp.as_i64(), Some(p.expires_at.timestamp()));
    match &c.tenant {
        Value::Null => assert!(p.tenant.is_none()),
        t => assert_eq!(t.as_str(), p.tenant.as_ref().map(TenantId::as_str)),
    }
    let roles: Vec<Role> = c
        .roles
        .as_array()
        .map(|a| a.iter().filter_map(|r| r.as_str()?.parse().ok()).collect())
        .unwrap_or_default();
    assert_eq!(roles, p.roles);
    let audiences: Vec<&str> = match &c.aud {
        Value::String(a) => vec![a.as_str()],
        Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
        other => panic!("accepted aud {other:?}"),
    };
    assert_eq!(
        audiences,
        p.audiences.iter().map(String::as_str).collect::<Vec<_>>()
    );
    let scopes: Vec<&str> = c
        .scope
        .as_str()
        .unwrap_or_default()
        .split(' ')
        .filter(|s| !s.is_empty())
        .collect();
    assert_eq!(
        scopes,
        p.scopes.iter().map(String::as_str).collect::<Vec<_>>()
    );
    assert_eq!(c.sid.as_str(), p.session.as_deref());
    let issued = c
        .iat
        .as_i64()
        .and_then(|t| chrono::DateTime::<chrono::Utc>::from_timestamp(t, 0))
        .unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
    assert_eq!(issued, p.issued_at);
}
