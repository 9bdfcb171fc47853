//! The auth service's storage in the `auth` schema: users, OAuth clients, signing keys,
//! authorization codes, refresh tokens, revoked access tokens, brute-force state and security
//! events. One store implements every auth port; the service holds it behind each trait.

mod grants;
mod keys;
mod rows;

use async_trait::async_trait;
use aurum_domain::TenantId;
use aurum_ports::auth::{
    ClientRecord, ClientStore, CreateOutcome, LoginAttemptState, LoginAttemptStore, NewUser,
    SecurityEventRecord, SecurityEventStore, UserPatch, UserRecord, UserStore,
};
use aurum_ports::StoreError;
use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, Bool, Integer, Nullable, Text, Timestamptz};
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, RunQueryDsl};
use uuid::Uuid;

use crate::{pool_error, store_error, PgPool};
use rows::{role_names, ClientRow, EventRow, UserRow};

/// Every auth port over one pool.
#[derive(Debug, Clone)]
pub struct PgAuthStore {
    pool: PgPool,
}

impl PgAuthStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

/// A unique-constraint violation: the name is taken.
fn is_unique_violation(e: &diesel::result::Error) -> bool {
    matches!(
        e,
        diesel::result::Error::DatabaseError(diesel::result::DatabaseErrorKind::UniqueViolation, _)
    )
}

const USER_COLUMNS: &str = "id::text AS id, tenant_id, username, display_name, email, \
    password_hash, roles, disabled, created_at, updated_at, anonymised_at";

const CLIENT_COLUMNS: &str = "client_id, secret_hash, tenant_id, owner_user_id::text AS owner, \
    name, redirect_uris, post_logout_redirect_uris, grant_types, audiences, roles, seeded, \
    created_at";

