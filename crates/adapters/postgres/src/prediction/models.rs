//! The model registry in `prediction.models`.

use async_trait::async_trait;
use aurum_ports::prediction::{ModelRecord, ModelRegistry, NewModel, RegisterModelOutcome};
use aurum_ports::StoreError;
use chrono::{DateTime, Utc};
use diesel::sql_types::{Binary, Bool, Nullable, Text, Timestamptz};
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, RunQueryDsl};

use crate::{pool_error, store_error, PgPool};

#[derive(Debug, Clone)]
pub struct PgModelRegistry {
    pool: PgPool,
}

impl PgModelRegistry {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[derive(QueryableByName)]
struct RecordRow {
    #[diesel(sql_type = Text)]
    version: String,
    #[diesel(sql_type = Timestamptz)]
    trained_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    registered_at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    sha256: String,
    #[diesel(sql_type = Bool)]
    active: bool,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    activated_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Text>)]
    activated_by: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    evaluation: Option<String>,
}

#[derive(QueryableByName)]
struct Sha {
    #[diesel(sql_type = Text)]
    sha256: String,
}

#[derive(QueryableByName)]
struct Version {
    #[diesel(sql_type = Text)]
    version: String,
}

#[derive(QueryableByName)]
struct Artifact {
    #[diesel(sql_type = Binary)]
    artifact: Vec<u8>,
}

#[async_trait]
impl ModelRegistry for PgModelRegistry {
    async fn register(&self, m: NewModel<'_>) -> Result<RegisterModelOutcome, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let inserted = diesel::sql_query(
            "INSERT INTO prediction.models (version, trained_at, sha256, artifact, evaluation) \
             VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT (version) DO NOTHING",
        )
        .bind::<Text, _>(m.version)
        .bind::<Timestamptz, _>(m.trained_at)
        .bind::<Text, _>(m.sha256)
        .bind::<Binary, _>(m.artifact)
        .bind::<Nullable<Text>, _>(m.evaluation.as_ref().map(ToString::to_string))
        .execute(&mut conn)
        .await
        .map_err(store_error)?;
        if inserted == 1 {
            return Ok(RegisterModelOutcome::Registered);
        }
        let existing: Vec<Sha> =
            diesel::sql_query("SELECT sha256 FROM prediction.models WHERE version = $1")
                .bind::<Text, _>(m.version)
                .load(&mut conn)
                .await
                .map_err(store_error)?;
        Ok(match existing.into_iter().next() {
            Some(s) if s.sha256 == m.sha256 => RegisterModelOutcome::AlreadyRegistered,
            _ => RegisterModelOutcome::VersionTaken,
        })
    }

    async fn list(&self) -> Result<Vec<ModelRecord>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let rows: Vec<RecordRow> = diesel::sql_query(
            "SELECT version, trained_at, registered_at, sha256, active, activated_at, \
                    activated_by, evaluation::text AS evaluation \
             FROM prediction.models ORDER BY registered_at DESC, version",
        )
        .load(&mut conn)
        .await
        .map_err(store_error)?;
        Ok(rows
            .into_iter()
            .map(|r| ModelRecord {
                version: r.version,
                trained_at: r.trained_at,
                registered_at: r.registered_at,
                sha256: r.sha256,
                active: r.active,
                activated_at: r.activated_at,
                activated_by: r.activated_by,
                // Written from a serde value; unreadable JSON is shown as absent.
                evaluation: r.evaluation.and_then(|e| serde_json::from_str(&e).ok()),
            })
            .collect())
    }

    async fn artifact(&self, version: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let rows: Vec<Artifact> =
            diesel::sql_query("SELECT artifact FROM prediction.models WHERE version = $1")
                .bind::<Text, _>(version)
                .load(&mut conn)
                .await
                .map_err(store_error)?;
        Ok(rows.into_iter().next().map(|r| r.artifact))
    }

    async fn active_version(&self) -> Result<Option<String>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let rows: Vec<Version> =
            diesel::sql_query("SELECT version FROM prediction.models WHERE active")
                .load(&mut conn)
                .await
                .map_err(store_error)?;
        Ok(rows.into_iter().next().map(|r| r.version))
    }

    async fn activate(&self, version: &str, by: &str) -> Result<bool, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let version = version.to_owned();
        let by = by.to_owned();
        conn.transaction::<_, diesel::result::Error, _>(async |conn| {
            let exists: Vec<Version> = diesel::sql_query(
                "SELECT version FROM prediction.models WHERE version = $1 FOR UPDATE",
            )
            .bind::<Text, _>(&version)
            .load(conn)
            .await?;
            if exists.is_empty() {
                return Ok(false);
            }
            diesel::sql_query(
                "UPDATE prediction.models SET active = false WHERE active AND version <> $1",
            )
            .bind::<Text, _>(&version)
            .execute(conn)
            .await?;
            diesel::sql_query(
                "UPDATE prediction.models SET active = true, activated_at = now(), \
                 activated_by = $2 WHERE version = $1",
            )
            .bind::<Text, _>(&version)
            .bind::<Text, _>(&by)
            .execute(conn)
            .await?;
            Ok(true)
        })
        .await
        .map_err(store_error)
    }
}
