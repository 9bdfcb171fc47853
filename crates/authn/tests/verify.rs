//! The verifier against a real HTTP JWKS endpoint serving keys generated with OpenSSL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use aurum_authn::testing::{hs256_with_public_key, unsigned_token, TestIssuer, TestKey};
use aurum_authn::{AuthnError, JwksVerifier, VerifierSettings, API_AUDIENCE};
use aurum_domain::Role;
use serde_json::json;
use url::Url;

fn settings(issuer: &TestIssuer) -> VerifierSettings {
    let mut s = VerifierSettings::new(issuer.issuer.clone(), vec![API_AUDIENCE.to_owned()]);
    s.leeway_s = 5;
    s.min_refetch_interval = Duration::from_millis(500);
    s.http_timeout = Duration::from_secs(2);
    s
}

fn verifier(issuer: &TestIssuer) -> JwksVerifier {
    JwksVerifier::new(settings(issuer)).unwrap()
}

#[tokio::test]
async fn a_valid_token_gives_its_principal() {
    let issuer = TestIssuer::start().await;
    let v = verifier(&issuer);
    let token = issuer.token("user-1", "acme", &["operator"]);
    let p = v.verify(&token).await.unwrap();
    assert_eq!(p.subject, "user-1");
    assert_eq!(p.tenant.as_ref().unwrap().as_str(), "acme");
    assert_eq!(p.roles, vec![Role::Operator]);
    assert_eq!(p.client_id, "aurumai-web");
    assert_eq!(p.scopes, vec!["openid", "profile"]);
    assert!(!p.token_id.is_empty());
    assert!(p.has_role(Role::Viewer) && !p.has_role(Role::Admin));
    assert!(p.expires_at > chrono::Utc::now());
    // The key is cached: a second token costs no fetch.
    let again = issuer.token("user-2", "acme", &["viewer"]);
    v.verify(&again).await.unwrap();
    assert_eq!(issuer.jwks_hits(), 1);
}

#[tokio::test]
async fn audience_as_a_string_and_service_tokens_without_tenant() {
    let issuer = TestIssuer::start().await;
    let v = verifier(&issuer);
    let mut c = issuer.claims("svc-ingestion", None, &[]);
    c.insert("aud".into(), json!(API_AUDIENCE));
    let p = v.verify(&issuer.sign(&c)).await.unwrap();
    assert!(p.is_service());
    assert!(p.tenant.is_none());
    assert!(p.require_tenant().is_err());
}

#[tokio::test]
async fn expired_tokens_are_refused_beyond_the_leeway() {
    let issuer = TestIssuer::start().await;
    let v = verifier(&issuer);
    let now = chrono::Utc::now().timestamp();
    let mut c = issuer.claims("u", Some("acme"), &["viewer"]);
    c.insert("exp".into(), json!(now - 60));
    c.insert("nbf".into(), json!(now - 120));
    assert_eq!(v.verify(&issuer.sign(&c)).await, Err(AuthnError::Expired));
    // Within the leeway (5 s) it still passes.
    c.insert("exp".into(), json!(now - 2));
    assert!(v.verify(&issuer.sign(&c)).await.is_ok());
    // Not valid before a time beyond the leeway.
    c.insert("exp".into(), json!(now + 300));
    c.insert("nbf".into(), json!(now + 120));
    assert_eq!(
        v.verify(&issuer.sign(&c)).await,
        Err(AuthnError::NotYetValid)
    );
}

#[tokio::test]
async fn a_signature_of_another_key_under_the_same_kid_is_refused() {
    let issuer = TestIssuer::start().await;
    let v = verifier(&issuer);
    let impostor = TestKey::generate("k1");
    let token = impostor.sign(&issuer.claims("u", Some("acme"), &["admin"]));
    assert_eq!(v.verify(&token).await, Err(AuthnError::BadSignature));
    // A tampered payload of a genuine token too.
    let genuine = issuer.token("u", "acme", &["viewer"]);
    let parts: Vec<&str> = genuine.split('.').collect();
    let forged_claims = issuer.claims("u", Some("acme"), &["admin"]);
    use base64::Engine;
    let payload = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(serde_json::Value::Object(forged_claims).to_string());
    let forged = format!("{}.{}.{}", parts[0], payload, parts[2]);
    assert_eq!(v.verify(&forged).await, Err(AuthnError::BadSignature));
}

