//! Alerts in `prediction.alerts`.

use async_trait::async_trait;
use aurum_domain::prediction::{AlertCategory, AlertState, Severity, Verdict};
use aurum_domain::{MachineId, TenantId};
use aurum_ports::prediction::{
    Alert, AlertChange, AlertFeedback, AlertFilter, AlertStore, AlertTransition, AlertUpdate,
};
use aurum_ports::{MachineKey, StoreError};
use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, BigInt, Double, Nullable, Text, Timestamptz};
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, RunQueryDsl};

use crate::{pool_error, store_error, PgPool};

#[derive(Debug, Clone)]
pub struct PgAlertStore {
    pool: PgPool,
}

impl PgAlertStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[derive(QueryableByName)]
struct AlertRow {
    #[diesel(sql_type = BigInt)]
    id: i64,
    #[diesel(sql_type = Text)]
    machine_id: String,
    #[diesel(sql_type = Text)]
    category: String,
    #[diesel(sql_type = Text)]
    severity: String,
    #[diesel(sql_type = Text)]
    state: String,
    #[diesel(sql_type = Double)]
    score: f64,
    #[diesel(sql_type = Double)]
    peak_score: f64,
    #[diesel(sql_type = Text)]
    message: String,
    #[diesel(sql_type = Nullable<Text>)]
    model_version: Option<String>,
    #[diesel(sql_type = Timestamptz)]
    opened_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    updated_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    acknowledged_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    acknowledged_by: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    resolved_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    resolved_by: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    resolution_note: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    verdict: Option<String>,
    #[diesel(sql_type = Nullable<BigInt>)]
    event_id: Option<i64>,
    #[diesel(sql_type = Nullable<Text>)]
    given_by: Option<String>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    given_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    feedback_note: Option<String>,
}

impl AlertRow {
    fn into_alert(self) -> Result<Alert, StoreError> {
        let id = self.id;
        let bad = |what: &str, e: String| {
            StoreError::Refused(format!("alert {id} has an invalid {what}: {e}"))
        };
        Ok(Alert {
            id,
            machine_id: MachineId::parse(&self.machine_id)
                .map_err(|e| bad("machine", e.to_string()))?,
            category: self
                .category
                .parse::<AlertCategory>()
                .map_err(|e| bad("category", e.to_string()))?,
            severity: self
                .severity
                .parse::<Severity>()
                .map_err(|e| bad("severity", e.to_string()))?,
            state: self
                .state
                .parse::<AlertState>()
                .map_err(|e| bad("state", e.to_string()))?,
            score: self.score,
            peak_score: self.peak_score,
            message: self.message,
            model_version: self.model_version,
            opened_at: self.opened_at,
            updated_at: self.updated_at,
            acknowledged_at: self.acknowledged_at,
            acknowledged_by: self.acknowledged_by,
            resolved_at: self.resolved_at,
            resolved_by: self.resolved_by,
            resolution_note: self.resolution_note,
            feedback: match (self.verdict, self.given_by, self.given_at) {
                (Some(v), Some(by), Some(at)) => Some(AlertFeedback {
                    verdict: Verdict::parse(&v).ok_or_else(|| bad("verdict", v.clone()))?,
                    event_id: self.event_id,
                    by,
                    at,
                    note: self.feedback_note,
                }),
                _ => None,
            },
        })
    }
}

/// Raised or updated alerts, column by column.
#[derive(Default)]
struct RaiseColumns {
    keys: Vec<i64>,
    categories: Vec<&'static str>,
    severities: Vec<&'static str>,
    scores: Vec<f64>,
    messages: Vec<String>,
    versions: Vec<Option<String>>,
    at: Vec<DateTime<Utc>>,
}

/// Cleared alerts, column by column.
#[derive(Default)]
struct ClearColumns {
    keys: Vec<i64>,
    categories: Vec<&'static str>,
    scores: Vec<f64>,
    at: Vec<DateTime<Utc>>,
}

