//! Signing keys in `auth.signing_keys`.

use async_trait::async_trait;
use aurum_ports::auth::{SigningKeyRecord, SigningKeyStore};
use aurum_ports::StoreError;
use chrono::{DateTime, Utc};
use diesel::sql_types::{Nullable, Text, Timestamptz};
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, RunQueryDsl};

use super::PgAuthStore;
use crate::{pool_error, store_error};

#[derive(QueryableByName)]
struct KeyRow {
    #[diesel(sql_type = Text)]
    kid: String,
    #[diesel(sql_type = Text)]
    algorithm: String,
    #[diesel(sql_type = Text)]
    private_key: String,
    #[diesel(sql_type = Text)]
    public_jwk: String,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    retire_after: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    expires_at: Option<DateTime<Utc>>,
}

#[async_trait]
impl SigningKeyStore for PgAuthStore {
    async fn add_key(
        &self,
        key: &SigningKeyRecord,
        old_keys_expire_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let key = key.clone();
        conn.transaction::<_, diesel::result::Error, _>(async |conn| {
            // One rotation at a time across replicas.
            diesel::sql_query(
                "SELECT pg_advisory_xact_lock(hashtextextended('aurum.auth.keys', 0))",
            )
            .execute(conn)
            .await?;
            diesel::sql_query(
                "UPDATE auth.signing_keys SET \
                   retire_after = LEAST(COALESCE(retire_after, $1), $1), \
                   expires_at = GREATEST(COALESCE(expires_at, $2), $2) \
                 WHERE retire_after IS NULL OR retire_after > $1",
            )
            .bind::<Timestamptz, _>(key.created_at)
            .bind::<Timestamptz, _>(old_keys_expire_at)
            .execute(conn)
            .await?;
            diesel::sql_query(
                "INSERT INTO auth.signing_keys \
                 (kid, algorithm, private_key, public_jwk, created_at, retire_after, expires_at) \
                 VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7)",
            )
            .bind::<Text, _>(&key.kid)
            .bind::<Text, _>(&key.algorithm)
            .bind::<Text, _>(&key.private_key)
            .bind::<Text, _>(key.public_jwk.to_string())
            .bind::<Timestamptz, _>(key.created_at)
            .bind::<Nullable<Timestamptz>, _>(key.retire_after)
            .bind::<Nullable<Timestamptz>, _>(key.expires_at)
            .execute(conn)
            .await?;
            Ok(())
        })
        .await
        .map_err(store_error)
    }

    async fn published_keys(
        &self,
        now: DateTime<Utc>,
    ) -> Result<Vec<SigningKeyRecord>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let rows: Vec<KeyRow> = diesel::sql_query(
            "SELECT kid, algorithm, private_key, public_jwk::text AS public_jwk, created_at, \
             retire_after, expires_at FROM auth.signing_keys \
             WHERE expires_at IS NULL OR expires_at > $1 ORDER BY created_at DESC, kid",
        )
        .bind::<Timestamptz, _>(now)
        .load(&mut conn)
        .await
        .map_err(store_error)?;
        rows.into_iter()
            .map(|r| {
                Ok(SigningKeyRecord {
                    public_jwk: serde_json::from_str(&r.public_jwk).map_err(|e| {
                        StoreError::Refused(format!("unreadable JWK of key {}: {e}", r.kid))
                    })?,
                    kid: r.kid,
                    algorithm: r.algorithm,
                    private_key: r.private_key,
                    created_at: r.created_at,
                    retire_after: r.retire_after,
                    expires_at: r.expires_at,
                })
            })
            .collect()
    }
}
