//! Failed sign-ins lock the account for a while; it recovers.

use std::time::Duration;

use crate::helpers::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_failures_lock_the_account_then_it_recovers() {
    let app = spawn_app().await;
    let (_, challenge) = pkce();
    let url = app.authorize_url(WEB_CLIENT, Some(&challenge), &[]);
    let form = app.login_form(&url).await;
    // Threshold 3 in tests.
    for _ in 0..3 {
        let r = app.post_login(&form, ADMIN, "wrong-password-guess").await;
        assert_eq!(r.status(), 401);
        assert!(r
            .text()
            .await
            .unwrap()
            .contains("Invalid username or password"));
    }
    // Locked: even the right password is refused now.
    let r = app.post_login(&form, ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(r.status(), 429);
    // Case does not dodge the lock.
    let r = app
        .post_login(&form, &ADMIN.to_uppercase(), ADMIN_PASSWORD)
        .await;
    assert_eq!(r.status(), 429);
    let metrics = app.metrics().await;
    assert_eq!(
        aurum_testkit::metric_value(
            &metrics,
            "aurum_auth_security_events_total{event=\"login_failed\"}"
        ),
        Some(3.0),
        "{metrics}"
    );
    assert!(aurum_testkit::metric_value(
        &metrics,
        "aurum_auth_security_events_total{event=\"login_locked\"}"
    )
    .is_some_and(|n| n >= 2.0));
    // The lock is 2 s in tests.
    tokio::time::sleep(Duration::from_millis(2_300)).await;
    let r = app.post_login(&form, ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(r.status(), 303, "the account recovers after the lock");
    // Unknown usernames are counted the same way and get the same answer.
    let r = app
        .post_login(&form, "nobody-here", "whatever-password")
        .await;
    assert_eq!(r.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_address_guessing_many_accounts_is_locked_too() {
    let app = spawn_app_with(|c| c.auth.brute_force.ip_max_failures = 4).await;
    let (_, challenge) = pkce();
    let form = app
        .login_form(&app.authorize_url(WEB_CLIENT, Some(&challenge), &[]))
        .await;
    for i in 0..4 {
        let r = app
            .post_login(&form, &format!("guess-{i}"), "wrong-password-guess")
            .await;
        assert_eq!(r.status(), 401);
    }
    let r = app.post_login(&form, ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(r.status(), 429, "this address is locked");
}
