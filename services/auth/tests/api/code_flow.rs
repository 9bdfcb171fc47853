//! Authorization code flow with PKCE: refusals, single-use codes, state and nonce, the login
//! page's protections.

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_flow_with_pkce_returns_tokens_carrying_state_and_nonce() {
    let app = spawn_app().await;
    let (verifier, challenge) = pkce();
    let form = app
        .login_form(&app.authorize_url(WEB_CLIENT, Some(&challenge), &[]))
        .await;
    let r = app.post_login(&form, ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(r.status(), 303);
    let q = query_of(r.headers()["location"].to_str().unwrap());
    assert_eq!(q["state"], "st-123", "state is echoed");
    assert_eq!(q["iss"], app.config.auth.issuer);

    let r = app
        .exchange(WEB_CLIENT, Some(WEB_SECRET), &q["code"], &verifier)
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["cache-control"], "no-store");
    let t = tokens(r.json().await.unwrap());
    assert_eq!(t.body["token_type"], "Bearer");
    assert_eq!(t.body["expires_in"], 300);
    assert!(t.refresh_token.is_some());

    let h = header_of(&t.access_token);
    assert_eq!(h["typ"], "at+jwt");
    assert_eq!(h["alg"], "RS256");
    assert!(h["kid"].is_string());
    let a = claims_of(&t.access_token);
    assert_eq!(a["iss"], app.config.auth.issuer);
    assert_eq!(a["aud"], "aurumai-api");
    assert_eq!(a["tenant"], TENANT);
    assert_eq!(a["roles"], serde_json::json!(["admin"]));
    assert_eq!(a["client_id"], WEB_CLIENT);
    assert!(a["jti"].is_string() && a["nbf"].is_i64());
    assert_eq!(a["exp"].as_i64().unwrap() - a["iat"].as_i64().unwrap(), 300);

    let id = claims_of(t.id_token.as_deref().unwrap());
    assert_eq!(id["aud"], WEB_CLIENT);
    assert_eq!(
        id["nonce"], "n-456",
        "the nonce is carried into the ID token"
    );
    assert_eq!(id["sub"], a["sub"]);
    assert_eq!(id["preferred_username"], ADMIN);
    assert!(id["auth_time"].is_i64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pkce_is_required_s256_only_and_the_verifier_must_match() {
    let app = spawn_app().await;
    // No challenge: back to the client with invalid_request.
    let r = app
        .client
        .get(app.authorize_url(WEB_CLIENT, None, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let q = query_of(r.headers()["location"].to_str().unwrap());
    assert_eq!(q["error"], "invalid_request");
    assert_eq!(q["state"], "st-123");
    // plain is refused.
    let (_, challenge) = pkce();
    let mut url = app.authorize_url(WEB_CLIENT, None, &[("code_challenge", &challenge)]);
    url.push_str("&code_challenge_method=plain");
    let r = app.client.get(url).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let q = query_of(r.headers()["location"].to_str().unwrap());
    assert_eq!(q["error"], "invalid_request");
    assert!(q["error_description"].contains("S256"));

    // A wrong verifier, then a missing one: invalid_grant.
    let (_, challenge) = pkce();
    let q = app
        .authorize(WEB_CLIENT, &challenge, ADMIN, ADMIN_PASSWORD)
        .await;
    let (other_verifier, _) = pkce();
    let r = app
        .exchange(WEB_CLIENT, Some(WEB_SECRET), &q["code"], &other_verifier)
        .await;
    assert_eq!(r.status(), 400);
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(e["error"], "invalid_grant");

    let (_, challenge) = pkce();
    let q = app
        .authorize(WEB_CLIENT, &challenge, ADMIN, ADMIN_PASSWORD)
        .await;
    let r = app
        .client
        .post(app.url("/token"))
        .basic_auth(WEB_CLIENT, Some(WEB_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", q["code"].as_str()),
            ("redirect_uri", REDIRECT),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(e["error"], "invalid_grant");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_is_single_use_and_its_replay_revokes_the_grant() {
    let app = spawn_app().await;
    let (verifier, challenge) = pkce();
    let q = app
        .authorize(WEB_CLIENT, &challenge, ADMIN, ADMIN_PASSWORD)
        .await;
    let first = app
        .exchange(WEB_CLIENT, Some(WEB_SECRET), &q["code"], &verifier)
        .await;
    assert_eq!(first.status(), 200);
    let t = tokens(first.json().await.unwrap());
    let again = app
        .exchange(WEB_CLIENT, Some(WEB_SECRET), &q["code"], &verifier)
        .await;
    assert_eq!(again.status(), 400);
    let e: serde_json::Value = again.json().await.unwrap();
    assert_eq!(e["error"], "invalid_grant");
    // The refresh token the first exchange issued is revoked with it.
    let r = app.refresh(t.refresh_token.as_deref().unwrap()).await;
    assert_eq!(r.status(), 400);
    assert!(app
        .metrics()
        .await
        .contains("aurum_auth_security_events_total{event=\"authorization_code_reuse\"} 1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_client_signs_in_with_pkce_and_no_secret() {
    let app = spawn_app().await;
    let (verifier, challenge) = pkce();
    let q = app
        .authorize(SPA_CLIENT, &challenge, ADMIN, ADMIN_PASSWORD)
        .await;
    let r = app.exchange(SPA_CLIENT, None, &q["code"], &verifier).await;
    assert_eq!(r.status(), 200);
    // But a confidential client cannot skip its secret.
    let (verifier, challenge) = pkce();
    let q = app
        .authorize(WEB_CLIENT, &challenge, ADMIN, ADMIN_PASSWORD)
        .await;
    let r = app.exchange(WEB_CLIENT, None, &q["code"], &verifier).await;
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(e["error"], "invalid_client");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_clients_and_unregistered_redirects_get_an_error_page_not_a_redirect() {
    let app = spawn_app().await;
    let (_, challenge) = pkce();
    let url = app.authorize_url("nobody", Some(&challenge), &[]);
    let r = app.client.get(url).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());

    let url = app
        .authorize_url(WEB_CLIENT, Some(&challenge), &[])
        .replace("%2Fcallback", "%2Fevil");
    let r = app.client.get(url).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());

    // A valid redirect URI with a bad response_type: the error goes back to the client.
    let url = app
        .authorize_url(WEB_CLIENT, Some(&challenge), &[])
        .replace("response_type=code", "response_type=token");
    let r = app.client.get(url).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let q = query_of(r.headers()["location"].to_str().unwrap());
    assert_eq!(q["error"], "unsupported_response_type");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_login_page_has_security_headers_and_refuses_a_form_without_its_cookie() {
    let app = spawn_app().await;
    let (_, challenge) = pkce();
    let r = app
        .client
        .get(app.authorize_url(WEB_CLIENT, Some(&challenge), &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.headers()["x-frame-options"], "DENY");
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(csp.contains("default-src 'none'"), "{csp}");
    assert!(r.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .contains("HttpOnly"));

    let mut form = app
        .login_form(&app.authorize_url(WEB_CLIENT, Some(&challenge), &[]))
        .await;
    assert!(form.page.contains("type=\"password\""));
    form.cookie = "aurum_login_csrf=AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into();
    let r = app.post_login(&form, ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(
        r.status(),
        403,
        "a form bound to another browser is refused"
    );
    // A tampered form token is refused too.
    let mut form = app
        .login_form(&app.authorize_url(WEB_CLIENT, Some(&challenge), &[]))
        .await;
    form.request.push('x');
    let r = app.post_login(&form, ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(r.status(), 400);
}

/// A tenant's admin may register any redirect URI, so errors of that client's authorization
/// requests, which anyone can provoke without signing in, must not send the browser there:
/// that would make the sign-in page an open redirector. Clients the platform configured still
/// get their errors back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_of_a_tenant_registered_client_are_shown_not_redirected() {
    let app = spawn_app().await;
    let admin = app.admin_tokens().await.access_token;
    let r = app
        .client
        .post(app.url("/v1/clients"))
        .bearer_auth(&admin)
        .json(&serde_json::json!({
            "client_id": "acme-portal",
            "grant_types": ["authorization_code"],
            "redirect_uris": [REDIRECT],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201, "{}", r.text().await.unwrap());

    // No PKCE challenge: an error, shown here.
    let r = app
        .client
        .get(app.authorize_url("acme-portal", None, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.headers().get("location").is_none());
    let page = r.text().await.unwrap();
    assert!(page.contains("invalid_request"), "{page}");

    // The same request for the configured client goes back to it.
    let r = app
        .client
        .get(app.authorize_url(WEB_CLIENT, None, &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);

    // A valid request of the tenant's client still reaches the sign-in form.
    let (_, challenge) = pkce();
    let r = app
        .client
        .get(app.authorize_url("acme-portal", Some(&challenge), &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}
