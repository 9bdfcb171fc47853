//! Machines known to prediction, their latest features and predictions, and the history.

use std::collections::HashMap;

use async_trait::async_trait;
use aurum_domain::prediction::{FeatureContribution, Prediction, Severity};
use aurum_domain::{FeatureVector, MachineId, MachineType, SiteId, TenantId, TimeRange};
use aurum_ports::prediction::{
    FleetEntry, MachineIdentity, PredictionStore, RecentScores, TrackedMachine,
};
use aurum_ports::{MachineKey, StoreError};
use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, BigInt, Double, Nullable, Text, Timestamptz};
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, RunQueryDsl};

use crate::{pool_error, store_error, PgPool};

#[derive(Debug, Clone)]
pub struct PgPredictionStore {
    pool: PgPool,
}

impl PgPredictionStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[derive(QueryableByName)]
struct MachineRow {
    #[diesel(sql_type = BigInt)]
    machine_key: i64,
    #[diesel(sql_type = Text)]
    tenant_id: String,
    #[diesel(sql_type = Text)]
    machine_id: String,
    #[diesel(sql_type = Text)]
    machine_type: String,
    #[diesel(sql_type = Nullable<Text>)]
    site_id: Option<String>,
}

fn corrupt(what: &str, key: i64, e: impl std::fmt::Display) -> StoreError {
    StoreError::Refused(format!(
        "prediction row of machine {key} has an invalid {what}: {e}"
    ))
}

impl MachineRow {
    fn into_tracked(self) -> Result<TrackedMachine, StoreError> {
        let key = self.machine_key;
        Ok(TrackedMachine {
            key: MachineKey(key),
            tenant_id: TenantId::parse(&self.tenant_id).map_err(|e| corrupt("tenant", key, e))?,
            machine_id: MachineId::parse(&self.machine_id).map_err(|e| corrupt("id", key, e))?,
            machine_type: self
                .machine_type
                .parse::<MachineType>()
                .map_err(|e| corrupt("type", key, e))?,
            site_id: self
                .site_id
                .as_deref()
                .map(SiteId::parse)
                .transpose()
                .map_err(|e| corrupt("site", key, e))?,
        })
    }
}

/// Prediction columns, shared by the history and the status queries.
#[derive(QueryableByName)]
struct PredictionRow {
    #[diesel(sql_type = Nullable<Timestamptz>)]
    at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    model_version: Option<String>,
    #[diesel(sql_type = Nullable<Double>)]
    risk_score: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    failure_probability: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    horizon_h: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    rul_hours: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    anomaly_score: Option<f64>,
    #[diesel(sql_type = Nullable<Double>)]
    confidence: Option<f64>,
    #[diesel(sql_type = Nullable<Text>)]
    top_features: Option<String>,
}

impl PredictionRow {
    /// `None` for a machine not scored yet (every column null).
    fn into_prediction(self) -> Option<Prediction> {
        Some(Prediction {
            at: self.at?,
            model_version: self.model_version?,
            risk_score: self.risk_score?,
            failure_probability: self.failure_probability?,
            horizon_h: self.horizon_h?,
            rul_hours: self.rul_hours?,
            anomaly_score: self.anomaly_score?,
            confidence: self.confidence?,
            top_features: self
                .top_features
                .and_then(|t| serde_json::from_str::<Vec<FeatureContribution>>(&t).ok())
                .unwrap_or_default(),
        })
    }
}

/// How many of its latest scores a machine's status keeps for the alert policy.
pub const RECENT_SCORES: i64 = 16;

const MACHINE_COLUMNS: &str = "machine_key, tenant_id, machine_id, machine_type, site_id";

/// Prediction columns, one entry per row (`None`: no prediction).
#[derive(Default)]
struct StatusPredictions {
    at: Vec<Option<DateTime<Utc>>>,
    version: Vec<Option<String>>,
    risk: Vec<Option<f64>>,
    prob: Vec<Option<f64>>,
    horizon: Vec<Option<f64>>,
    rul: Vec<Option<f64>>,
    anomaly: Vec<Option<f64>>,
    conf: Vec<Option<f64>>,
    top: Vec<Option<String>>,
}

