//! Authorization codes, refresh tokens and revoked access tokens.

use async_trait::async_trait;
use aurum_ports::auth::{
    AuthorizationCode, CodeRedemption, GrantStore, RefreshRotation, RefreshTokenRecord,
    RevocationEntry, RevocationKind,
};
use aurum_ports::StoreError;
use chrono::{DateTime, Utc};
use diesel::sql_types::{Nullable, Text, Timestamptz};
use diesel::QueryableByName;
use diesel_async::{AsyncConnection, AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

use super::rows::{CodeRow, RefreshRow, CODE_COLUMNS, REFRESH_COLUMNS};
use super::PgAuthStore;
use crate::{pool_error, store_error};

async fn insert_refresh(
    conn: &mut AsyncPgConnection,
    t: &RefreshTokenRecord,
) -> Result<usize, diesel::result::Error> {
    diesel::sql_query(
        "INSERT INTO auth.refresh_tokens (token_hash, family_id, client_id, user_id, \
         session_id, scope, auth_time, created_at, expires_at) \
         VALUES ($1, $2::uuid, $3, $4::uuid, $5::uuid, $6, $7, $8, $9)",
    )
    .bind::<Text, _>(&t.token_hash)
    .bind::<Text, _>(t.family_id.to_string())
    .bind::<Text, _>(&t.client_id)
    .bind::<Text, _>(t.user_id.to_string())
    .bind::<Text, _>(t.session_id.to_string())
    .bind::<Text, _>(&t.scope)
    .bind::<Timestamptz, _>(t.auth_time)
    .bind::<Timestamptz, _>(t.created_at)
    .bind::<Timestamptz, _>(t.expires_at)
    .execute(conn)
    .await
}

/// Serialises, per family, a rotation (which reads a token and inserts its successor) with
/// every revocation that reaches the family: without it a revocation whose snapshot predates
/// the successor's insert would leave the successor live. Held until the transaction ends.
async fn lock_family(
    conn: &mut AsyncPgConnection,
    family_id: &str,
) -> Result<usize, diesel::result::Error> {
    diesel::sql_query(
        "SELECT pg_advisory_xact_lock(hashtextextended('aurum.auth.refresh-family:' || $1, 0))",
    )
    .bind::<Text, _>(family_id)
    .execute(conn)
    .await
}

/// Revokes every live token whose `column` is `id`, after locking each family it touches (in
/// one order, so two revocations cannot deadlock), so no rotation in flight keeps a successor.
/// Runs inside the caller's transaction.
pub(super) async fn revoke_where(
    conn: &mut AsyncPgConnection,
    column: &str,
    id: Uuid,
) -> Result<usize, diesel::result::Error> {
    #[derive(QueryableByName)]
    struct Family {
        #[diesel(sql_type = Text)]
        family_id: String,
    }
    let families: Vec<Family> = diesel::sql_query(format!(
        "SELECT DISTINCT family_id::text AS family_id FROM auth.refresh_tokens \
         WHERE {column} = $1::uuid AND revoked_at IS NULL ORDER BY 1"
    ))
    .bind::<Text, _>(id.to_string())
    .load(conn)
    .await?;
    for f in &families {
        lock_family(conn, &f.family_id).await?;
    }
    // A statement of its own, after the locks: it sees every successor committed meanwhile.
    diesel::sql_query(format!(
        "UPDATE auth.refresh_tokens SET revoked_at = now() \
         WHERE {column} = $1::uuid AND revoked_at IS NULL"
    ))
    .bind::<Text, _>(id.to_string())
    .execute(conn)
    .await
}

impl PgAuthStore {
    async fn revoke_by(&self, column: &str, id: Uuid) -> Result<u64, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let n = conn
            .transaction::<_, diesel::result::Error, _>(async |conn| {
                revoke_where(conn, column, id).await
            })
            .await
            .map_err(store_error)?;
        Ok(n as u64)
    }
}

/// What one rotation transaction decided.
enum Rotation {
    Rotated(RefreshRow),
    Reused(RefreshRow),
    Invalid,
}

