//! The audit log: every call that reaches tenant data is recorded after its answer, by one
//! writer task per replica fed through a bounded queue (no database round trip on the
//! request's path). A full queue or a failing store drops entries, and every drop is counted
//! (`aurum_gateway_audit_dropped_total`) and logged. Entries form one hash chain per tenant
//! (see `aurum_postgres::audit::PgAuditStore`).

use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, HttpResponse, ResponseError};
use aurum_domain::TenantId;
use aurum_http::Problem;
use aurum_ports::audit::{AuditQuery, AuditStore, NewAuditEntry};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::metrics::GatewayMetrics;

/// Where the request path puts entries.
#[derive(Debug, Clone)]
pub struct AuditSink {
    tx: Option<mpsc::Sender<NewAuditEntry>>,
    metrics: GatewayMetrics,
}

impl AuditSink {
    /// A sink and its writer task.
    pub fn start(
        store: Arc<dyn AuditStore>,
        capacity: usize,
        batch_max: usize,
        linger: Duration,
        metrics: GatewayMetrics,
    ) -> (Self, JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(capacity.max(1));
        let task = tokio::spawn(write_loop(
            store,
            rx,
            batch_max.max(1),
            linger,
            metrics.clone(),
        ));
        (
            Self {
                tx: Some(tx),
                metrics,
            },
            task,
        )
    }

    /// A sink that records nothing (audit disabled).
    pub fn disabled(metrics: GatewayMetrics) -> Self {
        Self { tx: None, metrics }
    }

    pub fn record(&self, entry: NewAuditEntry) {
        let Some(tx) = &self.tx else { return };
        match tx.try_send(entry) {
            Ok(()) => self.metrics.audit_queue.inc(),
            Err(mpsc::error::TrySendError::Full(e)) => {
                self.metrics
                    .audit_dropped
                    .with_label_values(&["queue_full"])
                    .inc();
                tracing::error!(tenant = %e.tenant, action = %e.action, "audit queue full: entry dropped");
            }
            Err(mpsc::error::TrySendError::Closed(_)) => {
                self.metrics
                    .audit_dropped
                    .with_label_values(&["closed"])
                    .inc();
                tracing::error!("audit writer stopped: entry dropped");
            }
        }
    }
}

async fn write_loop(
    store: Arc<dyn AuditStore>,
    mut rx: mpsc::Receiver<NewAuditEntry>,
    batch_max: usize,
    linger: Duration,
    metrics: GatewayMetrics,
) {
    let mut batch = Vec::with_capacity(batch_max);
    while rx.recv_many(&mut batch, batch_max).await > 0 {
        // Gather what arrives within `linger` into the same transaction: a few commits a
        // second instead of one per request. Sleeping, not waiting on the queue, so the
        // request path's sends wake nobody meanwhile. A full batch means a backlog: it is
        // written at once.
        if batch.len() < batch_max {
            tokio::time::sleep(linger).await;
            while batch.len() < batch_max {
                match rx.try_recv() {
                    Ok(entry) => batch.push(entry),
                    Err(_) => break,
                }
            }
        }
        metrics.audit_queue.sub(batch.len() as i64);
        let mut attempt = 0u32;
        loop {
            attempt += 1;
            match store.append(&batch).await {
                Ok(()) => {
                    metrics.audit_written.inc_by(batch.len() as u64);
                    break;
                }
                Err(e) if attempt < 5 => {
                    tracing::warn!(error = %e, attempt, "audit write failed; retrying");
                    tokio::time::sleep(Duration::from_millis(200 * u64::from(attempt))).await;
                }
                Err(e) => {
                    metrics
                        .audit_dropped
                        .with_label_values(&["store"])
                        .inc_by(batch.len() as u64);
                    tracing::error!(error = %e, entries = batch.len(), "audit entries dropped: the store keeps failing");
                    break;
                }
            }
        }
        batch.clear();
    }
}

#[derive(Debug, Deserialize)]
pub struct ListParams {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    pub before_seq: Option<i64>,
    pub limit: Option<u32>,
}

pub fn parse_query(query: &str) -> Result<AuditQuery, Problem> {
    let p: ListParams = web::Query::<ListParams>::from_query(query)
        .map_err(|e| Problem::bad_request(format!("query: {e}")))?
        .into_inner();
    let limit = p.limit.unwrap_or(100);
    if limit == 0 || limit > 1000 {
        return Err(Problem::bad_request("limit must be 1 to 1000"));
    }
    Ok(AuditQuery {
        actor: p.actor,
        action_prefix: p.action,
        from: p.from,
        to: p.to,
        before_seq: p.before_seq,
        limit,
    })
}

/// `GET /api/v1/audit`: the caller's tenant's entries, newest first, with the chain's state.
pub async fn list(store: &dyn AuditStore, tenant: &TenantId, query: &str) -> HttpResponse {
    let q = match parse_query(query) {
        Ok(q) => q,
        Err(p) => return p.error_response(),
    };
    let (entries, chain) = match futures::try_join!(store.list(tenant, &q), store.verify(tenant)) {
        Ok(r) => r,
        Err(e) => return Problem::store(&e, "reading the audit log").error_response(),
    };
    let next = entries
        .last()
        .map(|e| e.seq)
        .filter(|_| entries.len() as u32 == q.limit);
    HttpResponse::Ok().json(serde_json::json!({
        "tenant": tenant.as_str(),
        "entries": entries,
        "next_before_seq": next,
        "chain": chain,
    }))
}

/// `GET /api/v1/audit/verify`.
pub async fn verify(store: &dyn AuditStore, tenant: &TenantId) -> HttpResponse {
    match store.verify(tenant).await {
        Ok(v) => HttpResponse::Ok().json(v),
        Err(e) => Problem::store(&e, "verifying the audit chain").error_response(),
    }
}
