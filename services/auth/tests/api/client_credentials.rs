//! Service clients: client_credentials limited to their audiences; bad credentials.

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_service_client_gets_tokens_only_for_its_allowed_audiences() {
    let app = spawn_app().await;
    for param in ["audience", "resource"] {
        let r = app
            .client_credentials(SVC_CLIENT, SVC_SECRET, &[(param, "aurumai-prediction")])
            .await;
        assert_eq!(r.status(), 200);
        let t = tokens(r.json().await.unwrap());
        assert!(t.refresh_token.is_none() && t.id_token.is_none());
        let c = claims_of(&t.access_token);
        assert_eq!(c["aud"], "aurumai-prediction");
        assert_eq!(c["sub"], SVC_CLIENT);
        assert_eq!(c["client_id"], SVC_CLIENT);
        assert!(c.get("tenant").is_none(), "a platform client has no tenant");
        assert_eq!(c["roles"], serde_json::json!([]));
        assert_eq!(header_of(&t.access_token)["typ"], "at+jwt");
    }
    // Not allowed: aurumai-auth, and the default aurumai-api.
    for extra in [vec![("audience", "aurumai-auth")], vec![]] {
        let r = app.client_credentials(SVC_CLIENT, SVC_SECRET, &extra).await;
        assert_eq!(r.status(), 400);
        let e: serde_json::Value = r.json().await.unwrap();
        assert_eq!(e["error"], "invalid_target");
    }
    // The web client may not use this grant.
    let r = app.client_credentials(WEB_CLIENT, WEB_SECRET, &[]).await;
    assert_eq!(r.status(), 400);
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(e["error"], "unauthorized_client");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_client_credentials_get_401_with_a_challenge_and_are_counted() {
    let app = spawn_app().await;
    let r = app
        .client_credentials(
            SVC_CLIENT,
            "not-the-secret",
            &[("audience", "aurumai-ingestion")],
        )
        .await;
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .starts_with("Basic"));
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(e["error"], "invalid_client");
    // Secret in the body (client_secret_post) works as well as Basic.
    let r = app
        .client
        .post(app.url("/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", SVC_CLIENT),
            ("client_secret", SVC_SECRET),
            ("audience", "aurumai-ingestion"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = app
        .client
        .post(app.url("/token"))
        .basic_auth(SVC_CLIENT, Some(SVC_SECRET))
        .form(&[("grant_type", "password")])
        .send()
        .await
        .unwrap();
    let e: serde_json::Value = r.json().await.unwrap();
    assert_eq!(e["error"], "unsupported_grant_type");
    assert!(app
        .metrics()
        .await
        .contains("aurum_auth_security_events_total{event=\"invalid_client_auth\"} 1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_bad_client_logins_leave_the_service_up() {
    // Two argon2 checks at a time, a short wait for a turn: the rest are told to retry.
    let app = spawn_app_with(|c| {
        c.auth.max_concurrent_hashes = 2;
        c.auth.hash_wait_ms = 200;
    })
    .await;
    let attempts = (0..50).map(|i| {
        let (id, secret) = if i % 2 == 0 {
            (SVC_CLIENT.to_owned(), format!("wrong-secret-{i}"))
        } else {
            // Unknown clients cost no argon2 at all.
            (format!("made-up-{i}"), "whatever".to_owned())
        };
        let app = &app;
        async move {
            app.client_credentials(&id, &secret, &[])
                .await
                .status()
                .as_u16()
        }
    });
    let statuses = futures::future::join_all(attempts).await;
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 503),
        "{statuses:?}"
    );
    // Every unknown client is refused at once, never told to wait.
    assert!(
        statuses.iter().skip(1).step_by(2).all(|s| *s == 401),
        "{statuses:?}"
    );

    let ready = app.client.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let good = app
        .client_credentials(
            SVC_CLIENT,
            SVC_SECRET,
            &[("audience", "aurumai-prediction")],
        )
        .await;
    assert_eq!(good.status(), 200);
}
