//! RP-initiated logout ends the session and its refresh tokens.

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_revokes_the_sessions_refresh_tokens_and_returns_to_a_registered_uri() {
    let app = spawn_app().await;
    let session = app.admin_tokens().await;
    let other = app.admin_tokens().await;
    let id_token = session.id_token.clone().unwrap();

    // An unregistered post-logout URI is refused and ends nothing.
    let mut url = url::Url::parse(&app.url("/logout")).unwrap();
    url.query_pairs_mut()
        .append_pair("id_token_hint", &id_token)
        .append_pair("post_logout_redirect_uri", "https://evil.example/");
    let r = app.client.get(url.as_str()).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert_eq!(
        app.introspect(session.refresh_token.as_deref().unwrap())
            .await["active"],
        true
    );

    let mut url = url::Url::parse(&app.url("/logout")).unwrap();
    url.query_pairs_mut()
        .append_pair("id_token_hint", &id_token)
        .append_pair("post_logout_redirect_uri", POST_LOGOUT)
        .append_pair("state", "bye-1");
    let r = app.client.get(url.as_str()).send().await.unwrap();
    assert_eq!(r.status(), 303);
    let location = r.headers()["location"].to_str().unwrap();
    assert!(location.starts_with(POST_LOGOUT), "{location}");
    assert_eq!(query_of(location)["state"], "bye-1");

    assert_eq!(
        app.refresh(session.refresh_token.as_deref().unwrap())
            .await
            .status(),
        400
    );
    // Another session of the same user stays.
    assert_eq!(
        app.refresh(other.refresh_token.as_deref().unwrap())
            .await
            .status(),
        200
    );
    // Without a redirect: a signed-out page.
    let r = app.client.get(app.url("/logout")).send().await.unwrap();
    assert_eq!(r.status(), 200);
}
