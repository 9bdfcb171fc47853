//! The model registry in `prediction.models`.

use async_trait::async_trait;
use aurum_ports::prediction::{ModelRecord, ModelRegistry, NewModel, RegisterModelOutcome};
use aurum_ports::StoreError;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Nullable, Timestamptz};
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::schema::prediction::models;
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

/// A registered model without its artifact (which only scoring loads).
#[derive(Queryable, Selectable)]
#[diesel(table_name = models)]
struct RecordRow {
    version: String,
    trained_at: DateTime<Utc>,
    registered_at: DateTime<Utc>,
    sha256: String,
    active: bool,
    activated_at: Option<DateTime<Utc>>,
    activated_by: Option<String>,
    evaluation: Option<serde_json::Value>,
}

#[async_trait]
impl ModelRegistry for PgModelRegistry {
    async fn register(&self, m: NewModel<'_>) -> Result<RegisterModelOutcome, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let inserted = diesel::insert_into(models::table)
            .values((
                models::version.eq(m.version),
                models::trained_at.eq(m.trained_at),
                models::sha256.eq(m.sha256),
                models::artifact.eq(m.artifact),
                models::evaluation.eq(&m.evaluation),
            ))
            .on_conflict(models::version)
            .do_nothing()
            .execute(&mut conn)
            .await
            .map_err(store_error)?;
        if inserted == 1 {
            return Ok(RegisterModelOutcome::Registered);
        }
        let existing: Option<String> = models::table
            .find(m.version)
            .select(models::sha256)
            .first(&mut conn)
            .await
            .optional()
            .map_err(store_error)?;
        Ok(match existing {
            Some(s) if s == m.sha256 => RegisterModelOutcome::AlreadyRegistered,
            _ => RegisterModelOutcome::VersionTaken,
        })
    }

    async fn list(&self) -> Result<Vec<ModelRecord>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let rows: Vec<RecordRow> = models::table
            .select(RecordRow::as_select())
            .order((models::registered_at.desc(), models::version))
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
                evaluation: r.evaluation,
            })
            .collect())
    }

    async fn artifact(&self, version: &str) -> Result<Option<Vec<u8>>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        models::table
            .find(version)
            .select(models::artifact)
            .first(&mut conn)
            .await
            .optional()
            .map_err(store_error)
    }

    async fn active_version(&self) -> Result<Option<String>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        models::table
            .filter(models::active)
            .select(models::version)
            .first(&mut conn)
            .await
            .optional()
            .map_err(store_error)
    }

    async fn activate(&self, version: &str, by: &str) -> Result<bool, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let version = version.to_owned();
        let by = by.to_owned();
        conn.transaction::<_, diesel::result::Error, _>(async |conn| {
            let exists: Option<String> = models::table
                .find(&version)
                .select(models::version)
                .for_update()
                .first(conn)
                .await
                .optional()?;
            if exists.is_none() {
                return Ok(false);
            }
            diesel::update(models::table.filter(models::active.and(models::version.ne(&version))))
                .set(models::active.eq(false))
                .execute(conn)
                .await?;
            diesel::update(models::table.find(&version))
                .set((
                    models::active.eq(true),
                    models::activated_at.eq(diesel::dsl::sql::<Nullable<Timestamptz>>("now()")),
                    models::activated_by.eq(&by),
                ))
                .execute(conn)
                .await?;
            Ok(true)
        })
        .await
        .map_err(store_error)
    }
}
