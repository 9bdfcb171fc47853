//! GDPR: the caller's export (their account from auth plus their audit entries). Erasure
//! (`DELETE /api/v1/me`, `DELETE /api/v1/users/{id}`) is forwarded to auth, which anonymises
//! the account and revokes its tokens; the audit log keeps only the opaque subject id, so its
//! chain stays intact. Retention: `audit.retention_days` here; telemetry retention is
//! ingestion's `ingest.retention_days`; prediction history is prediction's
//! `prediction.retention_days`.

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use aurum_authn::Principal;
use aurum_domain::TenantId;
use aurum_http::{Problem, RequestId, TENANT_HEADER, USER_HEADER};
use aurum_ports::audit::{AuditQuery, AuditStore};
use serde_json::{json, Value};

use crate::proxy::{Proxy, WorkerClient};
use crate::routes::Target;

/// Audit entries of one subject in one export, at most.
const MAX_EXPORTED_ENTRIES: usize = 100_000;

/// The largest account export auth's answer may be.
const EXPORT_LIMIT: usize = 8 * 1024 * 1024;

pub async fn export(
    req: &HttpRequest,
    proxy: &Proxy,
    store: &dyn AuditStore,
    principal: &Principal,
    tenant: &TenantId,
) -> HttpResponse {
    let Some((_, auth)) = proxy.upstream(Target::Auth) else {
        return Problem::internal().error_response();
    };
    let Some(client) = WorkerClient::of(req) else {
        return Problem::internal().error_response();
    };
    let url = format!("{}/v1/me/export", auth.url.trim_end_matches('/'));
    let mut call = client
        .get(url)
        .timeout(auth.timeout())
        .insert_header((TENANT_HEADER, tenant.as_str()))
        .insert_header((USER_HEADER, principal.subject.as_str()));
    if let Some(a) = req.headers().get(actix_web::http::header::AUTHORIZATION) {
        call = call.insert_header((actix_web::http::header::AUTHORIZATION, a.clone()));
    }
    if let Some(id) = RequestId::current() {
        call = call.insert_header(("x-request-id", id.as_str()));
    }
    let account: Value = match call.send().await {
        Ok(mut r) if r.status().is_success() => match r.json().limit(EXPORT_LIMIT).await {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(error = %e, "auth's export is not JSON");
                return upstream_failed();
            }
        },
        Ok(mut r) => {
            // The caller's own failure (401 revoked, 404 erased) is theirs to see.
            let status = r.status();
            if status.is_client_error() {
                let body = r.body().await.unwrap_or_default();
                return HttpResponse::build(status)
                    .content_type("application/problem+json")
                    .body(body);
            }
            tracing::warn!(status = status.as_u16(), "auth's export failed");
            return upstream_failed();
        }
        Err(e) => {
            tracing::warn!(error = %e, "auth's export failed");
            return upstream_failed();
        }
    };

    let mut entries = Vec::new();
    let mut before = None;
    loop {
        let q = AuditQuery {
            actor: Some(principal.subject.clone()),
            before_seq: before,
            limit: 1000,
            ..AuditQuery::default()
        };
        match store.list(tenant, &q).await {
            Ok(page) => {
                let n = page.len();
                before = page.last().map(|e| e.seq);
                entries.extend(page);
                if n < 1000 || entries.len() >= MAX_EXPORTED_ENTRIES {
                    break;
                }
            }
            Err(e) => {
                return Problem::store(&e, "reading the audit log for an export").error_response()
            }
        }
    }
    HttpResponse::Ok()
        .insert_header((
            actix_web::http::header::CONTENT_DISPOSITION,
            "attachment; filename=\"aurumai-export.json\"",
        ))
        .json(json!({
            "format": "aurumai-gdpr-export/1",
            "generated_at": chrono::Utc::now(),
            "subject": principal.subject,
            "tenant": tenant.as_str(),
            "account": account,
            "audit_entries": entries,
        }))
}

fn upstream_failed() -> HttpResponse {
    Problem::new(
        StatusCode::BAD_GATEWAY,
        "upstream-unavailable",
        "The account service is unavailable; retry later",
    )
    .error_response()
}