#[async_trait]
impl GrantStore for PgAuthStore {
    async fn put_code(&self, c: &AuthorizationCode) -> Result<(), StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        diesel::sql_query(
            "INSERT INTO auth.authorization_codes (code_hash, client_id, user_id, redirect_uri, \
             scope, nonce, code_challenge, session_id, auth_time, family_id, expires_at) \
             VALUES ($1, $2, $3::uuid, $4, $5, $6, $7, $8::uuid, $9, $10::uuid, $11)",
        )
        .bind::<Text, _>(&c.code_hash)
        .bind::<Text, _>(&c.client_id)
        .bind::<Text, _>(c.user_id.to_string())
        .bind::<Text, _>(&c.redirect_uri)
        .bind::<Text, _>(&c.scope)
        .bind::<Nullable<Text>, _>(c.nonce.as_deref())
        .bind::<Text, _>(&c.code_challenge)
        .bind::<Text, _>(c.session_id.to_string())
        .bind::<Timestamptz, _>(c.auth_time)
        .bind::<Text, _>(c.family_id.to_string())
        .bind::<Timestamptz, _>(c.expires_at)
        .execute(&mut conn)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn redeem_code(
        &self,
        code_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<CodeRedemption, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        // One statement: the row lock makes exactly one redemption see used_at NULL.
        let rows: Vec<CodeRow> = diesel::sql_query(format!(
            "WITH old AS (SELECT code_hash AS old_hash, used_at AS old_used \
                          FROM auth.authorization_codes WHERE code_hash = $1 FOR UPDATE) \
             UPDATE auth.authorization_codes c SET used_at = COALESCE(c.used_at, $2) \
             FROM old WHERE c.code_hash = old.old_hash \
             RETURNING {CODE_COLUMNS}, old.old_used IS NOT NULL AS was_used"
        ))
        .bind::<Text, _>(code_hash)
        .bind::<Timestamptz, _>(now)
        .load(&mut conn)
        .await
        .map_err(store_error)?;
        let Some(row) = rows.into_iter().next() else {
            return Ok(CodeRedemption::Unknown);
        };
        let used = row.was_used;
        let code = row.into_record()?;
        Ok(if used {
            CodeRedemption::Replayed(code)
        } else {
            CodeRedemption::Redeemed(code)
        })
    }

