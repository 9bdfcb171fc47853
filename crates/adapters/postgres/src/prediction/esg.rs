//! ESG storage in the `prediction` schema: `emission_factors` (append-only versions),
//! `activity` (idempotent on machine, metric and period start) and `site_regions`.

use async_trait::async_trait;
use aurum_domain::prediction::{
    ActivityKind, EmissionFactor, FactorSource, MachineActivity, MachineRef, MeteredActivity,
    NewFactor, Region,
};
use aurum_domain::{MachineId, MachineType, MetricName, SiteId, TenantId};
use aurum_ports::prediction::{AddFactorError, EsgStore, RecordOutcome, ReportData, ReportQuery};
use aurum_ports::{MachineKey, StoreError};
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Double, Nullable, Text, Timestamptz};
use diesel_async::{AsyncConnection, RunQueryDsl};

use crate::{pool_error, store_error, PgPool};

use super::schema::prediction::emission_factors as ef;

#[derive(Debug, Clone)]
pub struct PgEsgStore {
    pool: PgPool,
}

impl PgEsgStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

/// Rows per insert statement; arrays bind as one parameter each, this only bounds how long
/// one statement holds its locks.
const ROWS_PER_STATEMENT: usize = 5_000;

/// A stored value that no longer parses means someone edited the table by hand: reported,
/// never trusted.
fn corrupt(what: &str, key: impl std::fmt::Display, e: impl std::fmt::Display) -> StoreError {
    StoreError::Refused(format!("{what} {key} holds an invalid value: {e}"))
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = ef)]
struct FactorRow {
    id: i64,
    kind: String,
    region: String,
    version: i32,
    kg_co2e_per_unit: f64,
    source: String,
    citation: String,
    valid_from: DateTime<Utc>,
    valid_to: Option<DateTime<Utc>>,
    recorded_at: DateTime<Utc>,
    closed_at: Option<DateTime<Utc>>,
}

impl FactorRow {
    fn into_domain(self) -> Result<EmissionFactor, StoreError> {
        let bad = |e: String| corrupt("emission factor", self.id, e);
        Ok(EmissionFactor {
            id: self.id,
            version: self.version,
            kind: ActivityKind::parse(&self.kind).map_err(|e| bad(e.to_string()))?,
            region: Region::parse(&self.region).map_err(|e| bad(e.to_string()))?,
            kg_co2e_per_unit: self.kg_co2e_per_unit,
            source: FactorSource::parse(&self.source).map_err(|e| bad(e.to_string()))?,
            citation: self.citation.clone(),
            valid_from: self.valid_from,
            valid_to: self.valid_to,
            recorded_at: self.recorded_at,
            closed_at: self.closed_at,
        })
    }
}

/// The exclusion constraint that keeps versions of a (kind, region) from overlapping.
const NO_OVERLAP: &str = "emission_factors_no_overlap";

fn is_conflict(e: &diesel::result::Error) -> bool {
    use diesel::result::{DatabaseErrorKind, Error};
    match e {
        Error::DatabaseError(DatabaseErrorKind::UniqueViolation, _) => true,
        Error::DatabaseError(_, info) => info.constraint_name() == Some(NO_OVERLAP),
        _ => false,
    }
}

#[derive(QueryableByName)]
struct MachineRow {
    #[diesel(sql_type = BigInt)]
    machine_key: i64,
    #[diesel(sql_type = Text)]
    machine_id: String,
    #[diesel(sql_type = Text)]
    machine_type: String,
    #[diesel(sql_type = Nullable<Text>)]
    site_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    grid_region: Option<String>,
}

impl MachineRow {
    fn into_domain(self) -> Result<MachineRef, StoreError> {
        let bad = |e: String| corrupt("prediction machine", self.machine_key, e);
        Ok(MachineRef {
            id: MachineId::parse(&self.machine_id).map_err(|e| bad(e.to_string()))?,
            machine_type: self
                .machine_type
                .parse::<MachineType>()
                .map_err(|e| bad(e.to_string()))?,
            site: self
                .site_id
                .as_deref()
                .map(SiteId::parse)
                .transpose()
                .map_err(|e| bad(e.to_string()))?,
            region: match &self.grid_region {
                Some(r) => Region::parse(r).map_err(|e| bad(e.to_string()))?,
                None => Region::global(),
            },
        })
    }
}

