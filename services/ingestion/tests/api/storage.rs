//! The database as the security review wants it: least-privilege roles, TLS, retention.

use std::sync::Arc;

use aurum_config::SslMode;
use aurum_ports::ingestion::TelemetryMaintenance;
use aurum_ports::HealthCheck;
use aurum_postgres::ingestion::PgTelemetryMaintenance;
use aurum_postgres::{connect_pool, PgHealth};
use aurum_testkit::TestDb;
use chrono::{TimeDelta, Utc};

async fn migrated_db() -> TestDb {
    let db = TestDb::create().await;
    aurum_postgres::ingestion::migrate(&db.settings("aurumai_ingestion"))
        .await
        .unwrap();
    db
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_service_role_owns_its_schema_and_nothing_more() {
    let db = migrated_db().await;
    let owner = db
        .client()
        .await
        .query_one(
            "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = 'ingestion'",
            &[],
        )
        .await
        .unwrap()
        .get::<_, String>(0);
    assert_eq!(owner, "aurumai_ingestion");
    let err = db
        .as_role("aurumai_ingestion", "CREATE ROLE intruder")
        .await
        .unwrap_err();
    assert!(err.contains("permission denied"), "{err}");
    let err = db
        .as_role("aurumai_ingestion", "CREATE TABLE public.x (a int)")
        .await
        .unwrap_err();
    assert!(err.contains("permission denied"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_analytics_role_reads_but_never_writes() {
    let db = migrated_db().await;
    assert!(db
        .as_role(
            "aurumai_readonly",
            "SELECT count(*) FROM ingestion.telemetry"
        )
        .await
        .is_ok());
    assert!(db
        .as_role(
            "aurumai_readonly",
            "SELECT count(*) FROM ingestion.machines"
        )
        .await
        .is_ok());
    let err = db
        .as_role(
            "aurumai_readonly",
            "INSERT INTO ingestion.machines (tenant_id, machine_id, machine_type, profile_id) VALUES ('t', 'm', 'haul_truck', 'haul_truck')",
        )
        .await
        .unwrap_err();
    assert!(err.contains("permission denied"), "{err}");
    let err = db
        .as_role("aurumai_readonly", "DELETE FROM ingestion.quarantine")
        .await
        .unwrap_err();
    assert!(err.contains("permission denied"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partitions_are_created_ahead_and_dropped_whole_after_retention() {
    let db = migrated_db().await;
    let pool = connect_pool(&db.settings("aurumai_ingestion")).unwrap();
    let m = PgTelemetryMaintenance::new(pool);
    let now = Utc::now();
    let created = m.ensure_partitions(now, 100, 3).await.unwrap();
    assert_eq!(created, 104);
    assert_eq!(
        m.ensure_partitions(now, 100, 3).await.unwrap(),
        0,
        "idempotent"
    );
    let old = now - TimeDelta::days(95);
    db.client()
        .await
        .batch_execute(&format!(
            "INSERT INTO ingestion.telemetry VALUES (1, 1, '{old}', '{old}', '{{}}'), (1, 2, '{now}', '{now}', '{{}}')",
            old = old.to_rfc3339(),
            now = now.to_rfc3339(),
        ))
        .await
        .unwrap();
    db.client()
        .await
        .batch_execute(&format!(
            "INSERT INTO ingestion.quarantine (dedup_key, received_at, source, reason, detail) VALUES \
             ('old', '{old}', 'mqtt', 'malformed_payload', 'x'), ('new', '{now}', 'mqtt', 'malformed_payload', 'x')",
            old = old.to_rfc3339(),
            now = now.to_rfc3339(),
        ))
        .await
        .unwrap();
    let dropped = m.apply_retention(now, 90).await.unwrap();
    assert_eq!(
        db.count("SELECT count(*) FROM ingestion.quarantine").await,
        1,
        "old quarantine rows go too"
    );
    assert_eq!(dropped.len(), 10, "{dropped:?}");
    assert_eq!(
        db.count("SELECT count(*) FROM ingestion.telemetry").await,
        1
    );
    let parts = db
        .count("SELECT count(*) FROM pg_inherits WHERE inhparent = 'ingestion.telemetry'::regclass")
        .await;
    assert_eq!(parts, 94);
}

/// The certificate the local server presents and the host name it is valid for.
async fn server_certificate(db: &TestDb) -> (std::path::PathBuf, String) {
    let c = db.client().await;
    let ssl: String = c.query_one("SHOW ssl", &[]).await.unwrap().get(0);
    assert_eq!(
        ssl, "on",
        "the test server must have TLS on (make deps turns it on)"
    );
    let file: String = c.query_one("SHOW ssl_cert_file", &[]).await.unwrap().get(0);
    let pem = std::fs::read(&file).unwrap();
    let cert = openssl::x509::X509::from_pem(&pem).unwrap();
    let host = cert
        .subject_alt_names()
        .and_then(|names| names.iter().find_map(|n| n.dnsname().map(str::to_owned)))
        .or_else(|| {
            cert.subject_name()
                .entries_by_nid(openssl::nid::Nid::COMMONNAME)
                .next()
                .and_then(|e| e.data().to_string().ok())
        })
        .unwrap();
    (file.into(), host)
}

async fn tls_in_use(db: &TestDb) -> bool {
    db.client()
        .await
        .query_one(
            "SELECT coalesce(bool_and(s.ssl), false) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
             WHERE a.datname = current_database() AND a.application_name = 'aurumai'",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_connections_use_tls_when_required() {
    let db = migrated_db().await;
    let mut s = db.settings("aurumai_ingestion");
    s.sslmode = SslMode::Require;
    let pool = connect_pool(&s).unwrap();
    assert!(PgHealth::new(pool.clone()).check().await.ready);
    assert!(tls_in_use(&db).await, "sslmode=require must encrypt");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn verify_full_checks_the_chain_and_the_host_name() {
    let db = migrated_db().await;
    let (cert, host) = server_certificate(&db).await;
    let check = |host: &str, ca: std::path::PathBuf| {
        let mut s = db.settings("aurumai_ingestion");
        s.sslmode = SslMode::VerifyFull;
        s.sslrootcert = Some(ca);
        s.host = host.to_owned();
        async move {
            Arc::new(PgHealth::new(connect_pool(&s).unwrap()))
                .check()
                .await
                .ready
        }
    };
    assert!(
        check(&host, cert.clone()).await,
        "the server's own name and CA verify"
    );
    // The same server reached by a name its certificate does not carry is refused.
    if host != "127.0.0.1" {
        assert!(
            !check("127.0.0.1", cert.clone()).await,
            "host name must be checked"
        );
    }
    // A CA that did not sign the server's certificate is refused.
    let other = tempfile::NamedTempFile::new().unwrap();
    let key = openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap();
    let mut name = openssl::x509::X509NameBuilder::new().unwrap();
    name.append_entry_by_text("CN", "not-the-server-ca")
        .unwrap();
    let name = name.build();
    let mut b = openssl::x509::X509Builder::new().unwrap();
    b.set_version(2).unwrap();
    b.set_subject_name(&name).unwrap();
    b.set_issuer_name(&name).unwrap();
    b.set_pubkey(&key).unwrap();
    b.set_not_before(&openssl::asn1::Asn1Time::days_from_now(0).unwrap())
        .unwrap();
    b.set_not_after(&openssl::asn1::Asn1Time::days_from_now(1).unwrap())
        .unwrap();
    b.sign(&key, openssl::hash::MessageDigest::sha256())
        .unwrap();
    std::fs::write(other.path(), b.build().to_pem().unwrap()).unwrap();
    assert!(
        !check(&host, other.path().to_owned()).await,
        "an unknown CA must be refused"
    );
}
