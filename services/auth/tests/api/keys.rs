//! Key rotation: a new key signs, the old one stays published until its tokens expire.

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

    let r = app
        .client
        .post(app.url("/v1/keys/rotate"))
        .bearer_auth(&before.access_token)
        .send()
        .await
        .unwrap();
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
    let r = app
        .client
        .post(app.url("/v1/keys/rotate"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
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
    let r = app
        .client
        .post(app.url("/v1/keys/rotate"))
        .bearer_auth(&fresh)
        .send()
        .await
        .unwrap();
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
