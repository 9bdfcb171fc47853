//! Discovery document, JWKS, health and metrics.

use std::time::Duration;

use crate::helpers::spawn_app;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_names_every_endpoint_under_the_issuer() {
    let app = spawn_app().await;
    assert!(aurum_testkit::http_ready(&app.client, &app.address, Duration::from_secs(10)).await);
    let d: serde_json::Value = app
        .client
        .get(app.url("/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let iss = &app.config.auth.issuer;
    assert_eq!(d["issuer"], *iss);
    for (key, path) in [
        ("authorization_endpoint", "/authorize"),
        ("token_endpoint", "/token"),
        ("userinfo_endpoint", "/userinfo"),
        ("jwks_uri", "/jwks"),
        ("revocation_endpoint", "/revoke"),
        ("introspection_endpoint", "/introspect"),
        ("end_session_endpoint", "/logout"),
    ] {
        assert_eq!(d[key], format!("{iss}{path}"), "{key}");
    }
    assert_eq!(d["response_types_supported"], serde_json::json!(["code"]));
    assert_eq!(
        d["code_challenge_methods_supported"],
        serde_json::json!(["S256"])
    );
    assert_eq!(
        d["id_token_signing_alg_values_supported"],
        serde_json::json!(["RS256"])
    );
    let grants = d["grant_types_supported"].as_array().unwrap();
    for g in ["authorization_code", "refresh_token", "client_credentials"] {
        assert!(grants.iter().any(|x| x == g), "{g}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_jwks_publishes_one_rsa_signing_key_with_a_kid_and_no_private_parts() {
    let app = spawn_app().await;
    let r = app.client.get(app.url("/jwks")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let jwks: serde_json::Value = r.json().await.unwrap();
    let keys = jwks["keys"].as_array().unwrap();
    assert_eq!(keys.len(), 1, "{jwks}");
    let k = &keys[0];
    assert_eq!(k["kty"], "RSA");
    assert_eq!(k["alg"], "RS256");
    assert_eq!(k["use"], "sig");
    assert!(k["kid"].as_str().is_some_and(|s| !s.is_empty()));
    assert!(k["n"].as_str().unwrap().len() > 300, "a 2048-bit modulus");
    assert_eq!(k["e"], "AQAB");
    for private in ["d", "p", "q", "dp", "dq", "qi"] {
        assert!(
            k.get(private).is_none(),
            "{private} must never be published"
        );
    }
    // The key is in the database, and the service's role may not read other schemas.
    assert_eq!(
        app.db.count("SELECT count(*) FROM auth.signing_keys").await,
        1
    );
    let metrics = app.metrics().await;
    assert!(metrics.contains("http_requests_total"), "{metrics}");
}
