//! userinfo, revocation (RFC 7009) and introspection (RFC 7662).

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn userinfo_answers_a_users_access_token_by_scope() {
    let app = spawn_app().await;
    let t = app.admin_tokens().await;
    let r = app.get_with(&t.access_token, "/userinfo").await;
    assert_eq!(r.status(), 200);
    let u: serde_json::Value = r.json().await.unwrap();
    assert_eq!(u["sub"], claims_of(&t.access_token)["sub"]);
    assert_eq!(u["preferred_username"], ADMIN);
    assert_eq!(u["tenant"], TENANT);
    // POST works too; no token or a forged one does not.
    let r = app
        .client
        .post(app.url("/userinfo"))
        .bearer_auth(&t.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app.client.get(app.url("/userinfo")).send().await.unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Bearer"));
    let mut forged = t.access_token.clone();
    forged.replace_range(forged.len() - 4.., "AAAA");
    assert_eq!(app.get_with(&forged, "/userinfo").await.status(), 401);
    // A service token has no user behind it.
    let r = app
        .client_credentials(SVC_CLIENT, SVC_SECRET, &[("audience", "aurumai-ingestion")])
        .await;
    let svc = tokens(r.json().await.unwrap());
    assert_eq!(
        app.get_with(&svc.access_token, "/userinfo").await.status(),
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_access_tokens_are_inactive_and_refused() {
    let app = spawn_app().await;
    let t = app.admin_tokens().await;
    let active = app.introspect(&t.access_token).await;
    assert_eq!(active["active"], true);
    assert_eq!(active["client_id"], WEB_CLIENT);
    assert_eq!(active["tenant"], TENANT);
    assert_eq!(active["jti"], claims_of(&t.access_token)["jti"]);

    let r = app
        .client
        .post(app.url("/revoke"))
        .basic_auth(WEB_CLIENT, Some(WEB_SECRET))
        .form(&[
            ("token", t.access_token.as_str()),
            ("token_type_hint", "access_token"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(app.introspect(&t.access_token).await["active"], false);
    assert_eq!(
        app.get_with(&t.access_token, "/userinfo").await.status(),
        401
    );
    assert_eq!(app.get_with(&t.access_token, "/v1/me").await.status(), 401);
    // Unknown tokens: 200 all the same.
    let r = app
        .client
        .post(app.url("/revoke"))
        .basic_auth(WEB_CLIENT, Some(WEB_SECRET))
        .form(&[("token", "no-such-token")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_refresh_token_cannot_be_used_and_introspects_inactive() {
    let app = spawn_app().await;
    let t = app.admin_tokens().await;
    let rt = t.refresh_token.unwrap();
    let info = app.introspect(&rt).await;
    assert_eq!(info["active"], true);
    assert_eq!(info["token_type"], "refresh_token");
    let r = app
        .client
        .post(app.url("/revoke"))
        .basic_auth(WEB_CLIENT, Some(WEB_SECRET))
        .form(&[("token", rt.as_str()), ("token_type_hint", "refresh_token")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(app.introspect(&rt).await["active"], false);
    assert_eq!(app.refresh(&rt).await.status(), 400);
    // Introspection needs a confidential client.
    let r = app
        .client
        .post(app.url("/introspect"))
        .form(&[
            ("token", t.access_token.as_str()),
            ("client_id", SPA_CLIENT),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revoked_tokens_and_disabled_users_enter_the_feed_the_resource_servers_follow() {
    let app = spawn_app().await;
    let admin = app.admin_tokens().await.access_token;
    let feed = || async {
        let r = app
            .client
            .get(app.url("/revocations?after=0"))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200, "the feed is public, like the JWKS");
        r.json::<serde_json::Value>().await.unwrap()["entries"]
            .as_array()
            .unwrap()
            .clone()
    };
    assert!(feed().await.is_empty());

    // An access token revoked by its client.
    let r = app
        .client_credentials(SVC_CLIENT, SVC_SECRET, &[("audience", "aurumai-ingestion")])
        .await;
    let svc = tokens(r.json().await.unwrap());
    let r = app
        .client
        .post(app.url("/revoke"))
        .basic_auth(SVC_CLIENT, Some(SVC_SECRET))
        .form(&[("token", svc.access_token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // A user disabled by the admin.
    let u = app.create_user(&admin, "olga", &["viewer"]).await;
    let id = u["id"].as_str().unwrap().to_owned();
    let r = app
        .client
        .patch(app.url(&format!("/v1/users/{id}")))
        .bearer_auth(&admin)
        .json(&serde_json::json!({ "disabled": true }))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    let entries = feed().await;
    assert_eq!(entries.len(), 2, "{entries:?}");
    assert_eq!(entries[0]["kind"], "token");
    assert_eq!(entries[0]["value"], claims_of(&svc.access_token)["jti"]);
    assert_eq!(entries[1]["kind"], "subject");
    assert_eq!(entries[1]["value"], id.as_str());
    assert!(entries[1]["issued_before"].is_string());
    // Read incrementally.
    let seq = entries[0]["seq"].as_i64().unwrap();
    let r: serde_json::Value = app
        .client
        .get(app.url(&format!("/revocations?after={seq}")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(r["entries"].as_array().unwrap().len(), 1);
}
