//! `migrate` run by an administrator sets the service role's password (what the Helm
//! chart's migration Job relies on), as a SCRAM verifier; each context's `migrate` creates its
//! own schema only, and the four work in any order.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurum_testkit::TestDb;
use secrecy::SecretString;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn migrate_as_admin_sets_the_service_roles_password_as_a_scram_verifier() {
    let db = TestDb::create().await;
    let mut settings = db.settings("aurumai_prediction");
    let password = "migrate-test-password-0123456789";
    settings.password = Some(SecretString::from(password.to_owned()));

    aurum_postgres::prediction::migrate(&settings)
        .await
        .unwrap();
    // Running it again (an upgrade) is fine too.
    aurum_postgres::prediction::migrate(&settings)
        .await
        .unwrap();

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
    let err = aurum_postgres::ingestion::migrate(&settings)
        .await
        .unwrap_err();
    assert!(
        matches!(err, aurum_postgres::MigrateError::UnknownRole(_)),
        "{err}"
    );
}

async fn schemas(db: &TestDb) -> Vec<String> {
    db.client()
        .await
        .query(
            "SELECT nspname::text FROM pg_namespace \
             WHERE nspname IN ('ingestion', 'prediction', 'auth', 'audit') ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

async fn applied_versions(db: &TestDb) -> Vec<String> {
    db.client()
        .await
        .query(
            "SELECT version FROM __diesel_schema_migrations ORDER BY version",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_services_migrate_creates_its_own_schema_only() {
    let db = TestDb::create().await;
    let applied = aurum_postgres::auth::migrate(&db.settings("aurumai_auth"))
        .await
        .unwrap();
    assert_eq!(schemas(&db).await, ["auth"]);
    // The shared set's one and auth's five.
    assert_eq!(applied.len(), 6, "{applied:?}");

    aurum_postgres::audit::migrate(&db.settings("aurumai_gateway"))
        .await
        .unwrap();
    assert_eq!(schemas(&db).await, ["audit", "auth"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_four_sets_apply_in_any_order_and_once() {
    let db = TestDb::create().await;
    // The reverse of the order the sets had when they were one.
    aurum_postgres::audit::migrate(&db.settings("aurumai_gateway"))
        .await
        .unwrap();
    aurum_postgres::auth::migrate(&db.settings("aurumai_auth"))
        .await
        .unwrap();
    aurum_postgres::prediction::migrate(&db.settings("aurumai_prediction"))
        .await
        .unwrap();
    aurum_postgres::ingestion::migrate(&db.settings("aurumai_ingestion"))
        .await
        .unwrap();
    assert_eq!(
        schemas(&db).await,
        ["audit", "auth", "ingestion", "prediction"]
    );
    let versions = applied_versions(&db).await;
    // 14 schema migrations and the shared one, each recorded once in diesel's one table.
    assert_eq!(versions.len(), 15, "{versions:?}");

    // An upgrade: every service migrates again and finds nothing to do.
    for (set, role) in [
        ("ingestion", "aurumai_ingestion"),
        ("prediction", "aurumai_prediction"),
        ("auth", "aurumai_auth"),
        ("audit", "aurumai_gateway"),
    ] {
        let settings = db.settings(role);
        let again = match set {
            "ingestion" => aurum_postgres::ingestion::migrate(&settings).await,
            "prediction" => aurum_postgres::prediction::migrate(&settings).await,
            "auth" => aurum_postgres::auth::migrate(&settings).await,
            _ => aurum_postgres::audit::migrate(&settings).await,
        }
        .unwrap();
        assert!(again.is_empty(), "{set}: {again:?}");
    }
}
