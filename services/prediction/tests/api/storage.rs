//! The prediction schema's role holds only what it needs.

use crate::helpers::spawn_app;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_prediction_role_owns_its_schema_and_nothing_else() {
    let app = spawn_app().await;
    let db = &app.db;
    // Another context's schema beside it.
    aurum_postgres::ingestion::migrate(&db.settings("aurumai_ingestion"))
        .await
        .unwrap();
    assert!(db
        .as_role(
            "aurumai_prediction",
            "SELECT count(*) FROM prediction.models"
        )
        .await
        .is_ok());
    // Not ingestion's data, not other roles' powers.
    let e = db
        .as_role(
            "aurumai_prediction",
            "SELECT count(*) FROM ingestion.telemetry",
        )
        .await
        .unwrap_err();
    assert!(e.contains("permission denied"), "{e}");
    let e = db
        .as_role("aurumai_prediction", "CREATE ROLE intruder")
        .await
        .unwrap_err();
    assert!(e.contains("permission denied"), "{e}");
    // The analytics role reads but never writes.
    assert!(db
        .as_role("aurumai_readonly", "SELECT count(*) FROM prediction.alerts")
        .await
        .is_ok());
    let e = db
        .as_role("aurumai_readonly", "DELETE FROM prediction.alerts")
        .await
        .unwrap_err();
    assert!(e.contains("permission denied"), "{e}");
}
