//! Refresh token rotation and reuse detection.

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refresh_rotates_and_a_reused_token_revokes_the_whole_family() {
    let app = spawn_app().await;
    let t0 = app.admin_tokens().await;
    let r0 = t0.refresh_token.clone().unwrap();

    let r = app.refresh(&r0).await;
    assert_eq!(r.status(), 200);
    let t1 = tokens(r.json().await.unwrap());
    let r1 = t1.refresh_token.clone().unwrap();
    assert_ne!(r0, r1, "rotation issues a new refresh token");
    assert_ne!(t0.access_token, t1.access_token);
    assert!(t1.id_token.is_some());

    // The spent r0 again: refused, and r1 (same family) dies with it.
    let r = app.refresh(&r0).await;
    assert_eq!(r.status(), 400);
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(e["error"], "invalid_grant");
    let r = app.refresh(&r1).await;
    assert_eq!(r.status(), 400, "the family is revoked");
    assert_eq!(app.introspect(&r1).await["active"], false);
    assert!(app
        .metrics()
        .await
        .contains("aurum_auth_security_events_total{event=\"refresh_token_reuse\"} 1"));

    // Another sign-in (another family) is unaffected.
    let t2 = app.admin_tokens().await;
    let r = app.refresh(t2.refresh_token.as_deref().unwrap()).await;
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_token_works_only_for_its_client_and_cannot_widen_the_scope() {
    let app = spawn_app().await;
    let t = app.admin_tokens().await;
    let rt = t.refresh_token.unwrap();
    let r = app
        .client
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt.as_str()),
            ("client_id", SPA_CLIENT),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let r = app
        .client
        .post(app.url("/token"))
        .basic_auth(WEB_CLIENT, Some(WEB_SECRET))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt.as_str()),
            ("scope", "openid admin:everything"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(e["error"], "invalid_scope");
    // Still usable by its own client, narrowed.
    let r = app
        .client
        .post(app.url("/token"))
        .basic_auth(WEB_CLIENT, Some(WEB_SECRET))
        .form(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", rt.as_str()),
            ("scope", "openid"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["scope"], "openid");
}