#[tokio::test]
async fn wrong_audience_and_wrong_issuer_are_refused() {
    let issuer = TestIssuer::start().await;
    let v = verifier(&issuer);
    let mut c = issuer.claims("u", Some("acme"), &["viewer"]);
    c.insert("aud".into(), json!(["aurumai-ingestion"]));
    assert_eq!(
        v.verify(&issuer.sign(&c)).await,
        Err(AuthnError::WrongAudience)
    );
    let mut c = issuer.claims("u", Some("acme"), &["viewer"]);
    c.insert("aud".into(), json!(["other", API_AUDIENCE]));
    assert!(
        v.verify(&issuer.sign(&c)).await.is_ok(),
        "one matching audience is enough"
    );
    let mut c = issuer.claims("u", Some("acme"), &["viewer"]);
    c.insert("iss".into(), json!("http://127.0.0.1:1"));
    assert_eq!(
        v.verify(&issuer.sign(&c)).await,
        Err(AuthnError::WrongIssuer)
    );
}

#[tokio::test]
async fn alg_none_and_hs256_with_the_public_key_are_refused() {
    let issuer = TestIssuer::start().await;
    let v = verifier(&issuer);
    let claims = issuer.claims("u", Some("acme"), &["admin"]);
    let none = unsigned_token("k1", &claims);
    assert!(matches!(
        v.verify(&none).await,
        Err(AuthnError::Malformed(_))
    ));
    let confused = hs256_with_public_key(&issuer.current_key(), &claims);
    assert!(matches!(
        v.verify(&confused).await,
        Err(AuthnError::Malformed(_))
    ));
    // Neither made the verifier fetch anything.
    assert_eq!(issuer.jwks_hits(), 0);
}

#[tokio::test]
async fn contract_violations_are_malformed() {
    let issuer = TestIssuer::start().await;
    let v = verifier(&issuer);
    let key = issuer.current_key();
    let claims = issuer.claims("u", Some("acme"), &["viewer"]);
    // No kid.
    let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256);
    h.typ = Some("at+jwt".into());
    assert!(matches!(
        v.verify(&key.sign_with(&h, &claims)).await,
        Err(AuthnError::Malformed(_))
    ));
    // An ID token (typ JWT) is not an access token.
    h.kid = Some(key.kid.clone());
    h.typ = Some("JWT".into());
    assert!(matches!(
        v.verify(&key.sign_with(&h, &claims)).await,
        Err(AuthnError::Malformed(_))
    ));
    // Unknown role, bad tenant, missing exp.
    for (name, value) in [
        ("roles", json!(["root"])),
        ("tenant", json!("no spaces allowed")),
    ] {
        let mut c = claims.clone();
        c.insert(name.into(), value);
        assert!(
            matches!(
                v.verify(&issuer.sign(&c)).await,
                Err(AuthnError::Malformed(_))
            ),
            "{name}"
        );
    }
    let mut c = claims.clone();
    c.remove("exp");
    assert!(matches!(
        v.verify(&issuer.sign(&c)).await,
        Err(AuthnError::Malformed(_))
    ));
    assert!(matches!(
        v.verify("not.a.jwt").await,
        Err(AuthnError::Malformed(_))
    ));
    assert_eq!(v.verify("").await, Err(AuthnError::Missing));
}

#[tokio::test]
async fn an_unknown_kid_refetches_the_jwks_after_rotation() {
    let issuer = TestIssuer::start().await;
    let v = verifier(&issuer);
    let old = issuer.current_key();
    v.verify(&issuer.token("u", "acme", &["viewer"]))
        .await
        .unwrap();
    assert_eq!(issuer.jwks_hits(), 1);
    tokio::time::sleep(Duration::from_millis(600)).await;
    // The issuer rotates: k2 signs, k1 is still published for tokens in flight.
    let new = TestKey::generate("k2");
    issuer.set_keys(vec![new.clone(), old.clone()]);
    let p = v
        .verify(&issuer.token("u2", "acme", &["viewer"]))
        .await
        .unwrap();
    assert_eq!(p.subject, "u2");
    assert_eq!(issuer.jwks_hits(), 2);
    // k1 retired: its tokens stop verifying after the next refetch.
    tokio::time::sleep(Duration::from_millis(600)).await;
    issuer.set_keys(vec![new.clone()]);
    let k3 = TestKey::generate("k3");
    let c = issuer.claims("u3", Some("acme"), &["viewer"]);
    assert_eq!(v.verify(&k3.sign(&c)).await, Err(AuthnError::UnknownKey));
    assert_eq!(issuer.jwks_hits(), 3);
    assert_eq!(v.verify(&old.sign(&c)).await, Err(AuthnError::UnknownKey));
}

