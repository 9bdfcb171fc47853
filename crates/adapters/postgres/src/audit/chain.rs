//! The audit log: one hash chain per tenant in `audit.entries`, its head in `audit.chains`.
//!
//! Each entry stores `hash = sha256(prev_hash || canonical(entry))` where the canonical form
//! is every field (tenant, seq, actor, action, resource, outcome, request id, time in
//! microseconds) as a 4-byte big-endian length followed by its UTF-8 bytes. Writers of a
//! tenant take turns under an advisory lock; the head is the schema owner's, advanced by its
//! trigger only by an entry that links to it, so the gateway's role can append and nothing else.

use async_trait::async_trait;
use aurum_domain::TenantId;
use aurum_ports::audit::{AuditEntry, AuditQuery, AuditStore, ChainVerification, NewAuditEntry};
use aurum_ports::StoreError;
use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel::sql_types::{Array, BigInt, Bool, Bytea, SmallInt, Text, Timestamptz};
use diesel_async::{AsyncConnection, RunQueryDsl};
use sha2::{Digest, Sha256};

use super::schema::audit::{chains, entries};
use crate::{pool_error, store_error, PgPool};

#[derive(Debug, Clone)]
pub struct PgAuditStore {
    pool: PgPool,
}

impl PgAuditStore {
    pub fn new(pool: PgPool) -> Self {
        Self { pool }
    }
}

const GENESIS: [u8; 32] = [0; 32];

/// The canonical bytes of an entry at `seq`.
pub fn canonical(seq: i64, e: &NewAuditEntry) -> Vec<u8> {
    let fields = [
        e.tenant.as_str().to_owned(),
        seq.to_string(),
        e.actor.clone(),
        e.action.clone(),
        e.resource.clone(),
        e.outcome.to_string(),
        e.request_id.clone(),
        e.at.timestamp_micros().to_string(),
    ];
    let mut out = Vec::with_capacity(fields.iter().map(|f| f.len() + 4).sum());
    for f in &fields {
        let len = u32::try_from(f.len()).unwrap_or(u32::MAX);
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(f.as_bytes());
    }
    out
}

/// `sha256(prev || canonical(seq, e))`.
pub fn chain_hash(prev: &[u8], seq: i64, e: &NewAuditEntry) -> [u8; 32] {
    let mut h = Sha256::new();
    h.update(prev);
    h.update(canonical(seq, e));
    h.finalize().into()
}

/// Times are stored with microsecond precision; hash what is stored.
fn to_micros(at: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(at.timestamp_micros()).unwrap_or(at)
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = chains)]
struct Head {
    last_seq: i64,
    last_hash: Vec<u8>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = chains)]
struct Anchor {
    last_seq: i64,
    last_hash: Vec<u8>,
    anchor_seq: i64,
    anchor_hash: Vec<u8>,
}

#[derive(Queryable, Selectable)]
#[diesel(table_name = entries)]
struct Row {
    tenant_id: String,
    seq: i64,
    actor: String,
    action: String,
    resource: String,
    outcome: i16,
    request_id: String,
    at: DateTime<Utc>,
    prev_hash: Vec<u8>,
    hash: Vec<u8>,
}

impl Row {
    fn into_entry(self) -> Result<(AuditEntry, Vec<u8>, Vec<u8>), StoreError> {
        let tenant = TenantId::parse(&self.tenant_id)
            .map_err(|e| StoreError::Refused(format!("stored tenant id: {e}")))?;
        let entry = NewAuditEntry {
            tenant,
            actor: self.actor,
            action: self.action,
            resource: self.resource,
            outcome: u16::try_from(self.outcome).unwrap_or(0),
            request_id: self.request_id,
            at: self.at,
        };
        Ok((
            AuditEntry {
                seq: self.seq,
                entry,
                prev_hash: hex::encode(&self.prev_hash),
                hash: hex::encode(&self.hash),
            },
            self.prev_hash,
            self.hash,
        ))
    }
}

/// A batch of entries as columns, for one `INSERT ... SELECT FROM unnest(...)`.
#[derive(Default)]
struct Columns {
    seq: Vec<i64>,
    actor: Vec<String>,
    action: Vec<String>,
    resource: Vec<String>,
    outcome: Vec<i16>,
    request_id: Vec<String>,
    at: Vec<DateTime<Utc>>,
    prev_hash: Vec<Vec<u8>>,
    hash: Vec<Vec<u8>>,
}

impl Columns {
    fn push(&mut self, seq: i64, e: &NewAuditEntry, prev: Vec<u8>, hash: Vec<u8>) {
        self.seq.push(seq);
        self.actor.push(e.actor.clone());
        self.action.push(e.action.clone());
        self.resource.push(e.resource.clone());
        self.outcome
            .push(i16::try_from(e.outcome).unwrap_or(i16::MAX));
        self.request_id.push(e.request_id.clone());
        self.at.push(e.at);
        self.prev_hash.push(prev);
        self.hash.push(hash);
    }
}

const COLUMNS: &str =
    "tenant_id, seq, actor, action, resource, outcome, request_id, at, prev_hash, hash";

