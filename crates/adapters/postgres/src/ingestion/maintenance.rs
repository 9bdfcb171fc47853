//! Daily partitions of `ingestion.telemetry`: created ahead of the clock, dropped whole when
//! older than the retention period. With TimescaleDB the hypertable makes its own chunks and
//! retention drops chunks instead.

use async_trait::async_trait;
use aurum_ports::ingestion::TelemetryMaintenance;
use aurum_ports::StoreError;
use chrono::{DateTime, Days, NaiveDate, Utc};
use diesel::sql_types::{Bool, Text};
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};

use crate::{pool_error, store_error, PgPool};

#[derive(Debug, Clone)]
pub struct PgTelemetryMaintenance {
    pool: PgPool,
}

impl PgTelemetryMaintenance {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

const PREFIX: &str = "telemetry_p";

/// `telemetry_p20261128` for the day starting 2026-11-28 00:00 UTC.
fn partition_name(day: NaiveDate) -> String {
    format!("{PREFIX}{}", day.format("%Y%m%d"))
}

fn partition_day(name: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(name.strip_prefix(PREFIX)?, "%Y%m%d").ok()
}

async fn is_hypertable(conn: &mut AsyncPgConnection) -> Result<bool, diesel::result::Error> {
    #[derive(QueryableByName)]
    struct R {
        #[diesel(sql_type = Bool)]
        yes: bool,
    }
    let r: R = diesel::sql_query(
        "SELECT EXISTS (SELECT 1 FROM pg_partitioned_table p \
                        JOIN pg_class c ON c.oid = p.partrelid \
                        JOIN pg_namespace n ON n.oid = c.relnamespace \
                        WHERE n.nspname = 'ingestion' AND c.relname = 'telemetry') = false AS yes",
    )
    .get_result(conn)
    .await?;
    Ok(r.yes)
}

/// Replicas run maintenance concurrently; this lock makes them take turns.
const LOCK: &str = "SELECT pg_advisory_xact_lock(hashtext('aurumai.ingestion.partitions'))";

#[async_trait]
impl TelemetryMaintenance for PgTelemetryMaintenance {
    async fn ensure_partitions(
        &self,
        now: DateTime<Utc>,
        back_days: u32,
        ahead_days: u32,
    ) -> Result<u32, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        if is_hypertable(&mut conn).await.map_err(store_error)? {
            return Ok(0);
        }
        let today = now.date_naive();
        let first = today - Days::new(u64::from(back_days));
        let last = today + Days::new(u64::from(ahead_days));
        conn.transaction::<_, diesel::result::Error, _>(async |conn| {
            diesel::sql_query(LOCK).execute(conn).await?;
            let mut created = 0;
            let mut day = first;
            while day <= last {
                let next = day + Days::new(1);
                #[derive(QueryableByName)]
                struct Exists {
                    #[diesel(sql_type = Bool)]
                    yes: bool,
                }
                let exists: Exists =
                    diesel::sql_query("SELECT to_regclass('ingestion.' || $1) IS NOT NULL AS yes")
                        .bind::<Text, _>(partition_name(day))
                        .get_result(conn)
                        .await?;
                if exists.yes {
                    day = next;
                    continue;
                }
                // Identifiers and bounds come from dates computed here, never from input.
                diesel::sql_query(format!(
                    "CREATE TABLE IF NOT EXISTS ingestion.{} PARTITION OF ingestion.telemetry \
                         FOR VALUES FROM ('{} 00:00:00+00') TO ('{} 00:00:00+00')",
                    partition_name(day),
                    day.format("%Y-%m-%d"),
                    next.format("%Y-%m-%d"),
                ))
                .execute(conn)
                .await?;
                created += 1;
                day = next;
            }
            Ok(created)
        })
        .await
        .map_err(store_error)
    }

    async fn apply_retention(
        &self,
        now: DateTime<Utc>,
        retention_days: u32,
    ) -> Result<Vec<String>, StoreError> {
        #[derive(QueryableByName)]
        struct Part {
            #[diesel(sql_type = Text)]
            name: String,
        }
        let cutoff = now.date_naive() - Days::new(u64::from(retention_days));
        let cutoff_start = cutoff
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .unwrap_or(now);
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let hypertable = is_hypertable(&mut conn).await.map_err(store_error)?;
        conn.transaction::<_, diesel::result::Error, _>(async |conn| {
            diesel::sql_query(LOCK).execute(conn).await?;
            let mut dropped = Vec::new();
            if hypertable {
                diesel::sql_query("SELECT drop_chunks('ingestion.telemetry', older_than => $1)")
                    .bind::<diesel::sql_types::Timestamptz, _>(cutoff_start)
                    .execute(conn)
                    .await?;
            } else {
                let parts: Vec<Part> = diesel::sql_query(
                    "SELECT c.relname::text AS name FROM pg_inherits i \
                     JOIN pg_class c ON c.oid = i.inhrelid \
                     JOIN pg_class p ON p.oid = i.inhparent \
                     JOIN pg_namespace n ON n.oid = p.relnamespace \
                     WHERE n.nspname = 'ingestion' AND p.relname = 'telemetry'",
                )
                .load(conn)
                .await?;
                for p in parts {
                    // A day's partition holds [day, day + 1): drop it once day + 1 <= cutoff.
                    let Some(day) = partition_day(&p.name) else {
                        continue;
                    };
                    if day + Days::new(1) <= cutoff {
                        diesel::sql_query(format!("DROP TABLE ingestion.{}", partition_name(day)))
                            .execute(conn)
                            .await?;
                        dropped.push(p.name);
                    }
                }
            }
            diesel::sql_query("DELETE FROM ingestion.quarantine WHERE received_at < $1")
                .bind::<diesel::sql_types::Timestamptz, _>(cutoff_start)
                .execute(conn)
                .await?;
            Ok(dropped)
        })
        .await
        .map_err(store_error)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_names_roundtrip() {
        let d = NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
        assert_eq!(partition_name(d), "telemetry_p20261128");
        assert_eq!(partition_day(&partition_name(d)), Some(d));
        assert_eq!(partition_day("telemetry_default"), None);
    }
}
