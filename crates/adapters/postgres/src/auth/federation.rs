//! Federation in the `auth` schema: links from upstream identities to platform users
//! (`auth.federated_identities`) and pending upstream sign-ins (`auth.federation_pending`).

use async_trait::async_trait;
use aurum_domain::TenantId;
use aurum_ports::auth::{FederationStore, PendingFederation};
use aurum_ports::StoreError;
use chrono::{DateTime, Utc};
use diesel::sql_types::{Text, Timestamptz};
use diesel::QueryableByName;
use diesel_async::RunQueryDsl;
use uuid::Uuid;

use crate::{pool_error, store_error, PgPool};

#[derive(Debug, Clone)]
pub struct PgFederationStore {
    pool: PgPool,
}

impl PgFederationStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

#[derive(QueryableByName)]
struct IdRow {
    #[diesel(sql_type = Text)]
    id: String,
}

#[derive(QueryableByName)]
struct PendingRow {
    #[diesel(sql_type = Text)]
    state_hash: String,
    #[diesel(sql_type = Text)]
    provider: String,
    #[diesel(sql_type = Text)]
    browser_hash: String,
    #[diesel(sql_type = Text)]
    nonce: String,
    #[diesel(sql_type = Text)]
    pkce_verifier: String,
    #[diesel(sql_type = Text)]
    login_request: String,
    #[diesel(sql_type = Timestamptz)]
    expires_at: DateTime<Utc>,
}

fn parse_id(rows: Vec<IdRow>) -> Result<Option<Uuid>, StoreError> {
    rows.into_iter()
        .next()
        .map(|r| {
            Uuid::parse_str(&r.id).map_err(|e| StoreError::Refused(format!("bad user id: {e}")))
        })
        .transpose()
}

#[async_trait]
impl FederationStore for PgFederationStore {
    async fn linked_user(&self, provider: &str, subject: &str) -> Result<Option<Uuid>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let rows: Vec<IdRow> = diesel::sql_query(
            "UPDATE auth.federated_identities SET last_login_at = now() \
             WHERE provider = $1 AND subject = $2 RETURNING user_id::text AS id",
        )
        .bind::<Text, _>(provider)
        .bind::<Text, _>(subject)
        .load(&mut conn)
        .await
        .map_err(store_error)?;
        parse_id(rows)
    }

    async fn link(&self, provider: &str, subject: &str, user: Uuid) -> Result<bool, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let n = diesel::sql_query(
            "INSERT INTO auth.federated_identities (provider, subject, user_id, last_login_at) \
             VALUES ($1, $2, $3::uuid, now()) ON CONFLICT DO NOTHING",
        )
        .bind::<Text, _>(provider)
        .bind::<Text, _>(subject)
        .bind::<Text, _>(user.to_string())
        .execute(&mut conn)
        .await
        .map_err(store_error)?;
        Ok(n == 1)
    }

    async fn user_by_email(
        &self,
        tenant: &TenantId,
        email: &str,
    ) -> Result<Option<Uuid>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let rows: Vec<IdRow> = diesel::sql_query(
            "SELECT id::text AS id FROM auth.users WHERE tenant_id = $1 \
             AND lower(email) = lower($2) AND anonymised_at IS NULL LIMIT 2",
        )
        .bind::<Text, _>(tenant.as_str())
        .bind::<Text, _>(email)
        .load(&mut conn)
        .await
        .map_err(store_error)?;
        // Two users with the same address: which one is meant cannot be told, so neither.
        if rows.len() > 1 {
            return Ok(None);
        }
        parse_id(rows)
    }

    async fn put_pending(&self, p: &PendingFederation) -> Result<(), StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        diesel::sql_query(
            "INSERT INTO auth.federation_pending (state_hash, provider, browser_hash, nonce, \
             pkce_verifier, login_request, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind::<Text, _>(&p.state_hash)
        .bind::<Text, _>(&p.provider)
        .bind::<Text, _>(&p.browser_hash)
        .bind::<Text, _>(&p.nonce)
        .bind::<Text, _>(&p.pkce_verifier)
        .bind::<Text, _>(&p.login_request)
        .bind::<Timestamptz, _>(p.expires_at)
        .execute(&mut conn)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn take_pending(
        &self,
        state_hash: &str,
    ) -> Result<Option<PendingFederation>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let rows: Vec<PendingRow> = diesel::sql_query(
            "DELETE FROM auth.federation_pending WHERE state_hash = $1 \
             RETURNING state_hash, provider, browser_hash, nonce, pkce_verifier, \
             login_request, expires_at",
        )
        .bind::<Text, _>(state_hash)
        .load(&mut conn)
        .await
        .map_err(store_error)?;
        Ok(rows.into_iter().next().map(|r| PendingFederation {
            state_hash: r.state_hash,
            provider: r.provider,
            browser_hash: r.browser_hash,
            nonce: r.nonce,
            pkce_verifier: r.pkce_verifier,
            login_request: r.login_request,
            expires_at: r.expires_at,
        }))
    }

    async fn purge_pending(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let n = diesel::sql_query("DELETE FROM auth.federation_pending WHERE expires_at < $1")
            .bind::<Timestamptz, _>(now)
            .execute(&mut conn)
            .await
            .map_err(store_error)?;
        Ok(n as u64)
    }
}