#[tokio::test]
async fn refetches_for_unknown_kids_are_rate_limited() {
    let issuer = TestIssuer::start().await;
    let v = verifier(&issuer);
    v.verify(&issuer.token("u", "acme", &["viewer"]))
        .await
        .unwrap();
    assert_eq!(issuer.jwks_hits(), 1);
    let c = issuer.claims("u", Some("acme"), &["viewer"]);
    let made_up: Vec<String> = (0..5)
        .map(|i| TestKey::generate(&format!("random-{i}")).sign(&c))
        .collect();
    let later = TestKey::generate("later").sign(&c);
    tokio::time::sleep(Duration::from_millis(600)).await;
    // A flood of made-up kids, concurrent: one fetch in the interval.
    let mut tasks = Vec::new();
    for i in 0..50 {
        let v = v.clone();
        let token = made_up[i % 5].clone();
        tasks.push(tokio::spawn(async move { v.verify(&token).await }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), Err(AuthnError::UnknownKey));
    }
    assert_eq!(issuer.jwks_hits(), 2, "one refetch for the whole flood");
    // Cached keys still verify meanwhile, without fetching.
    v.verify(&issuer.token("u", "acme", &["viewer"]))
        .await
        .unwrap();
    assert_eq!(issuer.jwks_hits(), 2);
    // After the interval, an unknown kid may fetch again.
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(v.verify(&later).await, Err(AuthnError::UnknownKey));
    assert_eq!(issuer.jwks_hits(), 3);
}

#[tokio::test]
async fn an_unreachable_issuer_is_unavailable_not_unauthorized() {
    let issuer = TestIssuer::start().await;
    issuer.set_available(false);
    let v = verifier(&issuer);
    let token = issuer.token("u", "acme", &["viewer"]);
    let err = v.verify(&token).await.unwrap_err();
    assert!(matches!(err, AuthnError::JwksUnavailable(_)), "{err:?}");
    assert_eq!(err.status(), 503);
    // Within the interval the answer stays 503 without a new fetch.
    assert!(matches!(
        v.verify(&token).await,
        Err(AuthnError::JwksUnavailable(_))
    ));
    assert_eq!(issuer.jwks_hits(), 1);
    issuer.set_available(true);
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert!(v.verify(&token).await.is_ok());
    // A dead port: the fetch fails fast with a timeout-bounded error.
    let mut s = settings(&issuer);
    s.jwks_url = Url::parse("http://127.0.0.1:9/jwks").unwrap();
    let dead = JwksVerifier::new(s).unwrap();
    assert!(matches!(
        dead.verify(&token).await,
        Err(AuthnError::JwksUnavailable(_))
    ));
    assert!(dead.refresh().await.is_err());
}

#[tokio::test]
async fn errors_map_to_401_with_a_bearer_challenge() {
    use actix_web::ResponseError;
    let r = AuthnError::Expired.error_response();
    assert_eq!(r.status(), 401);
    assert_eq!(
        r.headers().get("www-authenticate").unwrap(),
        "Bearer error=\"invalid_token\""
    );
    let r = AuthnError::Missing.error_response();
    assert_eq!(r.status(), 401);
    assert_eq!(r.headers().get("www-authenticate").unwrap(), "Bearer");
    let r = AuthnError::JwksUnavailable("down".into()).error_response();
    assert_eq!(r.status(), 503);
    assert!(r.headers().get("www-authenticate").is_none());
}

#[tokio::test]
async fn verification_of_a_cached_key_is_fast() {
    let issuer = TestIssuer::start().await;
    let v = verifier(&issuer);
    let token = issuer.token("u", "acme", &["viewer"]);
    v.verify(&token).await.unwrap();
    let n = 200;
    let start = std::time::Instant::now();
    for _ in 0..n {
        v.verify(&token).await.unwrap();
    }
    let per = start.elapsed() / n;
    // RS256 verification with a cached key is tens of microseconds; allow for a debug build.
    assert!(per < Duration::from_millis(2), "{per:?} per verification");
}

#[tokio::test]
async fn a_revoked_token_or_subject_is_refused_within_the_poll_interval() {
    let issuer = TestIssuer::start().await;
    let mut s = settings(&issuer);
    s.revocation_poll = Duration::from_millis(200);
    let v = JwksVerifier::new(s).unwrap();

    let token = issuer.token("user-1", "acme", &["viewer"]);
    let other = issuer.token("user-2", "acme", &["viewer"]);
    v.verify(&token).await.unwrap();
    let jti = v.verify(&token).await.unwrap().token_id;

    // The verified-token cache holds it, and still it is refused once the feed names it.
    issuer.revoke_token(&jti);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(v.verify(&token).await.unwrap_err(), AuthnError::Revoked);
    assert!(
        v.verify(&other).await.is_ok(),
        "other tokens are not affected"
    );

    // A subject: what it held is refused, what it is issued later works.
    issuer.revoke_subject("user-2");
    tokio::time::sleep(Duration::from_millis(1_100)).await;
    assert_eq!(v.verify(&other).await.unwrap_err(), AuthnError::Revoked);
    let fresh = issuer.token("user-2", "acme", &["viewer"]);
    assert!(v.verify(&fresh).await.is_ok());
}
