//! JWKS documents: `aurum_authn::JwksVerifier::refresh` fetches the fuzzed document from a
//! server on 127.0.0.1 and builds its key set (the verifier's private JWKS parsing and key
//! selection); then a token signed by the fixture's key (`kid` "k1") is verified against it.
//!
//! The input is the document; `@N` and `@E` in it stand for the fixture key's modulus and
//! exponent (base64url), so seeds can name the real key although it is made at start-up.
//!
//! Properties: a document is accepted exactly when it has the contract's shape (RFC 7517, read
//! here with types of this target's own); when one is accepted, the key set holds exactly one
//! key per `kid` of the usable entries (RSA, RS256 or no `alg`, `sig` or no `use`, with
//! decodable `n` and `e`; a later entry for a `kid` replaces an earlier one); the token
//! verifies when the set's "k1" is the fixture key, is refused as signed by an unknown key
//! when the set has no "k1", and is never accepted under another key.
#![no_main]

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use aurum_authn::testing::TestKey;
use aurum_authn::{AuthnError, JwksVerifier, VerifierSettings, API_AUDIENCE};
use aurum_fuzz::{runtime, substitute, DocServer};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::DecodingKey;
use libfuzzer_sys::fuzz_target;
use serde::Deserialize;
use serde_json::{json, Map};

const KID: &str = "k1";

struct Fixture {
    rt: tokio::runtime::Runtime,
    server: DocServer,
    n: String,
    e: String,
    verifier: JwksVerifier,
    token: String,
}

#[allow(clippy::expect_used)]
fn fixture() -> &'static Fixture {
    static FIXTURE: OnceLock<Fixture> = OnceLock::new();
    FIXTURE.get_or_init(|| {
        let rt = runtime();
        let server = DocServer::start();
        let key = TestKey::generate(KID);
        let jwk = key.jwk();
        let part = |name: &str| jwk[name].as_str().expect("the test key's JWK").to_owned();
        server.set("/revocations", br#"{"entries":[]}"#.to_vec());
        let issuer = server.base().to_owned();
        let mut settings = VerifierSettings::new(
            url::Url::parse(&issuer).expect("issuer URL"),
            vec![API_AUDIENCE.to_owned()],
        );
        // Only `refresh` fetches: a missing kid never makes the verifier fetch on its own.
        settings.min_refetch_interval = Duration::from_secs(24 * 3600);
        let verifier = rt.block_on(async { JwksVerifier::new(settings).expect("verifier") });
        let now = chrono::Utc::now().timestamp();
        let mut claims = Map::new();
        for (k, v) in [
            ("iss", json!(issuer)),
            ("sub", json!("user-1")),
            ("aud", json!([API_AUDIENCE])),
            ("exp", json!(now + 7 * 24 * 3600)),
            ("nbf", json!(now - 60)),
            ("iat", json!(now - 60)),
            ("jti", json!("9d2e")),
            ("client_id", json!("aurumai-web")),
            ("tenant", json!("acme")),
            ("roles", json!(["viewer"])),
        ] {
            claims.insert(k.to_owned(), v);
        }
        Fixture {
            rt,
            token: key.sign(&claims),
            n: part("n"),
            e: part("e"),
            server,
            verifier,
        }
    })
}

/// The shape the token contract gives a JWKS (RFC 7517), independently of the verifier's.
#[derive(Deserialize)]
struct ContractSet {
    keys: Vec<ContractKey>,
}

#[derive(Deserialize)]
struct ContractKey {
    kty: String,
    kid: Option<String>,
    alg: Option<String>,
    #[serde(rename = "use")]
    use_: Option<String>,
    n: Option<String>,
    e: Option<String>,
}

fuzz_target!(|data: &[u8]| {
    let f = fixture();
    let doc = substitute(
        data,
        &[(&b"@N"[..], f.n.as_str()), (&b"@E"[..], f.e.as_str())],
    );
    f.server.set("/jwks", doc.clone());
    let refreshed = f.rt.block_on(f.verifier.refresh());
    let count = match refreshed {
        Ok(count) => count,
        Err(e) => {
            assert!(matches!(e, AuthnError::JwksUnavailable(_)), "{e:?}");
            assert!(
                serde_json::from_slice::<ContractSet>(&doc).is_err(),
                "a JWKS of the contract's shape was refused: {e}"
            );
            return;
        }
    };

    // Read with the contract's own shape rather than as a `serde_json::Value`: serde_json
    // skips the members a type ignores without checking them (invalid UTF-8, lone surrogate
    // escapes), so an accepted document need not be valid JSON there.
    let set: ContractSet = match serde_json::from_slice(&doc) {
        Ok(v) => v,
        Err(e) => panic!("accepted a JWKS not of the contract's shape: {e}"),
    };
    let expected = usable_keys(&set.keys);
    assert_eq!(count, expected.len(), "key count");

    let outcome = f.rt.block_on(f.verifier.verify(&f.token));
    match expected.get(KID) {
        None => assert!(
            matches!(outcome, Err(AuthnError::UnknownKey)),
            "no {KID} in the set, yet {outcome:?}"
        ),
        Some((n, e)) if *n == f.n && *e == f.e => {
            assert!(outcome.is_ok(), "{KID} is the signing key, yet {outcome:?}")
        }
        Some((n, e)) => {
            let same = |a: &str, b: &str| {
                let strip = |s: &str| {
                    let bytes = URL_SAFE_NO_PAD.decode(s).unwrap_or_default();
                    let first = bytes.iter().position(|b| *b != 0).unwrap_or(bytes.len());
                    bytes[first..].to_vec()
                };
                strip(a) == strip(b)
            };
            if !(same(n, &f.n) && same(e, &f.e)) {
                assert!(outcome.is_err(), "verified under another key: {n} {e}");
            }
        }
    }
});

/// kid -> (n, e) of the entries a verifier may use, the last usable one of a kid winning.
fn usable_keys(entries: &[ContractKey]) -> HashMap<String, (String, String)> {
    let mut keys = HashMap::new();
    for k in entries {
        let usable = k.kty == "RSA"
            && k.alg.as_deref().is_none_or(|a| a == "RS256")
            && k.use_.as_deref().is_none_or(|u| u == "sig");
        if let (true, Some(kid), Some(n), Some(e)) = (usable, &k.kid, &k.n, &k.e) {
            if DecodingKey::from_rsa_components(n, e).is_ok() {
                keys.insert(kid.clone(), (n.clone(), e.clone()));
            }
        }
    }
    keys
}
