//! Personal-data export and erasure (anonymisation).

use serde_json::Value;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_exports_their_data_and_erasure_anonymises_and_revokes() {
    let app = spawn_app().await;
    let admin = app.admin_tokens().await.access_token;
    let u = app.create_user(&admin, "erin", &["operator"]).await;
    let id = u["id"].as_str().unwrap().to_owned();
    let t = app.sign_in("erin@acme", "erin-password").await;

    let r = app.get_with(&t.access_token, "/v1/me/export").await;
    assert_eq!(r.status(), 200);
    let export: Value = r.json().await.unwrap();
    assert_eq!(export["profile"]["username"], "erin@acme");
    assert_eq!(export["profile"]["email"], "erin@example.com");
    assert_eq!(export["roles"], serde_json::json!(["operator"]));
    let sessions = export["refresh_tokens"].as_array().unwrap();
    assert_eq!(sessions.len(), 1);
    assert!(sessions[0].get("token_hash").is_none());
    let text = export.to_string();
    assert!(!text.contains(t.refresh_token.as_deref().unwrap()));
    assert!(!text.contains("argon2"));
    assert!(export["security_events"]
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["event"] == "login_succeeded"));

    let r = app
        .client
        .delete(app.url("/v1/me"))
        .bearer_auth(&t.access_token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);

    let row = app
        .db
        .client()
        .await
        .query_one(
            "SELECT username, display_name, email, password_hash, disabled, anonymised_at IS NOT NULL \
             FROM auth.users WHERE id = $1::text::uuid",
            &[&id],
        )
        .await
        .unwrap();
    let username: String = row.get(0);
    assert!(username.starts_with("deleted-"), "{username}");
    assert_eq!(row.get::<_, Option<String>>(1), None);
    assert_eq!(row.get::<_, Option<String>>(2), None);
    assert_eq!(row.get::<_, Option<String>>(3), None);
    assert!(row.get::<_, bool>(4));
    assert!(row.get::<_, bool>(5));
    let live = app
        .db
        .count(&format!(
            "SELECT count(*) FROM auth.refresh_tokens WHERE user_id = '{id}' AND revoked_at IS NULL"
        ))
        .await;
    assert_eq!(live, 0);
    assert_eq!(
        app.refresh(t.refresh_token.as_deref().unwrap())
            .await
            .status(),
        400
    );
    assert_eq!(
        app.get_with(&t.access_token, "/userinfo").await.status(),
        401
    );
    // Nobody can sign in as the erased user.
    let (_, challenge) = pkce();
    let form = app
        .login_form(&app.authorize_url(WEB_CLIENT, Some(&challenge), &[]))
        .await;
    assert_eq!(
        app.post_login(&form, "erin@acme", "erin-password")
            .await
            .status(),
        401
    );
    // The admin no longer sees them.
    assert_eq!(
        app.get_with(&admin, &format!("/v1/users/{id}"))
            .await
            .status(),
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_erases_a_user_of_their_tenant() {
    let app = spawn_app().await;
    let admin = app.admin_tokens().await.access_token;
    let u = app.create_user(&admin, "fred", &["viewer"]).await;
    let t = app.sign_in("fred@acme", "fred-password").await;
    let id = u["id"].as_str().unwrap();
    let r = app
        .client
        .delete(app.url(&format!("/v1/users/{id}")))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    assert_eq!(
        app.refresh(t.refresh_token.as_deref().unwrap())
            .await
            .status(),
        400
    );
    let kept = app
        .db
        .count(&format!(
            "SELECT count(*) FROM auth.users WHERE id = '{id}' AND email IS NULL"
        ))
        .await;
    assert_eq!(kept, 1, "the row id stays for audit references");
}