#[async_trait]
impl UserStore for PgAuthStore {
    async fn create_user(&self, u: &NewUser) -> Result<CreateOutcome, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let r = diesel::sql_query(
            "INSERT INTO auth.users (id, tenant_id, username, display_name, email, \
             password_hash, roles) VALUES ($1::uuid, $2, $3, $4, $5, $6, $7)",
        )
        .bind::<Text, _>(u.id.to_string())
        .bind::<Text, _>(u.tenant.as_str())
        .bind::<Text, _>(&u.username)
        .bind::<Nullable<Text>, _>(u.display_name.as_deref())
        .bind::<Nullable<Text>, _>(u.email.as_deref())
        .bind::<Text, _>(&u.password_hash)
        .bind::<Array<Text>, _>(role_names(&u.roles))
        .execute(&mut conn)
        .await;
        match r {
            Ok(_) => Ok(CreateOutcome::Created),
            Err(e) if is_unique_violation(&e) => Ok(CreateOutcome::Taken),
            Err(e) => Err(store_error(e)),
        }
    }

    async fn user(&self, id: Uuid) -> Result<Option<UserRecord>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let rows: Vec<UserRow> = diesel::sql_query(format!(
            "SELECT {USER_COLUMNS} FROM auth.users WHERE id = $1::uuid"
        ))
        .bind::<Text, _>(id.to_string())
        .load(&mut conn)
        .await
        .map_err(store_error)?;
        rows.into_iter()
            .next()
            .map(UserRow::into_record)
            .transpose()
    }

    async fn user_by_username(&self, username: &str) -> Result<Option<UserRecord>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let rows: Vec<UserRow> = diesel::sql_query(format!(
            "SELECT {USER_COLUMNS} FROM auth.users WHERE lower(username) = lower($1)"
        ))
        .bind::<Text, _>(username)
        .load(&mut conn)
        .await
        .map_err(store_error)?;
        rows.into_iter()
            .next()
            .map(UserRow::into_record)
            .transpose()
    }

    async fn users_of(&self, tenant: &TenantId) -> Result<Vec<UserRecord>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let rows: Vec<UserRow> = diesel::sql_query(format!(
            "SELECT {USER_COLUMNS} FROM auth.users \
             WHERE tenant_id = $1 AND anonymised_at IS NULL ORDER BY lower(username)"
        ))
        .bind::<Text, _>(tenant.as_str())
        .load(&mut conn)
        .await
        .map_err(store_error)?;
        rows.into_iter().map(UserRow::into_record).collect()
    }

    async fn count_users_of(&self, tenant: &TenantId) -> Result<i64, StoreError> {
        #[derive(QueryableByName)]
        struct N {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            n: i64,
        }
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let n: N = diesel::sql_query("SELECT count(*) AS n FROM auth.users WHERE tenant_id = $1")
            .bind::<Text, _>(tenant.as_str())
            .get_result(&mut conn)
            .await
            .map_err(store_error)?;
        Ok(n.n)
    }

    async fn update_user(&self, id: Uuid, p: &UserPatch) -> Result<Option<UserRecord>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let rows: Vec<UserRow> = diesel::sql_query(format!(
            "UPDATE auth.users SET \
               display_name = CASE WHEN $2 THEN $3 ELSE display_name END, \
               email = CASE WHEN $4 THEN $5 ELSE email END, \
               roles = COALESCE($6, roles), \
               disabled = COALESCE($7, disabled), \
               password_hash = COALESCE($8, password_hash), \
               updated_at = now() \
             WHERE id = $1::uuid AND anonymised_at IS NULL RETURNING {USER_COLUMNS}"
        ))
        .bind::<Text, _>(id.to_string())
        .bind::<Bool, _>(p.display_name.is_some())
        .bind::<Nullable<Text>, _>(p.display_name.clone().flatten())
        .bind::<Bool, _>(p.email.is_some())
        .bind::<Nullable<Text>, _>(p.email.clone().flatten())
        .bind::<Nullable<Array<Text>>, _>(p.roles.as_deref().map(role_names))
        .bind::<Nullable<Bool>, _>(p.disabled)
        .bind::<Nullable<Text>, _>(p.password_hash.as_deref())
        .load(&mut conn)
        .await
        .map_err(store_error)?;
        rows.into_iter()
            .next()
            .map(UserRow::into_record)
            .transpose()
    }

    async fn anonymise_user(&self, id: Uuid, replacement: &str) -> Result<bool, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let user_id = id;
        let id = id.to_string();
        let replacement = replacement.to_owned();
        conn.transaction::<_, diesel::result::Error, _>(async |conn| {
            #[derive(QueryableByName)]
            struct Old {
                #[diesel(sql_type = Text)]
                username: String,
            }
            let old: Vec<Old> =
                diesel::sql_query("SELECT username FROM auth.users WHERE id = $1::uuid FOR UPDATE")
                    .bind::<Text, _>(&id)
                    .load(conn)
                    .await?;
            let Some(old) = old.into_iter().next() else {
                return Ok(false);
            };
            diesel::sql_query(
                "UPDATE auth.users SET username = $2, display_name = NULL, email = NULL, \
                 password_hash = NULL, disabled = true, \
                 anonymised_at = COALESCE(anonymised_at, now()), updated_at = now() \
                 WHERE id = $1::uuid",
            )
            .bind::<Text, _>(&id)
            .bind::<Text, _>(&replacement)
            .execute(conn)
            .await?;
            grants::revoke_where(conn, "user_id", user_id).await?;
            diesel::sql_query(
                "UPDATE auth.security_events SET username = NULL, ip = NULL, user_agent = NULL \
                 WHERE user_id = $1::uuid",
            )
            .bind::<Text, _>(&id)
            .execute(conn)
            .await?;
            diesel::sql_query("DELETE FROM auth.login_attempts WHERE key = $1")
                .bind::<Text, _>(format!("user:{}", old.username.to_lowercase()))
                .execute(conn)
                .await?;
            Ok(true)
        })
        .await
        .map_err(store_error)
    }
}