#[derive(QueryableByName)]
struct ActivityRow {
    #[diesel(sql_type = Text)]
    machine_id: String,
    #[diesel(sql_type = Text)]
    metric: String,
    #[diesel(sql_type = Timestamptz)]
    period_from: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    period_to: DateTime<Utc>,
    #[diesel(sql_type = Double)]
    amount: f64,
}

impl ActivityRow {
    fn into_domain(self) -> Result<MachineActivity, StoreError> {
        let key = format!("{}/{}@{}", self.machine_id, self.metric, self.period_from);
        let bad = |e: String| corrupt("activity", &key, e);
        let metric = MetricName::parse(&self.metric).map_err(|e| bad(e.to_string()))?;
        Ok(MachineActivity {
            machine: MachineId::parse(&self.machine_id).map_err(|e| bad(e.to_string()))?,
            activity: MeteredActivity::new(metric, self.period_from, self.period_to, self.amount)
                .map_err(|e| bad(e.to_string()))?,
        })
    }
}

/// The machines of a tenant matching the optional site and machine filters, each with the
/// grid region of its site as known at `as_of`.
const SELECT_MACHINES: &str = "\
    SELECT m.machine_key, m.machine_id, m.machine_type, m.site_id, r.grid_region \
    FROM prediction.machines m \
    LEFT JOIN LATERAL ( \
        SELECT s.grid_region FROM prediction.site_regions s \
        WHERE s.tenant_id = m.tenant_id AND s.site_id = m.site_id AND s.recorded_at <= $4 \
        ORDER BY s.recorded_at DESC LIMIT 1) r ON true \
    WHERE m.tenant_id = $1 \
      AND ($2::text IS NULL OR m.site_id = $2) \
      AND ($3::text IS NULL OR m.machine_id = $3) \
    ORDER BY m.machine_id";

/// Their activity overlapping `[$5, $6)` and recorded by `$4`.
const SELECT_ACTIVITY: &str = "\
    SELECT m.machine_id, a.metric, a.period_from, a.period_to, a.amount \
    FROM prediction.activity a \
    JOIN prediction.machines m ON m.machine_key = a.machine_key \
    WHERE m.tenant_id = $1 \
      AND ($2::text IS NULL OR m.site_id = $2) \
      AND ($3::text IS NULL OR m.machine_id = $3) \
      AND a.recorded_at <= $4 \
      AND a.period_to > $5 AND a.period_from < $6 \
    ORDER BY m.machine_id, a.metric, a.period_from";

/// How many of the keys in `$1` are machines of tenant `$2` (keys are primary keys, so each
/// counts at most once).
const COUNT_OWNED: &str = "\
    SELECT count(*) AS n FROM prediction.machines \
    WHERE machine_key = ANY($1) AND tenant_id = $2";

/// One row per array position: machine key, metric, period start, period end, amount.
const INSERT_ACTIVITY: &str = "\
    INSERT INTO prediction.activity (machine_key, metric, period_from, period_to, amount) \
    SELECT u.machine_key, u.metric, u.period_from, u.period_to, u.amount \
    FROM unnest($1::int8[], $2::text[], $3::timestamptz[], $4::timestamptz[], $5::float8[]) \
         AS u(machine_key, metric, period_from, period_to, amount) \
    ON CONFLICT (machine_key, metric, period_from) DO NOTHING";

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

