//! The ingestion service as a separate process, shared by the integration tests and the
//! benchmark: both need the binary pointed at their own database, broker and spool.

use std::process::Command;

use aurum_testkit::{Broker, TestDb};

/// `aurum-ingestion serve` configured for `db`, `broker`, `spool` and `port`, through the
/// environment only (no stray `aurumai.toml` is read). Callers add their own settings and
/// where the output goes.
pub fn service_command(
    db: &TestDb,
    broker: &Broker,
    spool: &std::path::Path,
    port: u16,
    client_id: &str,
) -> Command {
    let s = db.settings("aurumai_ingestion");
    let mut c = Command::new(env!("CARGO_BIN_EXE_aurum-ingestion"));
    c.arg("serve")
        .env_clear()
        .env("AURUM_CONFIG", "/nonexistent/aurumai.toml")
        .env("AURUM_HTTP__PORT", port.to_string())
        .env("AURUM_DATABASE__HOST", &s.host)
        .env("AURUM_DATABASE__PORT", s.port.to_string())
        .env("AURUM_DATABASE__NAME", &s.name)
        .env("AURUM_DATABASE__USER", &s.user)
        .env("AURUM_DATABASE__SSLMODE", "disable")
        .env("AURUM_MQTT__URL", broker.url())
        .env("AURUM_MQTT__CLIENT_ID", client_id)
        .env("AURUM_INGEST__SPOOL_DIR", spool);
    c
}

/// The Prometheus exposition of a service at `base` (`http://127.0.0.1:PORT`).
pub async fn metrics(base: &str) -> String {
    reqwest::get(format!("{base}/metrics"))
        .await
        .and_then(|r| r.error_for_status())
        .expect("GET /metrics")
        .text()
        .await
        .expect("metrics body")
}
