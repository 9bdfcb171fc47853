//! A tenant's machine profiles in `ingestion.profiles`, one row per version, and the change
//! log replicas poll (`ingestion.profile_changes`).

use async_trait::async_trait;
use aurum_domain::{Profile, ProfileDraft, ProfileHistory, ProfileId, ProfileSpec, TenantId};
use aurum_ports::ingestion::{ProfileChange, ProfileError, ProfileStore};
use aurum_ports::StoreError;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::schema::ingestion::{machines, profile_changes, profiles};
use crate::{pool_error, store_error, PgPool};

#[derive(Debug, Clone)]
pub struct PgProfileStore {
    pool: PgPool,
}

impl PgProfileStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = profiles)]
struct Row {
    tenant_id: String,
    profile_id: String,
    version: i32,
    name: String,
    description: String,
    metrics: serde_json::Value,
    feature_window_s: i32,
    valid_from: DateTime<Utc>,
}

impl Row {
    /// Rows are written from checked specs; one that no longer passes the same checks was
    /// edited by hand, and is reported rather than trusted.
    fn into_domain(self) -> Result<Profile, StoreError> {
        let bad = |e: String| {
            StoreError::Refused(format!(
                "profile row {}/{} v{} is invalid: {e}",
                self.tenant_id, self.profile_id, self.version
            ))
        };
        let id = ProfileId::parse(&self.profile_id).map_err(|e| bad(e.to_string()))?;
        let draft = ProfileDraft {
            name: Some(self.name.clone()),
            description: Some(self.description.clone()),
            metrics: Some(
                serde_json::from_value(self.metrics.clone()).map_err(|e| bad(e.to_string()))?,
            ),
            feature_window_s: u64::try_from(self.feature_window_s).ok(),
        };
        let spec = draft.parse().map_err(|errors| {
            bad(errors
                .iter()
                .map(|e| format!("{} {}", e.field, e.message))
                .collect::<Vec<_>>()
                .join("; "))
        })?;
        Ok(Profile {
            id,
            version: u32::try_from(self.version).map_err(|e| bad(e.to_string()))?,
            builtin: false,
            valid_from: self.valid_from,
            spec,
        })
    }
}

fn metrics_json(spec: &ProfileSpec) -> Result<serde_json::Value, StoreError> {
    serde_json::to_value(&spec.metrics)
        .map_err(|e| StoreError::Refused(format!("profile metrics as JSON: {e}")))
}

/// Writes version `version` and logs the change, in the caller's transaction.
async fn insert_version(
    conn: &mut diesel_async::AsyncPgConnection,
    tenant: &TenantId,
    id: &ProfileId,
    version: i32,
    spec: &ProfileSpec,
    actor: &str,
) -> Result<Option<Row>, diesel::result::Error> {
    let metrics = serde_json::to_value(&spec.metrics)
        .map_err(|e| diesel::result::Error::SerializationError(Box::new(e)))?;
    let row = diesel::insert_into(profiles::table)
        .values((
            profiles::tenant_id.eq(tenant.as_str()),
            profiles::profile_id.eq(id.as_str()),
            profiles::version.eq(version),
            profiles::name.eq(&spec.name),
            profiles::description.eq(&spec.description),
            profiles::metrics.eq(metrics),
            profiles::feature_window_s.eq(i32::try_from(spec.feature_window_s).unwrap_or(i32::MAX)),
            profiles::created_by.eq(actor),
        ))
        .on_conflict_do_nothing()
        .returning(Row::as_returning())
        .get_result(conn)
        .await
        .optional()?;
    if row.is_some() {
        log_change(conn, tenant, id).await?;
    }
    Ok(row)
}

async fn log_change(
    conn: &mut diesel_async::AsyncPgConnection,
    tenant: &TenantId,
    id: &ProfileId,
) -> Result<(), diesel::result::Error> {
    diesel::insert_into(profile_changes::table)
        .values((
            profile_changes::tenant_id.eq(tenant.as_str()),
            profile_changes::profile_id.eq(id.as_str()),
        ))
        .execute(conn)
        .await?;
    Ok(())
}

/// What a transaction found, carried out of it as a value (its errors roll it back).
enum Outcome {
    Written(Row),
    Missing,
    Exists,
    InUse(i64),
}