#[async_trait]
impl ClientStore for PgAuthStore {
    async fn create_client(&self, c: &ClientRecord) -> Result<CreateOutcome, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        match insert_client(c, false).execute(&mut conn).await {
            Ok(_) => Ok(CreateOutcome::Created),
            Err(e) if is_unique_violation(&e) => Ok(CreateOutcome::Taken),
            Err(e) => Err(store_error(e)),
        }
    }

    async fn upsert_client(&self, c: &ClientRecord) -> Result<(), StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        insert_client(c, true)
            .execute(&mut conn)
            .await
            .map_err(store_error)?;
        Ok(())
    }

    async fn client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let rows: Vec<ClientRow> = diesel::sql_query(format!(
            "SELECT {CLIENT_COLUMNS} FROM auth.clients WHERE client_id = $1"
        ))
        .bind::<Text, _>(client_id)
        .load(&mut conn)
        .await
        .map_err(store_error)?;
        rows.into_iter()
            .next()
            .map(ClientRow::into_record)
            .transpose()
    }

    async fn clients_of(&self, tenant: &TenantId) -> Result<Vec<ClientRecord>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let rows: Vec<ClientRow> = diesel::sql_query(format!(
            "SELECT {CLIENT_COLUMNS} FROM auth.clients WHERE tenant_id = $1 ORDER BY client_id"
        ))
        .bind::<Text, _>(tenant.as_str())
        .load(&mut conn)
        .await
        .map_err(store_error)?;
        rows.into_iter().map(ClientRow::into_record).collect()
    }

    async fn clients_owned_by(&self, user: Uuid) -> Result<Vec<ClientRecord>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let rows: Vec<ClientRow> = diesel::sql_query(format!(
            "SELECT {CLIENT_COLUMNS} FROM auth.clients WHERE owner_user_id = $1::uuid \
             ORDER BY client_id"
        ))
        .bind::<Text, _>(user.to_string())
        .load(&mut conn)
        .await
        .map_err(store_error)?;
        rows.into_iter().map(ClientRow::into_record).collect()
    }

    async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let n = diesel::sql_query("DELETE FROM auth.clients WHERE client_id = $1")
            .bind::<Text, _>(client_id)
            .execute(&mut conn)
            .await
            .map_err(store_error)?;
        Ok(n > 0)
    }
}

type InsertClient =
    diesel::query_builder::BoxedSqlQuery<'static, diesel::pg::Pg, diesel::query_builder::SqlQuery>;

fn insert_client(c: &ClientRecord, upsert: bool) -> InsertClient {
    let conflict = if upsert {
        " ON CONFLICT (client_id) DO UPDATE SET secret_hash = EXCLUDED.secret_hash, \
         tenant_id = EXCLUDED.tenant_id, name = EXCLUDED.name, \
         redirect_uris = EXCLUDED.redirect_uris, \
         post_logout_redirect_uris = EXCLUDED.post_logout_redirect_uris, \
         grant_types = EXCLUDED.grant_types, audiences = EXCLUDED.audiences, \
         roles = EXCLUDED.roles, seeded = EXCLUDED.seeded"
    } else {
        ""
    };
    diesel::sql_query(format!(
        "INSERT INTO auth.clients (client_id, secret_hash, tenant_id, owner_user_id, name, \
         redirect_uris, post_logout_redirect_uris, grant_types, audiences, roles, seeded) \
         VALUES ($1, $2, $3, $4::uuid, $5, $6, $7, $8, $9, $10, $11){conflict}"
    ))
    .into_boxed()
    .bind::<Text, _>(c.client_id.clone())
    .bind::<Nullable<Text>, _>(c.secret_hash.clone())
    .bind::<Nullable<Text>, _>(c.tenant.as_ref().map(|t| t.as_str().to_owned()))
    .bind::<Nullable<Text>, _>(c.owner.map(|u| u.to_string()))
    .bind::<Nullable<Text>, _>(c.name.clone())
    .bind::<Array<Text>, _>(c.redirect_uris.clone())
    .bind::<Array<Text>, _>(c.post_logout_redirect_uris.clone())
    .bind::<Array<Text>, _>(c.grant_types.clone())
    .bind::<Array<Text>, _>(c.audiences.clone())
    .bind::<Array<Text>, _>(role_names(&c.roles))
    .bind::<Bool, _>(c.seeded)
}

#[derive(QueryableByName)]
struct AttemptRow {
    #[diesel(sql_type = Integer)]
    failures: i32,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    locked_until: Option<DateTime<Utc>>,
}

