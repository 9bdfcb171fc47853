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

/// Failing in an administrator's name locks that name from the guesser's address only, so
/// nobody can lock an administrator out; another spelling of the same name that PostgreSQL
/// folds to it is the same account; and a typed name that is no account's is stored nowhere.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_account_lock_holds_for_the_guessers_address_and_every_spelling_but_not_for_others() {
    let app = spawn_app_with(|c| {
        c.auth.trusted_proxies = aurum_http::TrustedProxies::parse(["127.0.0.1"]).unwrap();
        c.auth.brute_force.ip_max_failures = 100;
    })
    .await;
    let (_, challenge) = pkce();
    let form = app
        .login_form(&app.authorize_url(WEB_CLIENT, Some(&challenge), &[]))
        .await;
    let guesser = Some("203.0.113.7");
    for _ in 0..3 {
        let r = app
            .post_login_via(&form, ADMIN, "wrong-password-guess", guesser)
            .await;
        assert_eq!(r.status(), 401);
    }
    let r = app
        .post_login_via(&form, ADMIN, ADMIN_PASSWORD, guesser)
        .await;
    assert_eq!(r.status(), 429, "locked from the guesser's address");

    // A spelling that Rust lowercases differently but the database folds to the admin's name
    // (dotted capital I) names the same account, and the same lock.
    let variant = ADMIN.to_uppercase().replace('I', "\u{130}");
    assert_ne!(variant.to_lowercase(), ADMIN.to_lowercase());
    let aliases = app
        .db
        .count(&format!(
            "SELECT count(*) FROM auth.users WHERE lower(username) = lower('{variant}')"
        ))
        .await;
    if aliases == 1 {
        let r = app
            .post_login_via(&form, &variant, ADMIN_PASSWORD, guesser)
            .await;
        assert_eq!(r.status(), 429, "{variant} dodged the lock");
    }

    // The administrator, elsewhere, signs in.
    let r = app
        .post_login_via(&form, ADMIN, ADMIN_PASSWORD, Some("198.51.100.1"))
        .await;
    assert_eq!(
        r.status(),
        303,
        "the administrator was locked out by someone else"
    );

    // A password typed into the username field is neither recorded nor a lock's key.
    let typed = "Typed-Secret-Phrase-97";
    let r = app
        .post_login_via(&form, typed, "anything-at-all", guesser)
        .await;
    assert_eq!(r.status(), 401);
    for table in ["auth.security_events", "auth.login_attempts"] {
        let found = app
            .db
            .count(&format!(
                "SELECT count(*) FROM {table} t WHERE lower(t::text) LIKE '%typed-secret-phrase%'"
            ))
            .await;
        assert_eq!(found, 0, "the typed name is stored in {table}");
    }
    let named = app
        .db
        .count(&format!(
            "SELECT count(*) FROM auth.security_events WHERE event = 'login_failed' \
             AND username = '{ADMIN}'"
        ))
        .await;
    assert_eq!(named, 3, "failures for the account name the account");
}