const ALERT_COLUMNS: &str = "a.id, m.machine_id, a.category, a.severity, a.state, a.score, \
     a.peak_score, a.message, a.model_version, a.opened_at, a.updated_at, a.acknowledged_at, \
     a.acknowledged_by, a.resolved_at, a.resolved_by, a.resolution_note, f.verdict, f.event_id, \
     f.given_by, f.given_at, f.note AS feedback_note";

/// The tables `ALERT_COLUMNS` come from: the alert, its machine, its verdict if any.
const ALERT_FROM: &str = "prediction.alerts a JOIN prediction.machines m USING (machine_key) \
     LEFT JOIN prediction.alert_feedback f ON f.alert_id = a.id";

/// Who resolves an alert whose condition ended.
const SYSTEM: &str = "system";

#[async_trait]
impl AlertStore for PgAlertStore {
    async fn unresolved(
        &self,
        machines: &[MachineKey],
    ) -> Result<Vec<(MachineKey, AlertCategory, Severity)>, StoreError> {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = BigInt)]
            machine_key: i64,
            #[diesel(sql_type = Text)]
            category: String,
            #[diesel(sql_type = Text)]
            severity: String,
        }
        if machines.is_empty() {
            return Ok(Vec::new());
        }
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let rows: Vec<Row> = diesel::sql_query(
            "SELECT machine_key, category, severity FROM prediction.alerts \
             WHERE state <> 'resolved' AND machine_key = ANY($1)",
        )
        .bind::<Array<BigInt>, _>(machines.iter().map(|k| k.0).collect::<Vec<_>>())
        .load(&mut conn)
        .await
        .map_err(store_error)?;
        rows.into_iter()
            .map(|r| {
                let bad = |e: String| {
                    StoreError::Refused(format!("alert of machine {}: {e}", r.machine_key))
                };
                Ok((
                    MachineKey(r.machine_key),
                    r.category.parse().map_err(
                        |e: aurum_domain::prediction::alerts::UnknownVariant| bad(e.to_string()),
                    )?,
                    r.severity.parse().map_err(
                        |e: aurum_domain::prediction::alerts::UnknownVariant| bad(e.to_string()),
                    )?,
                ))
            })
            .collect()
    }

    async fn apply(&self, updates: &[AlertUpdate]) -> Result<(), StoreError> {
        if updates.is_empty() {
            return Ok(());
        }
        // One statement per kind of change; a batch that changes one machine's category twice
        // needs the changes in order, one by one.
        let mut seen = std::collections::HashSet::with_capacity(updates.len());
        if !updates.iter().all(|u| seen.insert((u.machine, u.category))) {
            return self.apply_in_order(updates).await;
        }
        let mut raise = RaiseColumns::default();
        let mut clear = ClearColumns::default();
        for u in updates {
            match &u.change {
                AlertChange::Raise {
                    severity,
                    score,
                    message,
                }
                | AlertChange::Update {
                    severity,
                    score,
                    message,
                } => {
                    raise.keys.push(u.machine.0);
                    raise.categories.push(u.category.as_str());
                    raise.severities.push(severity.as_str());
                    raise.scores.push(*score);
                    raise.messages.push(message.clone());
                    raise.versions.push(u.model_version.clone());
                    raise.at.push(u.at);
                }
                AlertChange::Clear { score } => {
                    clear.keys.push(u.machine.0);
                    clear.categories.push(u.category.as_str());
                    clear.scores.push(*score);
                    clear.at.push(u.at);
                }
            }
        }
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        conn.transaction::<_, diesel::result::Error, _>(async |conn| {
            if !raise.keys.is_empty() {
                // The partial unique index keeps one unresolved alert per machine and
                // category even when two replicas raise at once: the second updates.
                diesel::sql_query(
                    "INSERT INTO prediction.alerts (machine_key, category, severity, state, \
                         score, peak_score, message, model_version, opened_at, updated_at) \
                     SELECT k, c, s, 'open', x, x, m, v, t, t FROM unnest($1::bigint[], \
                         $2::text[], $3::text[], $4::float8[], $5::text[], $6::text[], \
                         $7::timestamptz[]) AS u(k, c, s, x, m, v, t) \
                     ORDER BY k, c \
                     ON CONFLICT (machine_key, category) WHERE state <> 'resolved' \
                     DO UPDATE SET severity = EXCLUDED.severity, score = EXCLUDED.score, \
                         peak_score = greatest(prediction.alerts.peak_score, EXCLUDED.score), \
                         message = EXCLUDED.message, \
                         model_version = EXCLUDED.model_version, \
                         updated_at = EXCLUDED.updated_at",
                )
                .bind::<Array<BigInt>, _>(&raise.keys)
                .bind::<Array<Text>, _>(&raise.categories)
                .bind::<Array<Text>, _>(&raise.severities)
                .bind::<Array<Double>, _>(&raise.scores)
                .bind::<Array<Text>, _>(&raise.messages)
                .bind::<Array<Nullable<Text>>, _>(&raise.versions)
                .bind::<Array<Timestamptz>, _>(&raise.at)
                .execute(conn)
                .await?;
            }
            if !clear.keys.is_empty() {
                diesel::sql_query(
                    "UPDATE prediction.alerts a SET state = 'resolved', score = u.x, \
                         updated_at = u.t, resolved_at = u.t, resolved_by = $5, \
                         resolution_note = 'condition cleared' \
                     FROM unnest($1::bigint[], $2::text[], $3::float8[], $4::timestamptz[]) \
                         AS u(k, c, x, t) \
                     WHERE a.machine_key = u.k AND a.category = u.c AND a.state <> 'resolved'",
                )
                .bind::<Array<BigInt>, _>(&clear.keys)
                .bind::<Array<Text>, _>(&clear.categories)
                .bind::<Array<Double>, _>(&clear.scores)
                .bind::<Array<Timestamptz>, _>(&clear.at)
                .bind::<Text, _>(SYSTEM)
                .execute(conn)
                .await?;
            }
            Ok(())
        })
        .await
        .map_err(store_error)
    }

    async fn list(
        &self,
        tenant: &TenantId,
        filter: &AlertFilter,
    ) -> Result<Vec<Alert>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let rows: Vec<AlertRow> = diesel::sql_query(format!(
            "SELECT {ALERT_COLUMNS} FROM {ALERT_FROM} \
             WHERE m.tenant_id = $1 \
               AND ($2::text IS NULL OR a.state = $2) \
               AND ($3::text IS NULL OR a.severity = $3) \
               AND ($4::text IS NULL OR m.machine_id = $4) \
             ORDER BY a.opened_at DESC, a.id DESC LIMIT $5"
        ))
        .bind::<Text, _>(tenant.as_str())
        .bind::<Nullable<Text>, _>(filter.state.map(AlertState::as_str))
        .bind::<Nullable<Text>, _>(filter.severity.map(Severity::as_str))
        .bind::<Nullable<Text>, _>(filter.machine.as_ref().map(MachineId::as_str))
        .bind::<BigInt, _>(i64::try_from(filter.limit).unwrap_or(i64::MAX))
        .load(&mut conn)
        .await
        .map_err(store_error)?;
        rows.into_iter().map(AlertRow::into_alert).collect()
    }

    async fn acknowledge(
        &self,
        tenant: &TenantId,
        id: i64,
        by: &str,
        at: DateTime<Utc>,
    ) -> Result<AlertTransition, StoreError> {
        self.transition(tenant, id, at, by, Step::Acknowledge).await
    }

    async fn resolve(
        &self,
        tenant: &TenantId,
        id: i64,
        by: &str,
        note: Option<&str>,
        at: DateTime<Utc>,
    ) -> Result<AlertTransition, StoreError> {
        self.transition(tenant, id, at, by, Step::Resolve(note))
            .await
    }

    async fn give_feedback(
        &self,
        tenant: &TenantId,
        id: i64,
        feedback: &AlertFeedback,
    ) -> Result<AlertTransition, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let tenant = tenant.as_str().to_owned();
        let feedback = feedback.clone();
        let rows: Vec<AlertRow> = conn
            .transaction::<_, diesel::result::Error, _>(async |conn| {
                // Only the tenant's alert gets a verdict: another tenant's is not found.
                diesel::sql_query(
                    "INSERT INTO prediction.alert_feedback \
                         (alert_id, verdict, event_id, given_by, given_at, note) \
                     SELECT a.id, $3, $4, $5, $6, $7 FROM prediction.alerts a \
                     JOIN prediction.machines m USING (machine_key) \
                     WHERE a.id = $1 AND m.tenant_id = $2 \
                     ON CONFLICT (alert_id) DO UPDATE SET verdict = EXCLUDED.verdict, \
                         event_id = EXCLUDED.event_id, given_by = EXCLUDED.given_by, \
                         given_at = EXCLUDED.given_at, note = EXCLUDED.note",
                )
                .bind::<BigInt, _>(id)
                .bind::<Text, _>(&tenant)
                .bind::<Text, _>(feedback.verdict.as_str())
                .bind::<Nullable<BigInt>, _>(feedback.event_id)
                .bind::<Text, _>(&feedback.by)
                .bind::<Timestamptz, _>(feedback.at)
                .bind::<Nullable<Text>, _>(feedback.note.as_deref())
                .execute(conn)
                .await?;
                diesel::sql_query(format!(
                    "SELECT {ALERT_COLUMNS} FROM {ALERT_FROM} WHERE a.id = $1 AND m.tenant_id = $2"
                ))
                .bind::<BigInt, _>(id)
                .bind::<Text, _>(&tenant)
                .load(conn)
                .await
            })
            .await
            .map_err(store_error)?;
        match rows.into_iter().next() {
            Some(row) => Ok(AlertTransition::Done(row.into_alert()?)),
            None => Ok(AlertTransition::NotFound),
        }
    }
}