#[async_trait]
impl ProfileStore for PgProfileStore {
    async fn list(&self, tenant: &TenantId) -> Result<Vec<Profile>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let rows: Vec<Row> = profiles::table
            .filter(profiles::tenant_id.eq(tenant.as_str()))
            .distinct_on(profiles::profile_id)
            .order((profiles::profile_id.asc(), profiles::version.desc()))
            .select(Row::as_select())
            .load(&mut conn)
            .await
            .map_err(store_error)?;
        rows.into_iter().map(Row::into_domain).collect()
    }

    async fn history(
        &self,
        tenant: &TenantId,
        id: &ProfileId,
    ) -> Result<Option<ProfileHistory>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let rows: Vec<Row> = profiles::table
            .filter(profiles::tenant_id.eq(tenant.as_str()))
            .filter(profiles::profile_id.eq(id.as_str()))
            .order(profiles::version.asc())
            .select(Row::as_select())
            .load(&mut conn)
            .await
            .map_err(store_error)?;
        let versions = rows
            .into_iter()
            .map(Row::into_domain)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(ProfileHistory::new(versions))
    }

    async fn create(
        &self,
        tenant: &TenantId,
        id: &ProfileId,
        spec: &ProfileSpec,
        actor: &str,
    ) -> Result<Profile, ProfileError> {
        metrics_json(spec)?;
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let outcome = conn
            .transaction::<_, diesel::result::Error, _>(async |conn| {
                Ok(
                    match insert_version(conn, tenant, id, 1, spec, actor).await? {
                        Some(row) => Outcome::Written(row),
                        None => Outcome::Exists,
                    },
                )
            })
            .await
            .map_err(store_error)?;
        match outcome {
            Outcome::Written(row) => Ok(row.into_domain()?),
            _ => Err(ProfileError::AlreadyExists(id.clone())),
        }
    }

    async fn update(
        &self,
        tenant: &TenantId,
        id: &ProfileId,
        spec: &ProfileSpec,
        actor: &str,
    ) -> Result<Profile, ProfileError> {
        metrics_json(spec)?;
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let outcome = conn
            .transaction::<_, diesel::result::Error, _>(async |conn| {
                // Two concurrent edits both read the same latest version; the second
                // insert then conflicts on the key and is reported, not lost silently.
                let latest: Option<i32> = profiles::table
                    .filter(profiles::tenant_id.eq(tenant.as_str()))
                    .filter(profiles::profile_id.eq(id.as_str()))
                    .select(diesel::dsl::max(profiles::version))
                    .first(conn)
                    .await?;
                let Some(latest) = latest else {
                    return Ok(Outcome::Missing);
                };
                Ok(
                    match insert_version(conn, tenant, id, latest + 1, spec, actor).await? {
                        Some(row) => Outcome::Written(row),
                        None => Outcome::Exists,
                    },
                )
            })
            .await
            .map_err(store_error)?;
        match outcome {
            Outcome::Written(row) => Ok(row.into_domain()?),
            Outcome::Missing => Err(ProfileError::NotFound(id.clone())),
            _ => Err(ProfileError::Store(StoreError::Refused(format!(
                "profile {id} was changed concurrently; try again"
            )))),
        }
    }

    async fn delete(&self, tenant: &TenantId, id: &ProfileId) -> Result<(), ProfileError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let outcome = conn
            .transaction::<_, diesel::result::Error, _>(async |conn| {
                let used: i64 = machines::table
                    .filter(machines::tenant_id.eq(tenant.as_str()))
                    .filter(machines::profile_id.eq(id.as_str()))
                    .count()
                    .get_result(conn)
                    .await?;
                if used > 0 {
                    return Ok(Outcome::InUse(used));
                }
                let deleted = diesel::delete(
                    profiles::table
                        .filter(profiles::tenant_id.eq(tenant.as_str()))
                        .filter(profiles::profile_id.eq(id.as_str())),
                )
                .execute(conn)
                .await?;
                if deleted == 0 {
                    return Ok(Outcome::Missing);
                }
                log_change(conn, tenant, id).await?;
                Ok(Outcome::Exists)
            })
            .await
            .map_err(store_error)?;
        match outcome {
            Outcome::InUse(machines) => Err(ProfileError::InUse {
                id: id.clone(),
                machines,
            }),
            Outcome::Missing => Err(ProfileError::NotFound(id.clone())),
            _ => Ok(()),
        }
    }

    async fn changed_since(&self, since: DateTime<Utc>) -> Result<Vec<ProfileChange>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let rows: Vec<(String, String, DateTime<Utc>)> = profile_changes::table
            .filter(profile_changes::changed_at.ge(since))
            .order(profile_changes::change_id.asc())
            .select((
                profile_changes::tenant_id,
                profile_changes::profile_id,
                profile_changes::changed_at,
            ))
            .load(&mut conn)
            .await
            .map_err(store_error)?;
        rows.into_iter()
            .map(|(tenant, id, at)| {
                let bad = |e: String| StoreError::Refused(format!("profile change row: {e}"));
                Ok(ProfileChange {
                    tenant: TenantId::parse(&tenant).map_err(|e| bad(e.to_string()))?,
                    id: ProfileId::parse(&id).map_err(|e| bad(e.to_string()))?,
                    at,
                })
            })
            .collect()
    }
}
