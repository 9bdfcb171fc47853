//! Bearer tokens presented to the auth service's own API: verified with its own keys
//! (signature, exp/nbf with leeway, issuer, audience `aurumai-api` or `aurumai-auth`,
//! `typ: at+jwt`, jti not revoked).

use std::str::FromStr;

use actix_web::dev::Payload;
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse, ResponseError};
use aurum_domain::{Role, TenantId};
use aurum_http::Problem;
use futures::future::LocalBoxFuture;
use uuid::Uuid;

use crate::app::AppState;
use crate::security_events::{EventKind, Origin, Subject};
use crate::tokens::AccessClaims;

/// The verified caller of an API route.
#[derive(Debug, Clone)]
pub struct Caller {
    pub claims: AccessClaims,
    pub tenant: Option<TenantId>,
    pub roles: Vec<Role>,
}

/// 401 problem+json with a Bearer challenge.
#[derive(Debug)]
pub struct Unauthorized(Problem);

impl std::fmt::Display for Unauthorized {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl ResponseError for Unauthorized {
    fn status_code(&self) -> StatusCode {
        StatusCode::UNAUTHORIZED
    }

    fn error_response(&self) -> HttpResponse {
        let mut r = self.0.error_response();
        if let Ok(v) = actix_web::http::header::HeaderValue::from_str(
            r#"Bearer realm="aurum-auth", error="invalid_token""#,
        ) {
            r.headers_mut()
                .insert(actix_web::http::header::WWW_AUTHENTICATE, v);
        }
        r
    }
}

fn unauthorized(detail: &str) -> Unauthorized {
    Unauthorized(
        Problem::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "A valid Bearer access token is required",
        )
        .detail(detail),
    )
}

/// The token of an `Authorization: Bearer ...` header.
pub fn bearer_token(req: &HttpRequest) -> Option<String> {
    let v = req
        .headers()
        .get(actix_web::http::header::AUTHORIZATION)?
        .to_str()
        .ok()?;
    let (scheme, token) = v.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_owned())
        .filter(|t| !t.is_empty())
}

impl FromRequest for Caller {
    type Error = Unauthorized;
    type Future = LocalBoxFuture<'static, Result<Self, Unauthorized>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let state = req.app_data::<web::Data<AppState>>().cloned();
        let token = bearer_token(req);
        Box::pin(async move {
            let state = state.ok_or_else(|| unauthorized("not configured"))?;
            let token = token.ok_or_else(|| unauthorized("no Bearer token"))?;
            let claims = state.tokens.verify_access(&token).await.map_err(|e| {
                tracing::debug!(error = %e, "bearer token refused");
                unauthorized("the token is invalid, expired or revoked")
            })?;
            let tenant = match &claims.tenant {
                Some(t) => Some(
                    TenantId::parse(t)
                        .map_err(|_| unauthorized("the token's tenant is invalid"))?,
                ),
                None => None,
            };
            let roles = claims
                .roles
                .iter()
                .filter_map(|r| Role::from_str(r).ok())
                .collect();
            Ok(Caller {
                claims,
                tenant,
                roles,
            })
        })
    }
}

impl Caller {
    pub fn has(&self, role: Role) -> bool {
        Role::highest(&self.roles).is_some_and(|r| r.grants(role))
    }

    pub fn user_id(&self) -> Option<Uuid> {
        self.claims.user_id()
    }

    pub fn subject(&self) -> Subject {
        Subject {
            tenant: self.claims.tenant.clone(),
            user_id: self.user_id(),
            username: None,
            client_id: Some(self.claims.client_id.clone()),
        }
    }

    /// The caller's tenant when it holds `role` there; 403 (logged) otherwise.
    pub async fn require(
        &self,
        state: &AppState,
        role: Role,
        req: &HttpRequest,
    ) -> Result<TenantId, Problem> {
        match (&self.tenant, self.has(role)) {
            (Some(t), true) => Ok(t.clone()),
            _ => {
                state
                    .events
                    .record(
                        EventKind::AccessDenied,
                        self.subject(),
                        &Origin::of(req, &state.settings.trusted_proxies),
                    )
                    .await;
                Err(Problem::new(
                    StatusCode::FORBIDDEN,
                    "forbidden",
                    "The caller lacks the role this needs",
                )
                .detail(format!("requires the {role} role in a tenant")))
            }
        }
    }
}
