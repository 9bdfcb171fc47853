//! Pool metrics against a real PostgreSQL: connections in use while one is held, and the
//! pool's waited and timed-out gets as counters.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use aurum_postgres::{connect_pool, PoolMetrics};
use aurum_testkit::{metric_value, TestDb};
use prometheus::{Encoder, Registry, TextEncoder};

fn scrape(registry: &Registry, series: &str) -> f64 {
    let mut text = Vec::new();
    TextEncoder::new()
        .encode(&registry.gather(), &mut text)
        .unwrap();
    let text = String::from_utf8(text).unwrap();
    metric_value(&text, series).unwrap_or_else(|| panic!("no {series} in\n{text}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_metrics_follow_held_waited_and_timed_out_connections() {
    let db = TestDb::create().await;
    let mut settings = db.settings("aurumai_ingestion");
    // The server's own user: no migrations (and no service role) needed to hold connections.
    settings.user = settings.admin_user.clone().unwrap();
    settings.pool_max_size = 1;
    settings.connect_timeout_ms = 500;
    let pool = connect_pool(&settings).unwrap();
    let registry = Registry::new();
    PoolMetrics::register(&pool, &registry).unwrap();

    let in_use = "aurum_db_pool_connections{state=\"in_use\"}";
    let idle = "aurum_db_pool_connections{state=\"idle\"}";
    let timed_out = "aurum_db_pool_gets_timed_out_total";
    let waited = "aurum_db_pool_gets_waited_total";
    assert_eq!(scrape(&registry, in_use), 0.0);
    assert_eq!(scrape(&registry, "aurum_db_pool_max_connections"), 1.0);
    assert_eq!(scrape(&registry, timed_out), 0.0);
    assert_eq!(scrape(&registry, waited), 0.0);

    let held = pool.get().await.expect("a connection");
    assert_eq!(scrape(&registry, in_use), 1.0);
    assert_eq!(scrape(&registry, idle), 0.0);
    // That first get may have waited for the pool to open the connection.
    let waited_before = scrape(&registry, waited);

    // The only connection is held: the next get times out, and is counted.
    assert!(pool.get().await.is_err());
    assert_eq!(scrape(&registry, timed_out), 1.0);

    // A get that waits for the held connection and gets it when it is released.
    let waiter = {
        let pool = pool.clone();
        tokio::spawn(async move { pool.get().await.map(drop).is_ok() })
    };
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(held);
    assert!(waiter.await.unwrap(), "the waiting get got the connection");
    assert_eq!(scrape(&registry, waited), waited_before + 1.0);
    assert_eq!(scrape(&registry, in_use), 0.0);
    assert_eq!(scrape(&registry, idle), 1.0);
    // Counters keep their totals across scrapes.
    assert_eq!(scrape(&registry, timed_out), 1.0);
}
