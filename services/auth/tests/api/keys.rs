//! Key rotation: a new key signs, the old one stays published until its tokens expire. Only
//! the platform operator rotates, at most once a minute and never past the JWKS's cap.

use serde_json::Value;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_rotation_old_tokens_still_verify_and_new_ones_use_the_new_key() {
    let app = spawn_app().await;
    let before = app.admin_tokens().await;
    let old_kid = header_of(&before.access_token)["kid"]
        .as_str()
        .unwrap()
        .to_owned();

    app.age_signing_keys().await;
    let r = app.rotate_keys(&app.platform_token().await).await;
    assert_eq!(r.status(), 200);
    let new_kid = r.json::<Value>().await.unwrap()["kid"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_ne!(old_kid, new_kid);

    let jwks: Value = app
        .client
        .get(app.url("/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap())
        .collect();
    assert!(
        kids.contains(&old_kid.as_str()) && kids.contains(&new_kid.as_str()),
        "{kids:?}"
    );

    // The old token still works; new tokens carry the new kid.
    assert_eq!(
        app.get_with(&before.access_token, "/v1/me").await.status(),
        200
    );
    let after = app.admin_tokens().await;
    assert_eq!(header_of(&after.access_token)["kid"], new_kid.as_str());
    assert_eq!(
        app.get_with(&after.access_token, "/v1/me").await.status(),
        200
    );

    // The old key is retired to expire after the longest token lifetime, not before.
    let row = app
        .db
        .client()
        .await
        .query_one(
            "SELECT extract(epoch FROM expires_at - retire_after)::float8 FROM auth.signing_keys WHERE kid = $1",
            &[&old_kid],
        )
        .await
        .unwrap();
    let grace: f64 = row.get(0);
    assert!(grace >= 300.0, "published {grace} s after retirement");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_replica_picks_up_a_rotated_key_and_expired_keys_leave_the_jwks() {
    let app = spawn_app().await;
    let mut second = app.config.clone();
    second.http.port = 0;
    let other = start(second).await;
    let admin = app.admin_tokens().await.access_token;
    let platform = app.platform_token().await;
    app.age_signing_keys().await;
    let r = app.rotate_keys(&platform).await;
    assert_eq!(r.status(), 200);
    let fresh = app.admin_tokens().await.access_token;
    // Signed by a key the second replica has not loaded yet: it reloads on the unknown kid.
    tokio::time::sleep(std::time::Duration::from_millis(2_100)).await;
    let r = app
        .client
        .get(format!("{other}/v1/me"))
        .bearer_auth(&fresh)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);

    // Once its grace has passed, the old key is no longer published.
    app.db
        .client()
        .await
        .execute(
            "UPDATE auth.signing_keys SET expires_at = now() - interval '1 second' WHERE retire_after IS NOT NULL",
            &[],
        )
        .await
        .unwrap();
    app.age_signing_keys().await;
    let r = app.rotate_keys(&platform).await;
    assert_eq!(r.status(), 200);
    let jwks: Value = app
        .client
        .get(app.url("/jwks"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2, "{jwks}");
    assert_eq!(
        app.get_with(&admin, "/v1/me").await.status(),
        401,
        "its key expired"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_tenant_admin_cannot_rotate_the_keys_every_tenant_relies_on() {
    let app = spawn_app().await;
    app.age_signing_keys().await;
    let admin = app.admin_tokens().await.access_token;
    assert_eq!(claims_of(&admin)["roles"], serde_json::json!(["admin"]));
    let r = app.rotate_keys(&admin).await;
    assert_eq!(r.status(), 403);
    let jwks: Value = app.get_with(&admin, "/jwks").await.json().await.unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 1, "{jwks}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotations_are_at_most_one_a_minute_and_the_jwks_stays_capped() {
    let app = spawn_app().await;
    let platform = app.platform_token().await;

    // The first key was made at start-up, moments ago.
    let r = app.rotate_keys(&platform).await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "Retry-After {retry}");

    // As fast as the interval allows: the cap stops it at four published keys.
    let mut statuses = Vec::new();
    for _ in 0..6 {
        app.age_signing_keys().await;
        statuses.push(app.rotate_keys(&platform).await.status().as_u16());
    }
    assert_eq!(statuses, [200, 200, 200, 429, 429, 429]);
    let jwks: Value = app.get_with(&platform, "/jwks").await.json().await.unwrap();
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 4, "{jwks}");

    // Concurrent requests at one replica are serialised: one wins, the others wait and see it.
    app.db
        .client()
        .await
        .execute(
            "UPDATE auth.signing_keys SET expires_at = now() - interval '1 second' \
             WHERE retire_after IS NOT NULL",
            &[],
        )
        .await
        .unwrap();
    app.age_signing_keys().await;
    let burst = futures::future::join_all((0..5).map(|_| app.rotate_keys(&platform))).await;
    let ok = burst.iter().filter(|r| r.status() == 200).count();
    assert_eq!(
        ok,
        1,
        "{:?}",
        burst.iter().map(|r| r.status()).collect::<Vec<_>>()
    );
    // Tokens signed now verify.
    assert_eq!(
        app.introspect(&app.platform_token().await).await["active"],
        true
    );
}