#[async_trait]
impl LoginAttemptStore for PgAuthStore {
    async fn attempt_state(&self, key: &str) -> Result<Option<LoginAttemptState>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let rows: Vec<AttemptRow> = diesel::sql_query(
            "SELECT failures, locked_until FROM auth.login_attempts WHERE key = $1",
        )
        .bind::<Text, _>(key)
        .load(&mut conn)
        .await
        .map_err(store_error)?;
        Ok(rows.into_iter().next().map(|r| LoginAttemptState {
            failures: r.failures,
            locked_until: r.locked_until,
        }))
    }

    async fn record_failure(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window_start: DateTime<Utc>,
        lock: &(dyn Fn(i32) -> Option<DateTime<Utc>> + Sync),
    ) -> Result<LoginAttemptState, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        // Count first (atomically across replicas), then store the lock the count calls for.
        let counted: AttemptRow = diesel::sql_query(
            "INSERT INTO auth.login_attempts AS a (key, failures, last_failure_at) \
             VALUES ($1, 1, $2) \
             ON CONFLICT (key) DO UPDATE SET \
               failures = CASE WHEN a.last_failure_at < $3 THEN 1 ELSE a.failures + 1 END, \
               last_failure_at = $2 \
             RETURNING failures, locked_until",
        )
        .bind::<Text, _>(key)
        .bind::<Timestamptz, _>(now)
        .bind::<Timestamptz, _>(window_start)
        .get_result(&mut conn)
        .await
        .map_err(store_error)?;
        let Some(until) = lock(counted.failures) else {
            return Ok(LoginAttemptState {
                failures: counted.failures,
                locked_until: counted.locked_until,
            });
        };
        diesel::sql_query(
            "UPDATE auth.login_attempts SET locked_until = GREATEST(locked_until, $2) \
             WHERE key = $1",
        )
        .bind::<Text, _>(key)
        .bind::<Timestamptz, _>(until)
        .execute(&mut conn)
        .await
        .map_err(store_error)?;
        Ok(LoginAttemptState {
            failures: counted.failures,
            locked_until: Some(counted.locked_until.map_or(until, |l| l.max(until))),
        })
    }

    async fn clear_failures(&self, key: &str) -> Result<(), StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        diesel::sql_query("DELETE FROM auth.login_attempts WHERE key = $1")
            .bind::<Text, _>(key)
            .execute(&mut conn)
            .await
            .map_err(store_error)?;
        Ok(())
    }
}

#[async_trait]
impl SecurityEventStore for PgAuthStore {
    async fn record_event(&self, e: &SecurityEventRecord) -> Result<(), StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        diesel::sql_query(
            "INSERT INTO auth.security_events \
             (at, event, tenant_id, user_id, username, client_id, ip, user_agent) \
             VALUES ($1, $2, $3, $4::uuid, $5, $6, $7, $8)",
        )
        .bind::<Timestamptz, _>(e.at)
        .bind::<Text, _>(&e.event)
        .bind::<Nullable<Text>, _>(e.tenant.as_deref())
        .bind::<Nullable<Text>, _>(e.user_id.map(|u| u.to_string()))
        .bind::<Nullable<Text>, _>(e.username.as_deref())
        .bind::<Nullable<Text>, _>(e.client_id.as_deref())
        .bind::<Nullable<Text>, _>(e.ip.as_deref())
        .bind::<Nullable<Text>, _>(e.user_agent.as_deref())
        .execute(&mut conn)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn events_about(&self, user_id: Uuid) -> Result<Vec<SecurityEventRecord>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let rows: Vec<EventRow> = diesel::sql_query(
            "SELECT at, event, tenant_id, user_id::text AS user_id, username, client_id, ip, \
             user_agent FROM auth.security_events WHERE user_id = $1::uuid ORDER BY at DESC, id DESC",
        )
        .bind::<Text, _>(user_id.to_string())
        .load(&mut conn)
        .await
        .map_err(store_error)?;
        rows.into_iter().map(EventRow::into_record).collect()
    }
}