#[async_trait]
impl EsgStore for PgEsgStore {
    async fn record_activity(
        &self,
        tenant: &TenantId,
        activity: &[(MachineKey, MeteredActivity)],
    ) -> Result<RecordOutcome, StoreError> {
        if activity.is_empty() {
            return Ok(RecordOutcome::default());
        }
        let mut keys: Vec<i64> = activity.iter().map(|(k, _)| k.0).collect();
        keys.sort_unstable();
        keys.dedup();
        // Rows in key order: two transactions carrying the same periods (a redelivered
        // batch) then take their row locks in the same order and never deadlock.
        let mut rows: Vec<&(MachineKey, MeteredActivity)> = activity.iter().collect();
        rows.sort_unstable_by(|(ka, a), (kb, b)| {
            (ka.0, a.metric.as_str(), a.from).cmp(&(kb.0, b.metric.as_str(), b.from))
        });
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let tenant = tenant.as_str().to_owned();
        let owned = conn
            .transaction::<_, diesel::result::Error, _>(async |conn| {
                // A key from another tenant must never receive this tenant's activity: the
                // whole batch is refused, not just that machine's rows.
                let found: Count = diesel::sql_query(COUNT_OWNED)
                    .bind::<Array<BigInt>, _>(&keys)
                    .bind::<Text, _>(&tenant)
                    .get_result(conn)
                    .await?;
                if found.n != keys.len() as i64 {
                    return Ok(Err(keys.len() as i64 - found.n));
                }
                let mut outcome = RecordOutcome::default();
                for chunk in rows.chunks(ROWS_PER_STATEMENT) {
                    let inserted = diesel::sql_query(INSERT_ACTIVITY)
                        .bind::<Array<BigInt>, _>(
                            chunk.iter().map(|(k, _)| k.0).collect::<Vec<_>>(),
                        )
                        .bind::<Array<Text>, _>(
                            chunk
                                .iter()
                                .map(|(_, a)| a.metric.as_str())
                                .collect::<Vec<_>>(),
                        )
                        .bind::<Array<Timestamptz>, _>(
                            chunk.iter().map(|(_, a)| a.from).collect::<Vec<_>>(),
                        )
                        .bind::<Array<Timestamptz>, _>(
                            chunk.iter().map(|(_, a)| a.to).collect::<Vec<_>>(),
                        )
                        .bind::<Array<Double>, _>(
                            chunk.iter().map(|(_, a)| a.amount).collect::<Vec<_>>(),
                        )
                        .execute(conn)
                        .await? as u64;
                    outcome.inserted += inserted;
                    outcome.duplicates += chunk.len() as u64 - inserted;
                }
                Ok(Ok(outcome))
            })
            .await
            .map_err(store_error)?;
        owned.map_err(|foreign| {
            StoreError::Refused(format!(
                "{foreign} of {} machine keys in the batch are not machines of tenant {tenant}; \
                 nothing was recorded",
                keys.len()
            ))
        })
    }

