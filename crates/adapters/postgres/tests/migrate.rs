//! `migrate` run by an administrator sets the service role's password (what the Helm
//! chart's migration Job relies on), as a SCRAM verifier.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurum_testkit::TestDb;
use secrecy::SecretString;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_as_admin_sets_the_service_roles_password_as_a_scram_verifier() {
    let db = TestDb::create().await;
    let mut settings = db.settings("aurumai_prediction");
    let password = "migrate-test-password-0123456789";
    settings.password = Some(SecretString::from(password.to_owned()));

    aurum_postgres::migrate(&settings).await.unwrap();
    // Running it again (an upgrade) is fine too.
    aurum_postgres::migrate(&settings).await.unwrap();

    let row = db
        .client()
        .await
        .query_one(
            "SELECT rolpassword FROM pg_authid WHERE rolname = 'aurumai_prediction'",
            &[],
        )
        .await
        .unwrap();
    let stored: String = row.get(0);
    assert!(stored.starts_with("SCRAM-SHA-256$4096:"), "{stored}");
    assert!(!stored.contains(password));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_the_migrations_do_not_create_is_refused() {
    let db = TestDb::create().await;
    let mut settings = db.settings("someone_else");
    settings.password = Some(SecretString::from("whatever-0123456789".to_owned()));
    let err = aurum_postgres::migrate(&settings).await.unwrap_err();
    assert!(
        matches!(err, aurum_postgres::MigrateError::UnknownRole(_)),
        "{err}"
    );
}
