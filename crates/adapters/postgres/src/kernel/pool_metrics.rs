//! The connection pool as Prometheus metrics, read from the pool at every scrape:
//! `aurum_db_pool_connections{state="idle"|"in_use"}`, `aurum_db_pool_max_connections`,
//! `aurum_db_pool_gets_timed_out_total` and `aurum_db_pool_gets_waited_total`.

use std::sync::Mutex;

use prometheus::core::{Collector, Desc};
use prometheus::proto::MetricFamily;
use prometheus::{IntCounter, IntGauge, IntGaugeVec, Opts, Registry};

use crate::PgPool;

/// What one scrape reads from the pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct PoolSnapshot {
    connections: u32,
    idle: u32,
    max: u32,
    /// Cumulative since the pool was built.
    gets_timed_out: u64,
    gets_waited: u64,
}

type Source = Box<dyn Fn() -> PoolSnapshot + Send + Sync>;

/// A Prometheus collector over a pool: no background task, the values are those of the
/// scrape's moment.
pub struct PoolMetrics {
    source: Source,
    connections: IntGaugeVec,
    max: IntGauge,
    timed_out: IntCounter,
    waited: IntCounter,
    /// Serialises scrapes, so two at once never add the same increase twice.
    update: Mutex<()>,
}

impl std::fmt::Debug for PoolMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PoolMetrics").finish_non_exhaustive()
    }
}

impl PoolMetrics {
    /// Metrics of `pool` (it is cheap to clone: the collector shares it).
    pub fn new(pool: PgPool) -> Result<Self, prometheus::Error> {
        Self::with_source(Box::new(move || {
            let s = pool.state();
            PoolSnapshot {
                connections: s.connections,
                idle: s.idle_connections,
                max: pool.config().max_size,
                gets_timed_out: s.statistics.get_timed_out,
                gets_waited: s.statistics.get_waited,
            }
        }))
    }

    /// Registers the metrics of `pool` on `registry`.
    pub fn register(pool: &PgPool, registry: &Registry) -> Result<(), prometheus::Error> {
        registry.register(Box::new(Self::new(pool.clone())?))
    }

    fn with_source(source: Source) -> Result<Self, prometheus::Error> {
        let connections = IntGaugeVec::new(
            Opts::new(
                "aurum_db_pool_connections",
                "Database pool connections by state (idle, in_use)",
            ),
            &["state"],
        )?;
        for state in ["idle", "in_use"] {
            connections.with_label_values(&[state]);
        }
        Ok(Self {
            source,
            connections,
            max: IntGauge::new(
                "aurum_db_pool_max_connections",
                "Most connections the database pool opens",
            )?,
            timed_out: IntCounter::new(
                "aurum_db_pool_gets_timed_out_total",
                "Requests for a database connection that timed out waiting for one",
            )?,
            waited: IntCounter::new(
                "aurum_db_pool_gets_waited_total",
                "Requests for a database connection that had to wait for one",
            )?,
            update: Mutex::new(()),
        })
    }

    fn refresh(&self) {
        let _one_at_a_time = self.update.lock().unwrap_or_else(|e| e.into_inner());
        let s = (self.source)();
        let idle = s.idle.min(s.connections);
        self.connections
            .with_label_values(&["idle"])
            .set(i64::from(idle));
        self.connections
            .with_label_values(&["in_use"])
            .set(i64::from(s.connections - idle));
        self.max.set(i64::from(s.max));
        // The pool's statistics are cumulative: the counters follow them, never backwards.
        catch_up(&self.timed_out, s.gets_timed_out);
        catch_up(&self.waited, s.gets_waited);
    }
}

fn catch_up(counter: &IntCounter, total: u64) {
    let seen = counter.get();
    if total > seen {
        counter.inc_by(total - seen);
    }
}

impl Collector for PoolMetrics {
    fn desc(&self) -> Vec<&Desc> {
        let mut d = self.connections.desc();
        d.extend(self.max.desc());
        d.extend(self.timed_out.desc());
        d.extend(self.waited.desc());
        d
    }

    fn collect(&self) -> Vec<MetricFamily> {
        self.refresh();
        let mut families = self.connections.collect();
        families.extend(self.max.collect());
        families.extend(self.timed_out.collect());
        families.extend(self.waited.collect());
        families
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn value(registry: &Registry, series: &str) -> Option<f64> {
        use prometheus::Encoder as _;
        let mut text = Vec::new();
        prometheus::TextEncoder::new()
            .encode(&registry.gather(), &mut text)
            .unwrap();
        String::from_utf8(text).unwrap().lines().find_map(|l| {
            l.strip_prefix(series)?
                .strip_prefix(' ')?
                .trim()
                .parse()
                .ok()
        })
    }

    #[test]
    fn each_scrape_reads_the_pool_and_counters_never_go_back() {
        let now = Arc::new(Mutex::new(PoolSnapshot {
            connections: 5,
            idle: 2,
            max: 16,
            gets_timed_out: 3,
            gets_waited: 7,
        }));
        let read = Arc::clone(&now);
        let metrics = PoolMetrics::with_source(Box::new(move || *read.lock().unwrap())).unwrap();
        let registry = Registry::new();
        registry.register(Box::new(metrics)).unwrap();

        assert_eq!(
            value(&registry, "aurum_db_pool_connections{state=\"idle\"}"),
            Some(2.0)
        );
        assert_eq!(
            value(&registry, "aurum_db_pool_connections{state=\"in_use\"}"),
            Some(3.0)
        );
        assert_eq!(
            value(&registry, "aurum_db_pool_max_connections"),
            Some(16.0)
        );
        assert_eq!(
            value(&registry, "aurum_db_pool_gets_timed_out_total"),
            Some(3.0)
        );
        assert_eq!(
            value(&registry, "aurum_db_pool_gets_waited_total"),
            Some(7.0)
        );

        *now.lock().unwrap() = PoolSnapshot {
            connections: 1,
            idle: 1,
            max: 16,
            gets_timed_out: 4,
            gets_waited: 7,
        };
        assert_eq!(
            value(&registry, "aurum_db_pool_connections{state=\"in_use\"}"),
            Some(0.0)
        );
        assert_eq!(
            value(&registry, "aurum_db_pool_gets_timed_out_total"),
            Some(4.0)
        );

        // A source that went backwards (it never should) leaves the counters where they were.
        *now.lock().unwrap() = PoolSnapshot::default();
        assert_eq!(
            value(&registry, "aurum_db_pool_gets_timed_out_total"),
            Some(4.0)
        );
        assert_eq!(
            value(&registry, "aurum_db_pool_gets_waited_total"),
            Some(7.0)
        );
    }
}
