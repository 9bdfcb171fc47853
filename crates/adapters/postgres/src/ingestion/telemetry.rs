//! The telemetry store: idempotent batched writes and downsampling reads.

use async_trait::async_trait;
use aurum_domain::{Bucket, BucketQuery};
use aurum_ports::ingestion::{TelemetryStore, WriteBatch, WriteOutcome};
use aurum_ports::{MachineKey, StoreError};
use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, BigInt, Binary, Double, Integer, Nullable, Text, Timestamptz};
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, RunQueryDsl};

use crate::{pool_error, store_error, PgPool};

#[derive(Debug, Clone)]
pub struct PgTelemetryStore {
    pool: PgPool,
}

impl PgTelemetryStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

/// Rows per statement: arrays are bound as one parameter each, so the bind limit never
/// applies, but very large statements hold locks and memory for longer than needed.
const ROWS_PER_STATEMENT: usize = 10_000;

const INSERT_TELEMETRY: &str = "\
    INSERT INTO ingestion.telemetry (machine_key, seq, ts, received_at, metrics) \
    SELECT * FROM unnest($1::int8[], $2::int8[], $3::timestamptz[], $4::timestamptz[], $5::text[]::jsonb[]) \
    ON CONFLICT DO NOTHING";

const INSERT_TELEMETRY_RETURNING: &str = "\
    INSERT INTO ingestion.telemetry (machine_key, seq, ts, received_at, metrics) \
    SELECT * FROM unnest($1::int8[], $2::int8[], $3::timestamptz[], $4::timestamptz[], $5::text[]::jsonb[]) \
    ON CONFLICT DO NOTHING RETURNING machine_key, seq";

/// The readings as a JSON object, written straight to text (no intermediate JSON tree: this
/// runs for every message).
fn readings_json(readings: &[aurum_domain::Reading]) -> String {
    struct AsMap<'a>(&'a [aurum_domain::Reading]);
    impl serde::Serialize for AsMap<'_> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut m = s.serialize_map(Some(self.0.len()))?;
            for r in self.0 {
                m.serialize_entry(r.metric.as_str(), &r.value)?;
            }
            m.end()
        }
    }
    // Names and finite floats always serialise.
    serde_json::to_string(&AsMap(readings)).unwrap_or_else(|_| "{}".to_owned())
}

#[derive(QueryableByName)]
struct Inserted {
    #[diesel(sql_type = BigInt)]
    machine_key: i64,
    #[diesel(sql_type = BigInt)]
    seq: i64,
}

const INSERT_QUARANTINE: &str = "\
    INSERT INTO ingestion.quarantine \
      (dedup_key, received_at, source, tenant_id, machine_id, seq, topic, metric, value, reason, detail, payload) \
    SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::text[], $4::text[], $5::text[], $6::int8[], \
                         $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::bytea[]) \
    ON CONFLICT (dedup_key) DO NOTHING";