impl StatusPredictions {
    fn push(&mut self, p: Option<&Prediction>) -> Result<(), StoreError> {
        self.at.push(p.map(|p| p.at));
        self.version.push(p.map(|p| p.model_version.clone()));
        self.risk.push(p.map(|p| p.risk_score));
        self.prob.push(p.map(|p| p.failure_probability));
        self.horizon.push(p.map(|p| p.horizon_h));
        self.rul.push(p.map(|p| p.rul_hours));
        self.anomaly.push(p.map(|p| p.anomaly_score));
        self.conf.push(p.map(|p| p.confidence));
        self.top.push(p.map(|p| json(&p.top_features)).transpose()?);
        Ok(())
    }
}

fn json<T: serde::Serialize>(value: &T) -> Result<String, StoreError> {
    serde_json::to_string(value)
        .map_err(|e| StoreError::Refused(format!("cannot encode as JSON: {e}")))
}

#[async_trait]
impl PredictionStore for PgPredictionStore {
    async fn track(&self, machines: &[MachineIdentity]) -> Result<Vec<TrackedMachine>, StoreError> {
        if machines.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let col =
            |f: &dyn Fn(&MachineIdentity) -> String| machines.iter().map(f).collect::<Vec<_>>();
        // Updating only a changed site keeps the common case (nothing new) free of writes;
        // machines known with the same site are not even offered (no row lock on conflict).
        let rows: Vec<MachineRow> = diesel::sql_query(format!(
            "WITH given AS ( \
                 SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[]) \
                     WITH ORDINALITY AS g(tenant_id, machine_id, machine_type, site_id, ord)), \
             ins AS ( \
                 INSERT INTO prediction.machines (tenant_id, machine_id, machine_type, site_id) \
                 SELECT * FROM ( \
                     SELECT DISTINCT ON (tenant_id, machine_id) \
                         tenant_id, machine_id, machine_type, site_id \
                     FROM given ORDER BY tenant_id, machine_id, ord DESC) d \
                 WHERE NOT EXISTS (SELECT 1 FROM prediction.machines k \
                     WHERE k.tenant_id = d.tenant_id AND k.machine_id = d.machine_id \
                       AND k.site_id IS NOT DISTINCT FROM d.site_id) \
                 ON CONFLICT (tenant_id, machine_id) DO UPDATE SET site_id = EXCLUDED.site_id \
                     WHERE prediction.machines.site_id IS DISTINCT FROM EXCLUDED.site_id \
                 RETURNING {MACHINE_COLUMNS}), \
             known AS ( \
                 SELECT * FROM ins \
                 UNION ALL \
                 SELECT {MACHINE_COLUMNS} FROM prediction.machines m \
                 WHERE (tenant_id, machine_id) IN (SELECT tenant_id, machine_id FROM given) \
                   AND NOT EXISTS (SELECT 1 FROM ins WHERE ins.machine_key = m.machine_key)) \
             SELECT k.{cols} FROM given g JOIN known k USING (tenant_id, machine_id) \
             ORDER BY g.ord",
            cols = MACHINE_COLUMNS.replace(", ", ", k."),
        ))
        .bind::<Array<Text>, _>(col(&|m| m.tenant_id.as_str().to_owned()))
        .bind::<Array<Text>, _>(col(&|m| m.machine_id.as_str().to_owned()))
        .bind::<Array<Text>, _>(col(&|m| m.machine_type.as_str().to_owned()))
        .bind::<Array<Nullable<Text>>, _>(
            machines
                .iter()
                .map(|m| m.site_id.as_ref().map(|s| s.as_str().to_owned()))
                .collect::<Vec<_>>(),
        )
        .load(&mut conn)
        .await
        .map_err(store_error)?;
        let tracked = rows
            .into_iter()
            .map(MachineRow::into_tracked)
            .collect::<Result<Vec<_>, _>>()?;
        // Rows inserted or updated by this statement are invisible to its own snapshot:
        // `known` takes them from RETURNING, the others from the table.
        if tracked.len() != machines.len() {
            return Err(StoreError::Refused(format!(
                "tracked {} of {} machines",
                tracked.len(),
                machines.len()
            )));
        }
        Ok(tracked)
    }

