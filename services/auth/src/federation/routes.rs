//! `GET /authorize/federation/{provider}` (leave for the upstream provider) and
//! `GET /federation/{provider}/callback` (come back, resume the platform's authorization).

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use aurum_ports::auth::{AuthorizationCode, PendingFederation};
use chrono::{Duration, Utc};
use uuid::Uuid;

use super::{Mapped, MappingError};
use crate::app::AppState;
use crate::crypto;
use crate::oidc::authorize::{escape, redirect_with};
use crate::oidc::client_auth::Params;
use crate::security_events::{EventKind, Origin, Subject};
use crate::tokens::LoginFormClaims;

/// The login form's CSRF cookie (set by `GET /authorize`, path `/authorize` below the
/// issuer's path).
const LOGIN_CSRF_COOKIE: &str = "aurum_login_csrf";
/// Binds a pending upstream sign-in to the browser that started it.
const BROWSER_COOKIE: &str = "aurum_federation";

fn page(status: StatusCode, message: &str) -> HttpResponse {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign-in error</title></head>\
         <body><h1>Sign-in error</h1><p>{}</p></body></html>",
        escape(message)
    );
    HttpResponse::build(status)
        .insert_header((
            "Content-Security-Policy",
            "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'",
        ))
        .insert_header(("X-Frame-Options", "DENY"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .insert_header(("Cache-Control", "no-store"))
        .content_type("text/html; charset=utf-8")
        .body(body)
}

/// The one page every refused federated sign-in shows: no detail of what went wrong.
fn refused() -> HttpResponse {
    page(
        StatusCode::FORBIDDEN,
        "Signing in with this identity provider did not succeed. Go back to the application and start again.",
    )
}

fn unavailable() -> HttpResponse {
    page(
        StatusCode::BAD_GATEWAY,
        "The identity provider cannot be reached right now. Retry later, or sign in with your password.",
    )
}

fn cookie(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(actix_web::http::header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn is_random_token(v: &str) -> bool {
    v.len() == 43
        && v.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

fn secure(state: &AppState) -> &'static str {
    if state.tokens.issuer.starts_with("https://") {
        "; Secure"
    } else {
        ""
    }
}

/// Records a refused federated sign-in and logs why (never a token, code or secret).
async fn fail(
    state: &AppState,
    origin: &Origin,
    provider: &str,
    client_id: Option<&str>,
    reason: &str,
) -> HttpResponse {
    tracing::warn!(provider, reason, "federated sign-in refused");
    state
        .events
        .record(
            EventKind::FederatedLoginFailed,
            Subject {
                client_id: client_id.map(str::to_owned),
                ..Subject::default()
            },
            origin,
        )
        .await;
    refused()
}

/// `GET /authorize/federation/{provider}?request=<signed login form>`
pub async fn start(
    state: web::Data<AppState>,
    req: HttpRequest,
    provider: web::Path<String>,
) -> HttpResponse {
    let origin = Origin::of(&req, &state.settings.trusted_proxies);
    let Some(upstream) = state.federation.provider(&provider) else {
        return page(StatusCode::NOT_FOUND, "Unknown identity provider.");
    };
    let id = upstream.settings.id.as_str();
    let p = match Params::from_query(&req) {
        Ok(p) => p,
        Err(_) => return page(StatusCode::BAD_REQUEST, "The sign-in request is invalid."),
    };
    let Some(form) = p.get("request") else {
        return page(
            StatusCode::BAD_REQUEST,
            "The sign-in request is incomplete.",
        );
    };
    let claims = match state.tokens.verify_login_form(form).await {
        Ok(c) => c,
        Err(e) => {
            tracing::info!(error = %e, "login form refused");
            return page(
                StatusCode::BAD_REQUEST,
                "This sign-in form has expired or is invalid. Go back to the application and start again.",
            );
        }
    };
    let csrf_ok = cookie(&req, LOGIN_CSRF_COOKIE).is_some_and(|c| {
        crypto::constant_time_eq(crypto::sha256_hex(&c).as_bytes(), claims.csrf.as_bytes())
    });
    if !csrf_ok {
        return fail(
            &state,
            &origin,
            id,
            Some(&claims.client_id),
            "login form of another browser",
        )
        .await;
    }
    let browser = cookie(&req, BROWSER_COOKIE)
        .filter(|v| is_random_token(v))
        .unwrap_or_else(crypto::random_token);
    let up_state = crypto::random_token();
    let nonce = crypto::random_token();
    let verifier = crypto::random_token();
    let url = match upstream
        .authorization_url(&up_state, &nonce, &verifier)
        .await
    {
        Ok(u) => u,
        Err(e) => {
            tracing::error!(provider = id, error = %e, "upstream provider unavailable");
            return unavailable();
        }
    };
    let now = Utc::now();
    let ttl = state.federation.pending_ttl_s;
    if let Err(e) = state.federation.store.purge_pending(now).await {
        tracing::warn!(error = %e, "cannot purge expired federated sign-ins");
    }
    let pending = PendingFederation {
        state_hash: crypto::sha256_hex(&up_state),
        provider: id.to_owned(),
        browser_hash: crypto::sha256_hex(&browser),
        nonce,
        pkce_verifier: verifier,
        login_request: form.to_owned(),
        expires_at: now + Duration::seconds(ttl as i64),
    };
    if let Err(e) = state.federation.store.put_pending(&pending).await {
        tracing::error!(error = %e, "cannot store a pending federated sign-in");
        return page(
            StatusCode::SERVICE_UNAVAILABLE,
            "The service is unavailable; retry later.",
        );
    }
    HttpResponse::SeeOther()
        .insert_header(("Location", url.as_str()))
        .insert_header((
            "Set-Cookie",
            format!(
                "{BROWSER_COOKIE}={browser}; Path={}; Max-Age={ttl}; HttpOnly; SameSite=Lax{}",
                state.tokens.public_path("/federation"),
                secure(&state)
            ),
        ))
        .insert_header(("Cache-Control", "no-store"))
        .insert_header(("Referrer-Policy", "no-referrer"))
        .finish()
}

/// `GET /federation/{provider}/callback?code=...&state=...` (or `error=...`)
pub async fn callback(
    state: web::Data<AppState>,
    req: HttpRequest,
    provider: web::Path<String>,
) -> HttpResponse {
    let origin = Origin::of(&req, &state.settings.trusted_proxies);
    let Some(upstream) = state.federation.provider(&provider) else {
        return page(StatusCode::NOT_FOUND, "Unknown identity provider.");
    };
    let id = upstream.settings.id.as_str();
    let Ok(p) = Params::from_query(&req) else {
        return fail(&state, &origin, id, None, "malformed callback").await;
    };
    let Some(up_state) = p.get("state").filter(|s| is_random_token(s)) else {
        return fail(&state, &origin, id, None, "state missing or malformed").await;
    };
    // Taken before anything else is checked: whatever follows, this state is spent.
    let pending = match state
        .federation
        .store
        .take_pending(&crypto::sha256_hex(up_state))
        .await
    {
        Ok(Some(p)) => p,
        Ok(None) => return fail(&state, &origin, id, None, "unknown or spent state").await,
        Err(e) => {
            tracing::error!(error = %e, "storage failed");
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                "The service is unavailable; retry later.",
            );
        }
    };
    let bound = cookie(&req, BROWSER_COOKIE).is_some_and(|c| {
        crypto::constant_time_eq(
            crypto::sha256_hex(&c).as_bytes(),
            pending.browser_hash.as_bytes(),
        )
    });
    if pending.provider != id {
        return fail(&state, &origin, id, None, "state of another provider").await;
    }
    if pending.expires_at < Utc::now() {
        return fail(&state, &origin, id, None, "state expired").await;
    }
    if !bound {
        return fail(&state, &origin, id, None, "state of another browser").await;
    }
    let claims = match state.tokens.verify_login_form(&pending.login_request).await {
        Ok(c) => c,
        Err(e) => {
            tracing::info!(error = %e, "pending login form no longer valid");
            return fail(&state, &origin, id, None, "platform request expired").await;
        }
    };
    let client_id = Some(claims.client_id.as_str());
    // RFC 9207: an `iss` in the response must be this provider's (mix-up defence).
    if p.get("iss").is_some_and(|iss| iss != upstream.issuer()) {
        return fail(&state, &origin, id, client_id, "iss of another provider").await;
    }
    if let Some(error) = p.get("error") {
        let error: String = error
            .chars()
            .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
            .take(64)
            .collect();
        let reason = format!("upstream answered {error}");
        return fail(&state, &origin, id, client_id, &reason).await;
    }
    let Some(code) = p.get("code") else {
        return fail(&state, &origin, id, client_id, "no code").await;
    };
    let identity = match upstream
        .complete(code, &pending.pkce_verifier, &pending.nonce)
        .await
    {
        Ok(i) => i,
        Err(e) => {
            let reason = e.to_string();
            return fail(&state, &origin, id, client_id, &reason).await;
        }
    };
    let (user, how) = match state
        .federation
        .map_identity(state.users.as_ref(), upstream, &identity)
        .await
    {
        Ok(m) => m,
        Err(MappingError::Store(e)) => {
            tracing::error!(error = %e, "storage failed");
            return page(
                StatusCode::SERVICE_UNAVAILABLE,
                "The service is unavailable; retry later.",
            );
        }
        Err(e) => {
            let reason = e.to_string();
            return fail(&state, &origin, id, client_id, &reason).await;
        }
    };
    let subject = Subject {
        tenant: Some(user.tenant.as_str().to_owned()),
        user_id: Some(user.id),
        username: Some(user.username.clone()),
        client_id: Some(claims.client_id.clone()),
    };
    if how == Mapped::Provisioned {
        state
            .events
            .record(EventKind::UserCreated, subject.clone(), &origin)
            .await;
    }
    tracing::info!(provider = id, mapping = ?how, "federated identity mapped");
    state
        .events
        .record(EventKind::FederatedLoginSucceeded, subject, &origin)
        .await;
    match resume(&state, &claims).await {
        Ok(client_tenant) => {
            issue_code(&state, &claims, user.id, client_tenant, &user.tenant).await
        }
        Err(r) => r,
    }
}

/// The platform client of the pending request, checked again (it may have changed meanwhile).
async fn resume(
    state: &AppState,
    claims: &LoginFormClaims,
) -> Result<Option<aurum_domain::TenantId>, HttpResponse> {
    match state.clients.client(&claims.client_id).await {
        Ok(Some(c)) if c.redirect_uris.contains(&claims.redirect_uri) => Ok(c.tenant),
        Ok(_) => Err(page(StatusCode::BAD_REQUEST, "Unknown client.")),
        Err(e) => {
            tracing::error!(error = %e, "storage failed");
            Err(page(
                StatusCode::SERVICE_UNAVAILABLE,
                "The service is unavailable; retry later.",
            ))
        }
    }
}

/// Answers the platform's pending authorization request as a password sign-in does.
async fn issue_code(
    state: &AppState,
    claims: &LoginFormClaims,
    user_id: Uuid,
    client_tenant: Option<aurum_domain::TenantId>,
    user_tenant: &aurum_domain::TenantId,
) -> HttpResponse {
    let mut params = vec![("iss", state.tokens.issuer.as_str())];
    if let Some(s) = claims.state.as_deref() {
        params.push(("state", s));
    }
    if client_tenant.is_some_and(|t| t != *user_tenant) {
        params.push(("error", "access_denied"));
        params.push((
            "error_description",
            "this application belongs to another tenant",
        ));
        return redirect_with(&claims.redirect_uri, &params);
    }
    let code = crypto::random_token();
    let now = Utc::now();
    let record = AuthorizationCode {
        code_hash: crypto::sha256_hex(&code),
        client_id: claims.client_id.clone(),
        user_id,
        redirect_uri: claims.redirect_uri.clone(),
        scope: claims.scope.clone(),
        nonce: claims.nonce.clone(),
        code_challenge: claims.code_challenge.clone(),
        session_id: Uuid::new_v4(),
        auth_time: now,
        family_id: Uuid::new_v4(),
        expires_at: now + Duration::seconds(state.settings.auth_code_ttl_s as i64),
    };
    if let Err(e) = state.grants.put_code(&record).await {
        tracing::error!(error = %e, "cannot store an authorization code");
        params.push(("error", "temporarily_unavailable"));
        params.push(("error_description", "retry later"));
        return redirect_with(&claims.redirect_uri, &params);
    }
    params.insert(0, ("code", code.as_str()));
    redirect_with(&claims.redirect_uri, &params)
}