/// A lifecycle step a person asks for.
#[derive(Debug, Clone, Copy)]
enum Step<'a> {
    Acknowledge,
    Resolve(Option<&'a str>),
}

impl Step<'_> {
    fn allowed(self, state: AlertState) -> bool {
        match self {
            Step::Acknowledge => state.acknowledge().is_ok(),
            Step::Resolve(_) => state.resolve().is_ok(),
        }
    }

    /// Parameters: $1 id, $2 time, $3 who, $4 the note (null when acknowledging).
    fn sql(self) -> &'static str {
        match self {
            Step::Acknowledge => {
                "UPDATE prediction.alerts SET state = 'acknowledged', acknowledged_at = $2, \
                 acknowledged_by = $3, updated_at = $2 WHERE id = $1 AND $4::text IS NULL"
            }
            Step::Resolve(_) => {
                "UPDATE prediction.alerts SET state = 'resolved', resolved_at = $2, \
                 resolved_by = $3, resolution_note = $4, updated_at = $2 WHERE id = $1"
            }
        }
    }

    fn note(self) -> Option<String> {
        match self {
            Step::Acknowledge => None,
            Step::Resolve(note) => note.map(str::to_owned),
        }
    }
}

impl PgAlertStore {
    /// Applies the changes one statement each, in order.
    async fn apply_in_order(&self, updates: &[AlertUpdate]) -> Result<(), StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let updates = updates.to_vec();
        conn.transaction::<_, diesel::result::Error, _>(async |conn| {
            for u in &updates {
                match &u.change {
                    // The partial unique index keeps one unresolved alert per machine and
                    // category even when two replicas raise at once: the second updates.
                    AlertChange::Raise { severity, score, message }
                    | AlertChange::Update { severity, score, message } => {
                        diesel::sql_query(
                            "INSERT INTO prediction.alerts (machine_key, category, severity, \
                                 state, score, peak_score, message, model_version, opened_at, \
                                 updated_at) \
                             VALUES ($1, $2, $3, 'open', $4, $4, $5, $6, $7, $7) \
                             ON CONFLICT (machine_key, category) WHERE state <> 'resolved' \
                             DO UPDATE SET severity = EXCLUDED.severity, score = EXCLUDED.score, \
                                 peak_score = greatest(prediction.alerts.peak_score, EXCLUDED.score), \
                                 message = EXCLUDED.message, \
                                 model_version = EXCLUDED.model_version, \
                                 updated_at = EXCLUDED.updated_at",
                        )
                        .bind::<BigInt, _>(u.machine.0)
                        .bind::<Text, _>(u.category.as_str())
                        .bind::<Text, _>(severity.as_str())
                        .bind::<Double, _>(score)
                        .bind::<Text, _>(message)
                        .bind::<Nullable<Text>, _>(u.model_version.as_deref())
                        .bind::<Timestamptz, _>(u.at)
                        .execute(conn)
                        .await?;
                    }
                    AlertChange::Clear { score } => {
                        diesel::sql_query(
                            "UPDATE prediction.alerts SET state = 'resolved', score = $3, \
                                 updated_at = $4, resolved_at = $4, resolved_by = $5, \
                                 resolution_note = 'condition cleared' \
                             WHERE machine_key = $1 AND category = $2 AND state <> 'resolved'",
                        )
                        .bind::<BigInt, _>(u.machine.0)
                        .bind::<Text, _>(u.category.as_str())
                        .bind::<Double, _>(score)
                        .bind::<Timestamptz, _>(u.at)
                        .bind::<Text, _>(SYSTEM)
                        .execute(conn)
                        .await?;
                    }
                }
            }
            Ok(())
        })
        .await
        .map_err(store_error)
    }

    /// Loads the tenant's alert under a row lock, checks the lifecycle allows the step, and
    /// applies it; another tenant's alert is not found.
    async fn transition(
        &self,
        tenant: &TenantId,
        id: i64,
        at: DateTime<Utc>,
        by: &str,
        step: Step<'_>,
    ) -> Result<AlertTransition, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let tenant = tenant.as_str().to_owned();
        let by = by.to_owned();
        let note = step.note();
        let select = format!(
            "SELECT {ALERT_COLUMNS} FROM {ALERT_FROM} WHERE a.id = $1 AND m.tenant_id = $2"
        );
        let result = conn
            .transaction::<_, diesel::result::Error, _>(async |conn| {
                let rows: Vec<AlertRow> = diesel::sql_query(format!("{select} FOR UPDATE OF a"))
                    .bind::<BigInt, _>(id)
                    .bind::<Text, _>(&tenant)
                    .load(conn)
                    .await?;
                let Some(row) = rows.into_iter().next() else {
                    return Ok(None);
                };
                let state = row.state.parse::<AlertState>().ok();
                if !state.is_some_and(|st| step.allowed(st)) {
                    return Ok(Some((row, false)));
                }
                diesel::sql_query(step.sql())
                    .bind::<BigInt, _>(id)
                    .bind::<Timestamptz, _>(at)
                    .bind::<Text, _>(&by)
                    .bind::<Nullable<Text>, _>(note.as_deref())
                    .execute(conn)
                    .await?;
                let rows: Vec<AlertRow> = diesel::sql_query(select.clone())
                    .bind::<BigInt, _>(id)
                    .bind::<Text, _>(&tenant)
                    .load(conn)
                    .await?;
                Ok(rows.into_iter().next().map(|r| (r, true)))
            })
            .await
            .map_err(store_error)?;
        match result {
            None => Ok(AlertTransition::NotFound),
            Some((row, true)) => Ok(AlertTransition::Done(row.into_alert()?)),
            Some((row, false)) => Ok(AlertTransition::Refused(row.into_alert()?)),
        }
    }
}