#[async_trait]
impl TelemetryStore for PgTelemetryStore {
    async fn write(&self, batch: &WriteBatch) -> Result<WriteOutcome, StoreError> {
        if batch.is_empty() {
            return Ok(WriteOutcome::default());
        }
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        conn.transaction::<_, diesel::result::Error, _>(async |conn| {
            let mut outcome = WriteOutcome::default();
            for chunk in batch.messages.chunks(ROWS_PER_STATEMENT) {
                let mut keys = Vec::with_capacity(chunk.len());
                let mut seqs = Vec::with_capacity(chunk.len());
                let mut ts = Vec::with_capacity(chunk.len());
                let mut received = Vec::with_capacity(chunk.len());
                let mut metrics = Vec::with_capacity(chunk.len());
                for m in chunk {
                    keys.push(m.machine.0);
                    seqs.push(m.seq.as_i64());
                    ts.push(m.ts);
                    received.push(m.received_at);
                    metrics.push(readings_json(&m.readings));
                }
                let query = diesel::sql_query(if batch.report_inserted {
                    INSERT_TELEMETRY_RETURNING
                } else {
                    INSERT_TELEMETRY
                })
                .bind::<Array<BigInt>, _>(keys)
                .bind::<Array<BigInt>, _>(seqs)
                .bind::<Array<Timestamptz>, _>(ts)
                .bind::<Array<Timestamptz>, _>(received)
                .bind::<Array<Text>, _>(metrics);
                let inserted = if batch.report_inserted {
                    let rows: Vec<Inserted> = query.load(conn).await?;
                    let n = rows.len() as u64;
                    outcome
                        .inserted_keys
                        .extend(rows.into_iter().map(|r| (MachineKey(r.machine_key), r.seq)));
                    n
                } else {
                    query.execute(conn).await? as u64
                };
                outcome.inserted += inserted;
                outcome.duplicates += chunk.len() as u64 - inserted;
            }
            for chunk in batch.quarantine.chunks(ROWS_PER_STATEMENT) {
                let q =
                    |f: &dyn Fn(&aurum_ports::ingestion::QuarantineRecord) -> Option<String>| {
                        chunk.iter().map(f).collect::<Vec<_>>()
                    };
                let written = diesel::sql_query(INSERT_QUARANTINE)
                    .bind::<Array<Text>, _>(
                        chunk
                            .iter()
                            .map(|r| r.dedup_key.clone())
                            .collect::<Vec<_>>(),
                    )
                    .bind::<Array<Timestamptz>, _>(
                        chunk.iter().map(|r| r.received_at).collect::<Vec<_>>(),
                    )
                    .bind::<Array<Text>, _>(
                        chunk.iter().map(|r| r.source.as_str()).collect::<Vec<_>>(),
                    )
                    .bind::<Array<Nullable<Text>>, _>(q(&|r| r.tenant.clone()))
                    .bind::<Array<Nullable<Text>>, _>(q(&|r| r.machine.clone()))
                    .bind::<Array<Nullable<BigInt>>, _>(
                        chunk.iter().map(|r| r.seq).collect::<Vec<_>>(),
                    )
                    .bind::<Array<Nullable<Text>>, _>(q(&|r| r.topic.clone()))
                    .bind::<Array<Nullable<Text>>, _>(q(&|r| r.metric.clone()))
                    .bind::<Array<Nullable<Text>>, _>(q(&|r| r.value.clone()))
                    .bind::<Array<Text>, _>(
                        chunk.iter().map(|r| r.reason.code()).collect::<Vec<_>>(),
                    )
                    .bind::<Array<Text>, _>(
                        chunk.iter().map(|r| r.detail.clone()).collect::<Vec<_>>(),
                    )
                    .bind::<Array<Nullable<Binary>>, _>(
                        chunk.iter().map(|r| r.payload.clone()).collect::<Vec<_>>(),
                    )
                    .execute(conn)
                    .await?;
                outcome.quarantined += written as u64;
            }
            Ok(outcome)
        })
        .await
        .map_err(store_error)
    }

    async fn buckets(
        &self,
        machine: MachineKey,
        q: &BucketQuery,
    ) -> Result<Vec<Bucket>, StoreError> {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = Timestamptz)]
            start: DateTime<Utc>,
            #[diesel(sql_type = Double)]
            avg: f64,
            #[diesel(sql_type = Double)]
            min: f64,
            #[diesel(sql_type = Double)]
            max: f64,
            #[diesel(sql_type = BigInt)]
            count: i64,
        }
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let rows: Vec<Row> = diesel::sql_query(
            "SELECT date_bin(make_interval(secs => $1), ts, $2) AS start, \
                    avg(v) AS avg, min(v) AS min, max(v) AS max, count(v) AS count \
             FROM (SELECT ts, (metrics ->> $3)::float8 AS v \
                   FROM ingestion.telemetry \
                   WHERE machine_key = $4 AND ts >= $2 AND ts < $5) s \
             WHERE v IS NOT NULL \
             GROUP BY 1 ORDER BY 1",
        )
        .bind::<Integer, _>(i32::try_from(q.step.seconds()).unwrap_or(i32::MAX))
        .bind::<Timestamptz, _>(q.range.from())
        .bind::<Text, _>(q.metric.as_str())
        .bind::<BigInt, _>(machine.0)
        .bind::<Timestamptz, _>(q.range.to())
        .load(&mut conn)
        .await
        .map_err(store_error)?;
        Ok(rows
            .into_iter()
            .map(|r| Bucket {
                start: r.start,
                avg: r.avg,
                min: r.min,
                max: r.max,
                count: r.count,
            })
            .collect())
    }
}
