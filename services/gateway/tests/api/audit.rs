//! The audit log: recorded, scoped to the tenant, hash-chained, append-only for the gateway's
//! role, tamper-evident, retained with an anchor; the GDPR export includes it.

use aurum_domain::TenantId;
use aurum_ports::audit::{AuditStore, NewAuditEntry};
use aurum_postgres::audit::PgAuditStore;
use aurum_postgres::connect_pool;
use serde_json::Value;

use crate::helpers::{spawn_app, TENANT};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accesses_are_recorded_chained_and_scoped_to_the_tenant() {
    let app = spawn_app().await;
    app.register_machine("truck-1").await;
    let viewer = app.token("viewer");
    let r = app
        .client
        .get(app.url("/api/v1/machines/truck-1"))
        .bearer_auth(&viewer)
        .header("x-request-id", "audit-req-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // Refused for the role: recorded too.
    assert_eq!(app.get("/api/v1/users", &viewer).await.status(), 403);
    // Another tenant's calls go to its own chain.
    let other = app
        .issuer
        .token("other-viewer", crate::helpers::OTHER_TENANT, &["viewer"]);
    assert_eq!(app.get("/api/v1/machines", &other).await.status(), 200);

    let log = app.audit_entries(3).await;
    let entries = log["entries"].as_array().unwrap();
    assert!(entries.iter().all(|e| e["tenant"] == TENANT), "{log}");
    assert!(entries.iter().all(|e| e["actor"] != "other-viewer"));
    let read = entries
        .iter()
        .find(|e| e["request_id"] == "audit-req-1")
        .expect("the read is recorded");
    assert_eq!(read["actor"], "user-viewer");
    assert_eq!(read["action"], "GET /api/v1/machines/{id}");
    assert_eq!(read["resource"], "/api/v1/machines/truck-1");
    assert_eq!(read["outcome"], 200);
    assert!(entries
        .iter()
        .any(|e| e["action"] == "GET /api/v1/users" && e["outcome"] == 403));
    assert!(entries
        .iter()
        .any(|e| e["action"] == "POST /api/v1/machines" && e["outcome"] == 201));
    // Newest first, each linked to the one before.
    let seqs: Vec<i64> = entries.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[0] == w[1] + 1), "{seqs:?}");
    for w in entries.windows(2) {
        assert_eq!(w[0]["prev_hash"], w[1]["hash"]);
    }
    assert_eq!(log["chain"]["valid"], true, "{log}");

    // Filters.
    let admin = app.token("admin");
    let r: Value = app
        .get("/api/v1/audit?actor=user-operator", &admin)
        .await
        .json()
        .await
        .unwrap();
    let only = r["entries"].as_array().unwrap();
    assert!(!only.is_empty() && only.iter().all(|e| e["actor"] == "user-operator"));
    assert_eq!(app.get("/api/v1/audit?limit=0", &admin).await.status(), 400);
    // Only admins read the log.
    assert_eq!(
        app.get("/api/v1/audit", &app.token("operator"))
            .await
            .status(),
        403
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampering_is_detected_and_the_gateway_role_cannot_rewrite_history() {
    let app = spawn_app().await;
    let viewer = app.token("viewer");
    for _ in 0..4 {
        assert_eq!(app.get("/api/v1/machines", &viewer).await.status(), 200);
    }
    app.audit_entries(4).await;
    let admin = app.token("admin");
    let v: Value = app
        .get("/api/v1/audit/verify", &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["valid"], true, "{v}");
    assert!(v["entries"].as_u64().unwrap() >= 4);

    // The service role may not change or delete entries.
    let denied = app
        .db
        .as_role(
            "aurumai_gateway",
            "UPDATE audit.entries SET outcome = 500 WHERE seq = 2",
        )
        .await;
    assert!(denied.unwrap_err().contains("permission denied"));
    let denied = app
        .db
        .as_role("aurumai_gateway", "DELETE FROM audit.entries")
        .await;
    assert!(denied.unwrap_err().contains("permission denied"));
    let denied = app
        .db
        .as_role("aurumai_gateway", "UPDATE audit.chains SET anchor_seq = 3")
        .await;
    assert!(denied.unwrap_err().contains("permission denied"));

    // A superuser edits an entry: verification names it.
    let c = app.db.client().await;
    c.execute(
        "UPDATE audit.entries SET outcome = 404 WHERE tenant_id = $1 AND seq = 2",
        &[&TENANT],
    )
    .await
    .unwrap();
    let v: Value = app
        .get("/api/v1/audit/verify", &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["valid"], false, "{v}");
    assert_eq!(v["first_broken_seq"], 2);
    c.execute(
        "UPDATE audit.entries SET outcome = 200 WHERE tenant_id = $1 AND seq = 2",
        &[&TENANT],
    )
    .await
    .unwrap();
    let v: Value = app
        .get("/api/v1/audit/verify", &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["valid"], true, "{v}");

    // Deleting an entry in the middle, or the newest, is detected too.
    let newest: i64 = c
        .query_one(
            "SELECT max(seq) FROM audit.entries WHERE tenant_id = $1",
            &[&TENANT],
        )
        .await
        .unwrap()
        .get(0);
    c.execute(
        "DELETE FROM audit.entries WHERE tenant_id = $1 AND seq = $2",
        &[&TENANT, &newest],
    )
    .await
    .unwrap();
    let v: Value = app
        .get("/api/v1/audit/verify", &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["valid"], false, "{v}");
}

/// What a compromised gateway could do with its own database role to hide its tracks: drop
/// the chain and rebuild a forged one, move a head back over entries it then overwrites, or
/// delete history through retention. Each is refused.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_role_can_neither_drop_the_chain_nor_move_its_head_nor_run_retention() {
    let app = spawn_app().await;
    let viewer = app.token("viewer");
    for _ in 0..3 {
        assert_eq!(app.get("/api/v1/machines", &viewer).await.status(), 200);
    }
    app.audit_entries(3).await;
    let gateway = |sql: &'static str| app.db.as_role("aurumai_gateway", sql);
    for sql in [
        "DROP TABLE audit.entries",
        "DROP TABLE audit.chains CASCADE",
        "DROP SCHEMA audit CASCADE",
        "ALTER TABLE audit.entries DISABLE TRIGGER entries_extend_the_head",
        "TRUNCATE audit.entries",
        "UPDATE audit.chains SET last_seq = 1",
        "DELETE FROM audit.chains",
        "INSERT INTO audit.chains (tenant_id, last_seq, last_hash, anchor_hash) \
         VALUES ('forged', 0, decode(repeat('00', 32), 'hex'), decode(repeat('00', 32), 'hex'))",
        "SELECT audit.apply_retention(1)",
    ] {
        let refused = gateway(sql).await;
        let e = refused.expect_err(sql);
        assert!(
            e.contains("permission denied") || e.contains("must be owner"),
            "{sql}: {e}"
        );
    }
    // An entry that does not extend the head (a rewrite of seq 1, or a gap) is refused too.
    for seq in [1, 99] {
        let sql = format!(
            "INSERT INTO audit.entries (tenant_id, seq, actor, action, resource, outcome, \
             request_id, at, prev_hash, hash) VALUES ('{TENANT}', {seq}, 'x', 'GET', '/', 200, \
             'r', now(), decode(repeat('00', 32), 'hex'), decode(repeat('11', 32), 'hex'))"
        );
        let e = app
            .db
            .as_role("aurumai_gateway", &sql)
            .await
            .expect_err(&sql);
        assert!(e.contains("does not extend the chain head"), "{e}");
    }
    let admin = app.token("admin");
    let v: Value = app
        .get("/api/v1/audit/verify", &admin)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(v["valid"], true, "{v}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_deletes_old_entries_and_keeps_the_chain_verifiable() {
    let app = spawn_app().await;
    let pool = connect_pool(&app.db.settings("aurumai_gateway")).unwrap();
    let store = PgAuditStore::new(pool);
    let tenant = TenantId::parse("retained").unwrap();
    let entry = |days_ago: i64, n: usize| NewAuditEntry {
        tenant: tenant.clone(),
        actor: "user-1".into(),
        action: "GET /api/v1/machines".into(),
        resource: format!("/api/v1/machines?n={n}"),
        outcome: 200,
        request_id: format!("r{n}"),
        at: chrono::Utc::now() - chrono::Duration::days(days_ago),
    };
    let old: Vec<_> = (0..5).map(|n| entry(400, n)).collect();
    let new: Vec<_> = (5..8).map(|n| entry(1, n)).collect();
    store.append(&old).await.unwrap();
    store.append(&new).await.unwrap();
    assert!(store.verify(&tenant).await.unwrap().valid);
    // As the migration role: the gateway's own may not (above).
    let deleted = aurum_postgres::audit::apply_retention(&app.db.settings("aurumai_gateway"), 365)
        .await
        .unwrap();
    assert_eq!(deleted, 5);
    let v = store.verify(&tenant).await.unwrap();
    assert!(v.valid, "{v:?}");
    assert_eq!(v.entries, 3);
    assert_eq!(v.anchor_seq, Some(5));
    // Appending after retention continues the chain.
    store.append(&[entry(0, 9)]).await.unwrap();
    let v = store.verify(&tenant).await.unwrap();
    assert!(v.valid && v.entries == 4, "{v:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gdpr_export_holds_the_account_and_the_callers_audit_entries() {
    let app = spawn_app().await;
    let viewer = app.token("viewer");
    for _ in 0..3 {
        assert_eq!(app.get("/api/v1/machines", &viewer).await.status(), 200);
    }
    assert_eq!(
        app.get("/api/v1/machines", &app.token("admin"))
            .await
            .status(),
        200
    );
    app.audit_entries(4).await;
    let r = app.get("/api/v1/me/export", &viewer).await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .contains("attachment"));
    let export: Value = r.json().await.unwrap();
    assert_eq!(export["subject"], "user-viewer");
    assert_eq!(export["tenant"], TENANT);
    // The account part comes from the auth service's export, asked for the same caller.
    assert_eq!(export["account"]["path"], "/v1/me/export");
    assert_eq!(export["account"]["user"], "user-viewer");
    let entries = export["audit_entries"].as_array().unwrap();
    assert!(entries.len() >= 3, "{export}");
    assert!(entries.iter().all(|e| e["actor"] == "user-viewer"));

    // Erasure goes to auth and is recorded.
    let r = app
        .request(reqwest::Method::DELETE, "/api/v1/me", Some(&viewer))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(app.auth.last("/v1/me").unwrap().method, "DELETE");
    app.audit_log_where("the erasure", |entries| {
        entries
            .iter()
            .any(|e| e["action"] == "DELETE /api/v1/me" && e["actor"] == "user-viewer")
    })
    .await;
}