    async fn find(
        &self,
        tenant: &TenantId,
        machine: &MachineId,
    ) -> Result<Option<TrackedMachine>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let rows: Vec<MachineRow> = diesel::sql_query(format!(
            "SELECT {MACHINE_COLUMNS} FROM prediction.machines \
             WHERE tenant_id = $1 AND machine_id = $2"
        ))
        .bind::<Text, _>(tenant.as_str())
        .bind::<Text, _>(machine.as_str())
        .load(&mut conn)
        .await
        .map_err(store_error)?;
        rows.into_iter()
            .next()
            .map(MachineRow::into_tracked)
            .transpose()
    }

    async fn save(
        &self,
        scored: &[(MachineKey, &FeatureVector, Option<&Prediction>)],
    ) -> Result<(), StoreError> {
        if scored.is_empty() {
            return Ok(());
        }
        // Each machine's status row is written once: its newest window and, apart, its newest
        // prediction (one statement, so one row version per machine and batch).
        let mut newest: HashMap<i64, (usize, Option<usize>)> = HashMap::with_capacity(scored.len());
        for (i, (key, f, p)) in scored.iter().enumerate() {
            let entry = newest.entry(key.0).or_insert((i, None));
            if scored[entry.0].1.window_end <= f.window_end {
                entry.0 = i;
            }
            if let Some(p) = p {
                let later = entry
                    .1
                    .and_then(|j| scored[j].2)
                    .is_none_or(|q| q.at <= p.at);
                if later {
                    entry.1 = Some(i);
                }
            }
        }
        let mut status: Vec<(i64, usize, Option<usize>)> =
            newest.into_iter().map(|(k, (f, p))| (k, f, p)).collect();
        // A fixed order: concurrent batches lock shared machines in the same order.
        status.sort_unstable_by_key(|s| s.0);
        let mut s_keys = Vec::with_capacity(status.len());
        let mut s_ends = Vec::with_capacity(status.len());
        let mut s_features = Vec::with_capacity(status.len());
        let mut s_pred = StatusPredictions::default();
        for (k, f, p) in &status {
            s_keys.push(*k);
            s_ends.push(scored[*f].1.window_end);
            s_features.push(json(scored[*f].1)?);
            s_pred.push(p.and_then(|j| scored[j].2))?;
        }
        let mut p_keys = Vec::new();
        let mut p_at = Vec::new();
        let mut p_version = Vec::new();
        let mut p_risk = Vec::new();
        let mut p_prob = Vec::new();
        let mut p_horizon = Vec::new();
        let mut p_rul = Vec::new();
        let mut p_anomaly = Vec::new();
        let mut p_conf = Vec::new();
        let mut p_top = Vec::new();
        for (key, _, p) in scored {
            if let Some(p) = p {
                p_keys.push(key.0);
                p_at.push(p.at);
                p_version.push(p.model_version.clone());
                p_risk.push(p.risk_score);
                p_prob.push(p.failure_probability);
                p_horizon.push(p.horizon_h);
                p_rul.push(p.rul_hours);
                p_anomaly.push(p.anomaly_score);
                p_conf.push(p.confidence);
                p_top.push(json(&p.top_features)?);
            }
        }
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        conn.transaction::<_, diesel::result::Error, _>(async |conn| {
            if !p_keys.is_empty() {
                diesel::sql_query(
                    "INSERT INTO prediction.predictions (machine_key, ts, model_version, \
                         risk_score, failure_probability, horizon_h, rul_hours, anomaly_score, \
                         confidence, top_features) \
                     SELECT k, t, v, r, p, h, u, a, c, tf::jsonb FROM unnest($1::bigint[], \
                         $2::timestamptz[], $3::text[], $4::float8[], $5::float8[], \
                         $6::float8[], $7::float8[], $8::float8[], $9::float8[], $10::text[]) \
                         AS x(k, t, v, r, p, h, u, a, c, tf) \
                     ON CONFLICT (machine_key, ts, model_version) DO UPDATE SET \
                         risk_score = EXCLUDED.risk_score, \
                         failure_probability = EXCLUDED.failure_probability, \
                         horizon_h = EXCLUDED.horizon_h, rul_hours = EXCLUDED.rul_hours, \
                         anomaly_score = EXCLUDED.anomaly_score, \
                         confidence = EXCLUDED.confidence, \
                         top_features = EXCLUDED.top_features",
                )
                .bind::<Array<BigInt>, _>(&p_keys)
                .bind::<Array<Timestamptz>, _>(&p_at)
                .bind::<Array<Text>, _>(&p_version)
                .bind::<Array<Double>, _>(&p_risk)
                .bind::<Array<Double>, _>(&p_prob)
                .bind::<Array<Double>, _>(&p_horizon)
                .bind::<Array<Double>, _>(&p_rul)
                .bind::<Array<Double>, _>(&p_anomaly)
                .bind::<Array<Double>, _>(&p_conf)
                .bind::<Array<Text>, _>(&p_top)
                .execute(conn)
                .await?;
            }
            // The newest window wins and a late, older batch never rolls the status back;
            // likewise, apart, for the prediction.
            let newer_window = "s.window_end <= EXCLUDED.window_end";
            let newer_prediction = "EXCLUDED.predicted_at IS NOT NULL \
                AND (s.predicted_at IS NULL OR s.predicted_at <= EXCLUDED.predicted_at)";
            let prediction_columns = [
                "predicted_at",
                "model_version",
                "risk_score",
                "failure_probability",
                "horizon_h",
                "rul_hours",
                "anomaly_score",
                "confidence",
                "top_features",
            ]
            .iter()
            .map(|c| format!("{c} = CASE WHEN {newer_prediction} THEN EXCLUDED.{c} ELSE s.{c} END"))
            .collect::<Vec<_>>()
            .join(", ");
            let recent = |c: &str, score: &str| {
                format!(
                    "{c} = CASE WHEN {newer_prediction} THEN (s.{c} || EXCLUDED.{score}) \
                         [greatest(1, cardinality(s.{c}) - $13 + 2):] ELSE s.{c} END"
                )
            };
            diesel::sql_query(format!(
                "INSERT INTO prediction.machine_status AS s (machine_key, window_end, features, \
                     predicted_at, model_version, risk_score, failure_probability, horizon_h, \
                     rul_hours, anomaly_score, confidence, top_features, recent_risk, \
                     recent_anomaly) \
                 SELECT k, e, f::json, t, v, r, p, h, u, a, c, tf::jsonb, \
                     CASE WHEN t IS NULL THEN '{{}}'::float8[] ELSE ARRAY[r] END, \
                     CASE WHEN t IS NULL THEN '{{}}'::float8[] ELSE ARRAY[a] END \
                 FROM unnest($1::bigint[], $2::timestamptz[], $3::text[], $4::timestamptz[], \
                     $5::text[], $6::float8[], $7::float8[], $8::float8[], $9::float8[], \
                     $10::float8[], $11::float8[], $12::text[]) \
                     AS x(k, e, f, t, v, r, p, h, u, a, c, tf) \
                 ON CONFLICT (machine_key) DO UPDATE SET \
                     window_end = CASE WHEN {newer_window} THEN EXCLUDED.window_end \
                         ELSE s.window_end END, \
                     features = CASE WHEN {newer_window} THEN EXCLUDED.features \
                         ELSE s.features END, \
                     {prediction_columns}, {risk}, {anomaly} \
                 WHERE {newer_window} OR ({newer_prediction})",
                risk = recent("recent_risk", "risk_score"),
                anomaly = recent("recent_anomaly", "anomaly_score"),
            ))
            .bind::<Array<BigInt>, _>(&s_keys)
            .bind::<Array<Timestamptz>, _>(&s_ends)
            .bind::<Array<Text>, _>(&s_features)
            .bind::<Array<Nullable<Timestamptz>>, _>(&s_pred.at)
            .bind::<Array<Nullable<Text>>, _>(&s_pred.version)
            .bind::<Array<Nullable<Double>>, _>(&s_pred.risk)
            .bind::<Array<Nullable<Double>>, _>(&s_pred.prob)
            .bind::<Array<Nullable<Double>>, _>(&s_pred.horizon)
            .bind::<Array<Nullable<Double>>, _>(&s_pred.rul)
            .bind::<Array<Nullable<Double>>, _>(&s_pred.anomaly)
            .bind::<Array<Nullable<Double>>, _>(&s_pred.conf)
            .bind::<Array<Nullable<Text>>, _>(&s_pred.top)
            .bind::<BigInt, _>(RECENT_SCORES)
            .execute(conn)
            .await?;
            Ok(())
        })
        .await
        .map_err(store_error)
    }

    async fn recent_scores(&self, keys: &[MachineKey]) -> Result<Vec<RecentScores>, StoreError> {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = BigInt)]
            machine_key: i64,
            #[diesel(sql_type = Array<Double>)]
            recent_risk: Vec<f64>,
            #[diesel(sql_type = Array<Double>)]
            recent_anomaly: Vec<f64>,
        }
        if keys.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let rows: Vec<Row> = diesel::sql_query(
            "SELECT machine_key, recent_risk, recent_anomaly FROM prediction.machine_status \
             WHERE machine_key = ANY($1)",
        )
        .bind::<Array<BigInt>, _>(keys.iter().map(|k| k.0).collect::<Vec<_>>())
        .load(&mut conn)
        .await
        .map_err(store_error)?;
        Ok(rows
            .into_iter()
            .map(|r| RecentScores {
                machine: MachineKey(r.machine_key),
                risk: r.recent_risk,
                anomaly: r.recent_anomaly,
            })
            .collect())
    }

    async fn latest_features(&self, key: MachineKey) -> Result<Option<FeatureVector>, StoreError> {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = Text)]
            features: String,
        }
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let rows: Vec<Row> = diesel::sql_query(
            "SELECT features::text AS features FROM prediction.machine_status \
             WHERE machine_key = $1",
        )
        .bind::<BigInt, _>(key.0)
        .load(&mut conn)
        .await
        .map_err(store_error)?;
        rows.into_iter()
            .next()
            .map(|r| {
                serde_json::from_str(&r.features).map_err(|e| corrupt("feature vector", key.0, e))
            })
            .transpose()
    }

    async fn predictions(
        &self,
        key: MachineKey,
        range: TimeRange,
        limit: usize,
    ) -> Result<Vec<Prediction>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let rows: Vec<PredictionRow> = diesel::sql_query(
            "SELECT ts AS at, model_version, risk_score, failure_probability, horizon_h, \
                    rul_hours, anomaly_score, confidence, top_features::text AS top_features \
             FROM prediction.predictions \
             WHERE machine_key = $1 AND ts >= $2 AND ts < $3 \
             ORDER BY ts, model_version LIMIT $4",
        )
        .bind::<BigInt, _>(key.0)
        .bind::<Timestamptz, _>(range.from())
        .bind::<Timestamptz, _>(range.to())
        .bind::<BigInt, _>(i64::try_from(limit).unwrap_or(i64::MAX))
        .load(&mut conn)
        .await
        .map_err(store_error)?;
        Ok(rows
            .into_iter()
            .filter_map(PredictionRow::into_prediction)
            .collect())
    }

    async fn apply_retention(&self, days: u32) -> Result<u64, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let deleted = diesel::sql_query(
            "DELETE FROM prediction.predictions WHERE ts < now() - make_interval(days => $1)",
        )
        .bind::<diesel::sql_types::Integer, _>(i32::try_from(days).unwrap_or(i32::MAX))
        .execute(&mut conn)
        .await
        .map_err(store_error)?;
        Ok(deleted as u64)
    }

    async fn fleet(&self, tenant: &TenantId) -> Result<Vec<FleetEntry>, StoreError> {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(embed)]
            machine: MachineRow,
            #[diesel(sql_type = Timestamptz)]
            window_end: DateTime<Utc>,
            #[diesel(sql_type = Nullable<Timestamptz>)]
            predicted_at: Option<DateTime<Utc>>,
            #[diesel(sql_type = Nullable<Text>)]
            model_version: Option<String>,
            #[diesel(sql_type = Nullable<Double>)]
            risk_score: Option<f64>,
            #[diesel(sql_type = Nullable<Double>)]
            failure_probability: Option<f64>,
            #[diesel(sql_type = Nullable<Double>)]
            rul_hours: Option<f64>,
            #[diesel(sql_type = Nullable<Double>)]
            anomaly_score: Option<f64>,
            #[diesel(sql_type = Nullable<Text>)]
            top_feature: Option<String>,
            #[diesel(sql_type = BigInt)]
            open_alerts: i64,
            #[diesel(sql_type = Nullable<Text>)]
            worst_severity: Option<String>,
        }
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        // Narrow rows (the strongest feature only, no feature vector) keep the sort in memory
        // and the answer small for fleets of thousands.
        let rows: Vec<Row> = diesel::sql_query(
            "SELECT m.machine_key, m.tenant_id, m.machine_id, m.machine_type, m.site_id, \
                    s.window_end, s.predicted_at, s.model_version, s.risk_score, \
                    s.failure_probability, s.rul_hours, s.anomaly_score, \
                    s.top_features -> 0 ->> 'feature' AS top_feature, \
                    coalesce(a.open_alerts, 0) AS open_alerts, a.worst_severity \
             FROM prediction.machines m \
             JOIN prediction.machine_status s USING (machine_key) \
             LEFT JOIN ( \
                 SELECT machine_key, count(*) AS open_alerts, \
                        (array_agg(severity ORDER BY CASE severity WHEN 'emergency' THEN 4 \
                            WHEN 'critical' THEN 3 WHEN 'warning' THEN 2 ELSE 1 END DESC))[1] \
                            AS worst_severity \
                 FROM prediction.alerts WHERE state <> 'resolved' GROUP BY machine_key) a \
               USING (machine_key) \
             WHERE m.tenant_id = $1 \
             ORDER BY s.risk_score DESC NULLS LAST, m.machine_id",
        )
        .bind::<Text, _>(tenant.as_str())
        .load(&mut conn)
        .await
        .map_err(store_error)?;
        rows.into_iter()
            .map(|r| {
                let key = r.machine.machine_key;
                let m = r.machine.into_tracked()?;
                Ok(FleetEntry {
                    machine_id: m.machine_id,
                    machine_type: m.machine_type,
                    site_id: m.site_id,
                    window_end: r.window_end,
                    predicted_at: r.predicted_at,
                    model_version: r.model_version,
                    risk_score: r.risk_score,
                    failure_probability: r.failure_probability,
                    rul_hours: r.rul_hours,
                    anomaly_score: r.anomaly_score,
                    top_feature: r.top_feature,
                    open_alerts: r.open_alerts,
                    worst_open_severity: r
                        .worst_severity
                        .map(|s| {
                            s.parse::<Severity>()
                                .map_err(|e| corrupt("severity", key, e))
                        })
                        .transpose()?,
                })
            })
            .collect()
    }
}