    async fn put_refresh(&self, t: &RefreshTokenRecord) -> Result<(), StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        insert_refresh(&mut conn, t).await.map_err(store_error)?;
        Ok(())
    }

    async fn refresh(&self, token_hash: &str) -> Result<Option<RefreshTokenRecord>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let rows: Vec<RefreshRow> = diesel::sql_query(format!(
            "SELECT {REFRESH_COLUMNS} FROM auth.refresh_tokens WHERE token_hash = $1"
        ))
        .bind::<Text, _>(token_hash)
        .load(&mut conn)
        .await
        .map_err(store_error)?;
        rows.into_iter()
            .next()
            .map(RefreshRow::into_record)
            .transpose()
    }

    async fn rotate_refresh(
        &self,
        token_hash: &str,
        successor: &RefreshTokenRecord,
        now: DateTime<Utc>,
    ) -> Result<RefreshRotation, StoreError> {
        #[derive(QueryableByName)]
        struct Family {
            #[diesel(sql_type = Text)]
            family_id: String,
        }
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let token_hash = token_hash.to_owned();
        let mut successor = successor.clone();
        // One transaction under the family's lock: a revocation of the family either ran
        // before (the token reads as revoked) or waits for the successor and revokes it too.
        let rotation = conn
            .transaction::<_, diesel::result::Error, _>(async |conn| {
                let family: Vec<Family> = diesel::sql_query(
                    "SELECT family_id::text AS family_id FROM auth.refresh_tokens \
                     WHERE token_hash = $1",
                )
                .bind::<Text, _>(&token_hash)
                .load(conn)
                .await?;
                let Some(family) = family.into_iter().next() else {
                    return Ok(Rotation::Invalid);
                };
                lock_family(conn, &family.family_id).await?;
                let rows: Vec<RefreshRow> = diesel::sql_query(format!(
                    "SELECT {REFRESH_COLUMNS} FROM auth.refresh_tokens \
                     WHERE token_hash = $1 FOR UPDATE"
                ))
                .bind::<Text, _>(&token_hash)
                .load(conn)
                .await?;
                let Some(row) = rows.into_iter().next() else {
                    return Ok(Rotation::Invalid);
                };
                if row.rotated_at().is_some() {
                    // A spent token again: whoever holds the family may be an attacker.
                    revoke_where(conn, "family_id", row.family()).await?;
                    return Ok(Rotation::Reused(row));
                }
                if row.revoked_at().is_some() || row.expires_at() <= now {
                    return Ok(Rotation::Invalid);
                }
                diesel::sql_query(
                    "UPDATE auth.refresh_tokens SET rotated_at = $2 WHERE token_hash = $1",
                )
                .bind::<Text, _>(&token_hash)
                .bind::<Timestamptz, _>(now)
                .execute(conn)
                .await?;
                successor.family_id = row.family();
                insert_refresh(conn, &successor).await?;
                Ok(Rotation::Rotated(row))
            })
            .await
            .map_err(store_error)?;
        match rotation {
            Rotation::Rotated(row) => Ok(RefreshRotation::Rotated(row.into_record()?)),
            Rotation::Reused(row) => Ok(RefreshRotation::Reused(row.into_record()?)),
            Rotation::Invalid => Ok(RefreshRotation::Invalid),
        }
    }

    async fn revoke_family(&self, family_id: Uuid) -> Result<u64, StoreError> {
        self.revoke_by("family_id", family_id).await
    }

    async fn revoke_session(&self, session_id: Uuid) -> Result<u64, StoreError> {
        self.revoke_by("session_id", session_id).await
    }

    async fn revoke_user_tokens(&self, user_id: Uuid) -> Result<u64, StoreError> {
        self.revoke_by("user_id", user_id).await
    }

    async fn refresh_tokens_of(
        &self,
        user_id: Uuid,
    ) -> Result<Vec<RefreshTokenRecord>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let rows: Vec<RefreshRow> = diesel::sql_query(format!(
            "SELECT {REFRESH_COLUMNS} FROM auth.refresh_tokens WHERE user_id = $1::uuid \
             ORDER BY created_at DESC"
        ))
        .bind::<Text, _>(user_id.to_string())
        .load(&mut conn)
        .await
        .map_err(store_error)?;
        rows.into_iter().map(RefreshRow::into_record).collect()
    }

    async fn revoke_access_token(
        &self,
        jti: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        // The token's row and its feed entry in one statement.
        diesel::sql_query(
            "WITH revoked AS (INSERT INTO auth.revoked_access_tokens (jti, expires_at) \
               VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING RETURNING jti, expires_at) \
             INSERT INTO auth.revocations (kind, value, expires_at) \
               SELECT 'token', jti, expires_at FROM revoked",
        )
        .bind::<Text, _>(jti)
        .bind::<Timestamptz, _>(expires_at)
        .execute(&mut conn)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn access_token_revoked(&self, jti: &str) -> Result<bool, StoreError> {
        #[derive(QueryableByName)]
        struct Found {
            #[diesel(sql_type = diesel::sql_types::Bool)]
            found: bool,
        }
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let f: Found = diesel::sql_query(
            "SELECT EXISTS (SELECT 1 FROM auth.revoked_access_tokens WHERE jti = $1) AS found",
        )
        .bind::<Text, _>(jti)
        .get_result(&mut conn)
        .await
        .map_err(store_error)?;
        Ok(f.found)
    }

    async fn record_revocation(
        &self,
        kind: RevocationKind,
        value: &str,
        issued_before: Option<DateTime<Utc>>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        diesel::sql_query(
            "INSERT INTO auth.revocations (kind, value, issued_before, expires_at) \
             VALUES ($1, $2, $3, $4)",
        )
        .bind::<Text, _>(kind.as_str())
        .bind::<Text, _>(value)
        .bind::<Nullable<Timestamptz>, _>(issued_before)
        .bind::<Timestamptz, _>(expires_at)
        .execute(&mut conn)
        .await
        .map_err(store_error)?;
        Ok(())
    }

    async fn revocations_after(
        &self,
        after: i64,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<RevocationEntry>, StoreError> {
        #[derive(QueryableByName)]
        struct Row {
            #[diesel(sql_type = diesel::sql_types::BigInt)]
            seq: i64,
            #[diesel(sql_type = Text)]
            kind: String,
            #[diesel(sql_type = Text)]
            value: String,
            #[diesel(sql_type = Nullable<Timestamptz>)]
            issued_before: Option<DateTime<Utc>>,
            #[diesel(sql_type = Timestamptz)]
            expires_at: DateTime<Utc>,
        }
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let rows: Vec<Row> = diesel::sql_query(
            "SELECT seq, kind, value, issued_before, expires_at FROM auth.revocations \
             WHERE seq > $1 AND expires_at > $2 ORDER BY seq LIMIT $3",
        )
        .bind::<diesel::sql_types::BigInt, _>(after)
        .bind::<Timestamptz, _>(now)
        .bind::<diesel::sql_types::BigInt, _>(limit)
        .load(&mut conn)
        .await
        .map_err(store_error)?;
        rows.into_iter()
            .map(|r| {
                let kind = match r.kind.as_str() {
                    "token" => RevocationKind::Token,
                    "subject" => RevocationKind::Subject,
                    "session" => RevocationKind::Session,
                    other => {
                        return Err(StoreError::Refused(format!(
                            "unknown revocation kind {other}"
                        )))
                    }
                };
                Ok(RevocationEntry {
                    seq: r.seq,
                    kind,
                    value: r.value,
                    issued_before: r.issued_before,
                    expires_at: r.expires_at,
                })
            })
            .collect()
    }

    async fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let mut total = 0u64;
        // Spent codes are kept a while after expiry so a late replay is still recognised.
        for sql in [
            "DELETE FROM auth.authorization_codes WHERE expires_at < $1 - interval '1 hour'",
            "DELETE FROM auth.refresh_tokens WHERE expires_at < $1",
            "DELETE FROM auth.revoked_access_tokens WHERE expires_at < $1",
            "DELETE FROM auth.revocations WHERE expires_at < $1",
            "DELETE FROM auth.login_attempts WHERE last_failure_at < $1 - interval '1 day' \
             AND (locked_until IS NULL OR locked_until < $1)",
        ] {
            total += diesel::sql_query(sql)
                .bind::<Timestamptz, _>(now)
                .execute(&mut conn)
                .await
                .map_err(store_error)? as u64;
        }
        Ok(total)
    }
}
