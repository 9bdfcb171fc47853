//! The pipeline of every public route: authenticate, rate-limit, authorize, answer (forward or
//! local), add the rate-limit headers, record the access.

use std::sync::Arc;

use actix_web::http::header::AUTHORIZATION;
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use aurum_authn::{bearer_token, AuthnError, JwksVerifier, Principal};
use aurum_http::{Problem, RequestId};
use aurum_ports::audit::{AuditStore, NewAuditEntry};

use crate::audit::AuditSink;
use crate::metrics::GatewayMetrics;
use crate::proxy::{Caller, Proxy};
use crate::rate_limit::{add_headers, too_many, RateLimits};
use crate::routes::{Local, Target, ROUTES};
use crate::{audit, authz, gdpr};

/// What the handlers share.
#[derive(Debug)]
pub struct GatewayState {
    pub verifier: JwksVerifier,
    pub proxy: Proxy,
    pub limits: Option<RateLimits>,
    pub audit: AuditSink,
    pub audit_store: Arc<dyn AuditStore>,
    pub metrics: GatewayMetrics,
    pub body_limit: usize,
}

/// The verified principal, or the refusal (401/503, or 429 when a caller without a valid
/// token is over its IP's limit).
async fn authenticate(req: &HttpRequest, state: &GatewayState) -> Result<Principal, HttpResponse> {
    let result = match bearer_token(req.headers()) {
        Some(token) => state.verifier.verify(token).await,
        None if req.headers().contains_key(AUTHORIZATION) => Err(AuthnError::Malformed(
            "the Authorization header is not a single Bearer token".into(),
        )),
        None => Err(AuthnError::Missing),
    };
    result.map_err(|e| {
        state
            .metrics
            .auth_failures
            .with_label_values(&[e.label()])
            .inc();
        if let Some(limits) = &state.limits {
            if let Err(limited) = limits.check_ip(req) {
                return too_many(&limited);
            }
        }
        e.error_response()
    })
}

/// Serves the route `ROUTES[index]`.
pub async fn dispatch(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<GatewayState>,
    index: usize,
) -> HttpResponse {
    let Some(route) = ROUTES.get(index) else {
        return Problem::internal().error_response();
    };
    let principal = match authenticate(&req, &state).await {
        Ok(p) => p,
        Err(res) => return res,
    };
    let allowance = match &state.limits {
        Some(l) => match l.check_principal(
            &principal.subject,
            principal.tenant.as_ref().map(|t| t.as_str()),
        ) {
            Ok(a) => Some(a),
            Err(limited) => return too_many(&limited),
        },
        None => None,
    };
    let mut res = match authz::authorize(&principal, route) {
        Err(problem) => {
            state.metrics.forbidden.inc();
            problem.error_response()
        }
        Ok(tenant) => match route.target {
            Target::Local(Local::AuditList) => {
                audit::list(&*state.audit_store, tenant, req.query_string()).await
            }
            Target::Local(Local::AuditVerify) => audit::verify(&*state.audit_store, tenant).await,
            Target::Local(Local::GdprExport) => {
                gdpr::export(&req, &state.proxy, &*state.audit_store, &principal, tenant).await
            }
            upstream => match aurum_http::read_body(&req, payload, state.body_limit).await {
                Err(problem) => problem.error_response(),
                Ok(body) => {
                    let caller = Caller {
                        tenant: tenant.as_str(),
                        subject: &principal.subject,
                    };
                    state.proxy.forward(upstream, &req, body, caller).await
                }
            },
        },
    };
    if let Some(a) = &allowance {
        add_headers(&mut res, a);
    }
    if let Some(tenant) = principal.tenant {
        state.audit.record(NewAuditEntry {
            tenant,
            actor: principal.subject,
            action: route.action(),
            resource: req.path().to_owned(),
            outcome: res.status().as_u16(),
            request_id: RequestId::current()
                .map(|r| r.to_string())
                .unwrap_or_default(),
            at: chrono::Utc::now(),
        });
    }
    res
}

/// Anything else: 401 without a valid token, 404 with one.
pub async fn fallback(req: HttpRequest, state: web::Data<GatewayState>) -> HttpResponse {
    match authenticate(&req, &state).await {
        Err(res) => res,
        Ok(_) => {
            Problem::not_found(format!("no route {} {}", req.method(), req.path())).error_response()
        }
    }
}