#[async_trait]
impl AuditStore for PgAuditStore {
    async fn append(&self, entries: &[NewAuditEntry]) -> Result<(), StoreError> {
        if entries.is_empty() {
            return Ok(());
        }
        // Tenants in a fixed order, so two writers never wait on each other's heads in a cycle.
        let mut tenants: Vec<&TenantId> = entries.iter().map(|e| &e.tenant).collect();
        tenants.sort();
        tenants.dedup();
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        conn.transaction::<_, diesel::result::Error, _>(async |conn| {
            for tenant in tenants {
                // Writers of one tenant take turns; the head itself is the schema owner's,
                // advanced by its trigger as each entry is inserted.
                diesel::sql_query(
                    "SELECT pg_advisory_xact_lock(hashtextextended('audit.chain:' || $1, 0))",
                )
                .bind::<Text, _>(tenant.as_str())
                .execute(conn)
                .await?;
                let head = chains::table
                    .find(tenant.as_str())
                    .select(Head::as_select())
                    .first(conn)
                    .await
                    .optional()?
                    .unwrap_or(Head {
                        last_seq: 0,
                        last_hash: GENESIS.to_vec(),
                    });
                let mut seq = head.last_seq;
                let mut prev = head.last_hash;
                let mut rows = Columns::default();
                for e in entries.iter().filter(|e| &e.tenant == tenant) {
                    let e = NewAuditEntry {
                        at: to_micros(e.at),
                        ..e.clone()
                    };
                    seq += 1;
                    let hash = chain_hash(&prev, seq, &e);
                    rows.push(seq, &e, prev, hash.to_vec());
                    prev = hash.to_vec();
                }
                // One statement for the tenant's batch (bound arrays: beyond the DSL).
                diesel::sql_query(format!(
                    "INSERT INTO audit.entries ({COLUMNS}) \
                     SELECT $1, * FROM unnest($2::bigint[], $3::text[], $4::text[], $5::text[], \
                     $6::smallint[], $7::text[], $8::timestamptz[], $9::bytea[], $10::bytea[])"
                ))
                .bind::<Text, _>(tenant.as_str())
                .bind::<Array<BigInt>, _>(&rows.seq)
                .bind::<Array<Text>, _>(&rows.actor)
                .bind::<Array<Text>, _>(&rows.action)
                .bind::<Array<Text>, _>(&rows.resource)
                .bind::<Array<SmallInt>, _>(&rows.outcome)
                .bind::<Array<Text>, _>(&rows.request_id)
                .bind::<Array<Timestamptz>, _>(&rows.at)
                .bind::<Array<Bytea>, _>(&rows.prev_hash)
                .bind::<Array<Bytea>, _>(&rows.hash)
                .execute(conn)
                .await?;
            }
            Ok(())
        })
        .await
        .map_err(store_error)
    }

    async fn list(&self, tenant: &TenantId, q: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let mut query = entries::table
            .filter(entries::tenant_id.eq(tenant.as_str()))
            .select(Row::as_select())
            .order(entries::seq.desc())
            .limit(i64::from(q.limit.clamp(1, 10_000)))
            .into_boxed();
        if let Some(actor) = &q.actor {
            query = query.filter(entries::actor.eq(actor));
        }
        if let Some(prefix) = &q.action_prefix {
            // starts_with, not LIKE: a prefix may hold `%` or `_`.
            query = query.filter(
                diesel::dsl::sql::<Bool>("starts_with(action, ")
                    .bind::<Text, _>(prefix.clone())
                    .sql(")"),
            );
        }
        if let Some(from) = q.from {
            query = query.filter(entries::at.ge(from));
        }
        if let Some(to) = q.to {
            query = query.filter(entries::at.lt(to));
        }
        if let Some(before) = q.before_seq {
            query = query.filter(entries::seq.lt(before));
        }
        let rows: Vec<Row> = query.load(&mut conn).await.map_err(store_error)?;
        rows.into_iter()
            .map(|r| r.into_entry().map(|(e, _, _)| e))
            .collect()
    }

    async fn verify(&self, tenant: &TenantId) -> Result<ChainVerification, StoreError> {
        let mut conn = self.pool.get().await.map_err(pool_error)?;
        let head: Option<Anchor> = chains::table
            .find(tenant.as_str())
            .select(Anchor::as_select())
            .first(&mut conn)
            .await
            .optional()
            .map_err(store_error)?;
        let Some(head) = head else {
            return Ok(ChainVerification {
                valid: true,
                entries: 0,
                first_broken_seq: None,
                anchor_seq: None,
            });
        };
        let mut prev = head.anchor_hash.clone();
        let mut expected = head.anchor_seq + 1;
        let mut checked = 0u64;
        let mut broken = None;
        'pages: loop {
            let rows: Vec<Row> = entries::table
                .filter(entries::tenant_id.eq(tenant.as_str()))
                .filter(entries::seq.between(expected, head.last_seq))
                .select(Row::as_select())
                .order(entries::seq)
                .limit(2000)
                .load(&mut conn)
                .await
                .map_err(store_error)?;
            if rows.is_empty() {
                break;
            }
            for row in rows {
                let (entry, stored_prev, stored_hash) = row.into_entry()?;
                let computed = chain_hash(&prev, entry.seq, &entry.entry);
                if entry.seq != expected || stored_prev != prev || stored_hash != computed {
                    broken = Some(expected.min(entry.seq));
                    break 'pages;
                }
                checked += 1;
                prev = stored_hash;
                expected += 1;
            }
        }
        // The chain up to the head read first: entries appended meanwhile are not part of this
        // check. Entries removed from the end show as a gap before the head.
        if broken.is_none() && (expected - 1 != head.last_seq || prev != head.last_hash) {
            broken = Some(expected);
        }
        Ok(ChainVerification {
            valid: broken.is_none(),
            entries: checked,
            first_broken_seq: broken,
            anchor_seq: Some(head.anchor_seq),
        })
    }
}