    async fn list_factors(&self) -> Result<Vec<EmissionFactor>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        ef::table
            .order((ef::kind.asc(), ef::region.asc(), ef::version.asc()))
            .select(FactorRow::as_select())
            .load(&mut conn)
            .await
            .map_err(store_error)?
            .into_iter()
            .map(FactorRow::into_domain)
            .collect()
    }

    async fn add_factor(&self, new: &NewFactor) -> Result<EmissionFactor, AddFactorError> {
        enum Outcome {
            Added(FactorRow),
            Refused(String),
        }
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let kind = new.kind().as_str();
        let region = new.region().as_str().to_owned();
        let outcome = conn
            .transaction::<_, diesel::result::Error, _>(async |conn| {
                // One writer per (kind, region) at a time across replicas, so two edits
                // never both close the same version. The exclusion constraint would catch
                // it anyway; the lock turns the race into an orderly queue.
                diesel::sql_query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                    .bind::<Text, _>(format!("aurum.esg.factor/{kind}/{region}"))
                    .execute(conn)
                    .await?;
                let latest: Option<FactorRow> = ef::table
                    .filter(ef::kind.eq(kind))
                    .filter(ef::region.eq(&region))
                    .order(ef::version.desc())
                    .select(FactorRow::as_select())
                    .first(conn)
                    .await
                    .optional()?;
                let version = match &latest {
                    None => 1,
                    Some(l) => {
                        let starts_after = match l.valid_to {
                            None => new.valid_from() > l.valid_from,
                            Some(end) => new.valid_from() >= end,
                        };
                        if !starts_after {
                            return Ok(Outcome::Refused(format!(
                                "a new version of {kind} in {region} must start after version {} \
                                 (valid from {}); earlier periods keep the factors they were \
                                 reported with",
                                l.version,
                                l.valid_from.to_rfc3339()
                            )));
                        }
                        if l.valid_to.is_none() {
                            diesel::update(ef::table.filter(ef::id.eq(l.id)))
                                .set((
                                    ef::valid_to.eq(Some(new.valid_from())),
                                    ef::closed_at
                                        .eq(diesel::dsl::sql::<Nullable<Timestamptz>>("now()")),
                                ))
                                .execute(conn)
                                .await?;
                        }
                        l.version + 1
                    }
                };
                let row = diesel::insert_into(ef::table)
                    .values((
                        ef::kind.eq(kind),
                        ef::region.eq(&region),
                        ef::version.eq(version),
                        ef::kg_co2e_per_unit.eq(new.kg_co2e_per_unit()),
                        ef::unit.eq(new.kind().unit().symbol()),
                        ef::source.eq(new.source().as_str()),
                        ef::citation.eq(new.citation()),
                        ef::valid_from.eq(new.valid_from()),
                    ))
                    .returning(FactorRow::as_returning())
                    .get_result(conn)
                    .await?;
                Ok(Outcome::Added(row))
            })
            .await;
        match outcome {
            Ok(Outcome::Added(row)) => Ok(row.into_domain()?),
            Ok(Outcome::Refused(why)) => Err(AddFactorError::Conflict(why)),
            Err(e) if is_conflict(&e) => Err(AddFactorError::Conflict(format!(
                "another version of {kind} in {region} was added at the same time; retry"
            ))),
            Err(e) => Err(AddFactorError::Store(store_error(e))),
        }
    }

    async fn set_site_region(
        &self,
        tenant: &TenantId,
        site: &SiteId,
        region: &Region,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        diesel::sql_query(
            "INSERT INTO prediction.site_regions (tenant_id, site_id, grid_region) \
             VALUES ($1, $2, $3)",
        )
        .bind::<Text, _>(tenant.as_str())
        .bind::<Text, _>(site.as_str())
        .bind::<Text, _>(region.as_str())
        .execute(&mut conn)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn load_report(&self, q: &ReportQuery) -> Result<ReportData, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let site = q.site.as_ref().map(SiteId::as_str);
        let machine = q.machine.as_ref().map(MachineId::as_str);
        // One snapshot for the three reads, so a concurrent write never shows in one and
        // not in another.
        let (machines, activity, factors) = conn
            .build_transaction()
            .read_only()
            .repeatable_read()
            .run::<_, diesel::result::Error, _>(async |conn| {
                let machines: Vec<MachineRow> = diesel::sql_query(SELECT_MACHINES)
                    .bind::<Text, _>(q.tenant.as_str())
                    .bind::<Nullable<Text>, _>(site)
                    .bind::<Nullable<Text>, _>(machine)
                    .bind::<Timestamptz, _>(q.as_of)
                    .load(conn)
                    .await?;
                let activity: Vec<ActivityRow> = if machines.is_empty() {
                    Vec::new()
                } else {
                    diesel::sql_query(SELECT_ACTIVITY)
                        .bind::<Text, _>(q.tenant.as_str())
                        .bind::<Nullable<Text>, _>(site)
                        .bind::<Nullable<Text>, _>(machine)
                        .bind::<Timestamptz, _>(q.as_of)
                        .bind::<Timestamptz, _>(q.period.from())
                        .bind::<Timestamptz, _>(q.period.to())
                        .load(conn)
                        .await?
                };
                let factors: Vec<FactorRow> = ef::table
                    .order((ef::kind.asc(), ef::region.asc(), ef::version.asc()))
                    .select(FactorRow::as_select())
                    .load(conn)
                    .await?;
                Ok((machines, activity, factors))
            })
            .await
            .map_err(store_error)?;
        Ok(ReportData {
            machines: machines
                .into_iter()
                .map(MachineRow::into_domain)
                .collect::<Result<_, _>>()?,
            activity: activity
                .into_iter()
                .map(ActivityRow::into_domain)
                .collect::<Result<_, _>>()?,
            factors: factors
                .into_iter()
                .map(FactorRow::into_domain)
                .collect::<Result<_, _>>()?,
        })
    }
}
