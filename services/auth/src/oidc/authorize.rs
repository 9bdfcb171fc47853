//! `GET /authorize` (authorization code flow, PKCE S256 required) and the login form it shows,
//! posted to `POST /authorize/login`.
//!
//! The validated request travels in the form as a token signed with the current signing key,
//! bound to a CSRF cookie of the browser (its SHA-256 is in the token), so any replica can
//! finish it and a form cannot be replayed from another browser.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use aurum_ports::auth::{AuthorizationCode, ClientRecord, UserRecord};
use chrono::{Duration, Utc};
use uuid::Uuid;

use super::client_auth::Params;
use super::SCOPES;
use crate::app::AppState;
use crate::brute_force::Account;
use crate::crypto;
use crate::security_events::{EventKind, Origin, Subject};
use crate::tokens::{LoginFormClaims, Tokens};

const CSRF_COOKIE: &str = "aurum_login_csrf";

/// An error page for requests that cannot be sent back to the client (RFC 6749 §4.1.2.1:
/// unknown client or redirect URI; or a client whose redirect URIs a tenant registered).
fn error_page(status: StatusCode, message: &str) -> HttpResponse {
    let body = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign-in error</title></head>\
         <body><h1>Sign-in error</h1><p>{}</p></body></html>",
        escape(message)
    );
    let mut r = HttpResponse::build(status);
    security_headers(&mut r, None);
    r.content_type("text/html; charset=utf-8").body(body)
}

fn security_headers(r: &mut actix_web::HttpResponseBuilder, form_target: Option<&str>) {
    let form_action = match form_target {
        Some(origin) => format!("'self' {origin}"),
        None => "'self'".into(),
    };
    r.insert_header((
        "Content-Security-Policy",
        format!(
            "default-src 'none'; style-src 'unsafe-inline'; form-action {form_action}; \
             frame-ancestors 'none'; base-uri 'none'"
        ),
    ))
    .insert_header(("X-Frame-Options", "DENY"))
    .insert_header(("X-Content-Type-Options", "nosniff"))
    .insert_header(("Referrer-Policy", "no-referrer"))
    .insert_header(("Cache-Control", "no-store"))
    .insert_header(("Pragma", "no-cache"));
}

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// `redirect_uri` with the response parameters added (existing query kept).
pub fn redirect_with(redirect_uri: &str, params: &[(&str, &str)]) -> HttpResponse {
    let Ok(mut url) = url::Url::parse(redirect_uri) else {
        return error_page(StatusCode::BAD_REQUEST, "The redirect URI is invalid.");
    };
    {
        let mut q = url.query_pairs_mut();
        for (k, v) in params {
            q.append_pair(k, v);
        }
    }
    HttpResponse::SeeOther()
        .insert_header(("Location", url.as_str()))
        .insert_header(("Cache-Control", "no-store"))
        .finish()
}

fn redirect_error(
    tokens: &Tokens,
    redirect_uri: &str,
    state: Option<&str>,
    error: &str,
    description: &str,
) -> HttpResponse {
    let mut p = vec![
        ("error", error),
        ("error_description", description),
        ("iss", tokens.issuer.as_str()),
    ];
    if let Some(s) = state {
        p.push(("state", s));
    }
    redirect_with(redirect_uri, &p)
}

/// A cookie's value from the request's `Cookie` headers.
fn cookie(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(actix_web::http::header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

fn origin_of(uri: &str) -> Option<String> {
    url::Url::parse(uri)
        .ok()
        .map(|u| u.origin().ascii_serialization())
        .filter(|o| o != "null")
}

/// Scopes as asked, checked against the known ones.
pub fn check_scope(scope: &str) -> Result<String, String> {
    let mut out: Vec<&str> = Vec::new();
    for s in scope.split_whitespace() {
        if !SCOPES.contains(&s) {
            return Err(format!("unknown scope {s}"));
        }
        if !out.contains(&s) {
            out.push(s);
        }
    }
    Ok(out.join(" "))
}

fn is_pkce_value(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || "-._~".contains(c))
}

pub async fn authorize(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let p = match Params::from_query(&req) {
        Ok(p) => p,
        Err(e) => {
            return error_page(
                StatusCode::BAD_REQUEST,
                e.error_description.as_deref().unwrap_or("invalid request"),
            )
        }
    };
    let Some(client_id) = p.get("client_id") else {
        return error_page(StatusCode::BAD_REQUEST, "client_id is required.");
    };
    let client = match state.clients.client(client_id).await {
        Ok(Some(c)) => c,
        Ok(None) => return error_page(StatusCode::BAD_REQUEST, "Unknown client."),
        Err(e) => {
            tracing::error!(error = %e, "storage failed");
            return error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "The service is unavailable; retry later.",
            );
        }
    };
    let Some(redirect_uri) = p.get("redirect_uri") else {
        return error_page(StatusCode::BAD_REQUEST, "redirect_uri is required.");
    };
    if !client.redirect_uris.iter().any(|r| r == redirect_uri) {
        return error_page(
            StatusCode::BAD_REQUEST,
            "The redirect URI is not registered for this client.",
        );
    }
    // From here on, errors go back to the client (RFC 6749 §4.1.2.1), but only to addresses
    // the platform configured: a tenant's admin registers any URI, and sending an unsigned-in
    // visitor there would make this page an open redirector. Their clients get the error
    // here instead, before anyone has signed in.
    let tokens = &state.tokens;
    let st = p.get("state");
    let fail = |error: &str, description: &str| {
        if client.seeded {
            redirect_error(tokens, redirect_uri, st, error, description)
        } else {
            error_page(
                StatusCode::BAD_REQUEST,
                &format!("The application's sign-in request is invalid ({error}: {description})."),
            )
        }
    };
    if p.get("request").is_some() {
        return fail("request_not_supported", "request objects are not supported");
    }
    if p.get("request_uri").is_some() {
        return fail("request_uri_not_supported", "request_uri is not supported");
    }
    match p.get("response_type") {
        Some("code") => {}
        Some(_) => {
            return fail(
                "unsupported_response_type",
                "only response_type=code is supported",
            )
        }
        None => return fail("invalid_request", "response_type is required"),
    }
    if !client.allows_grant("authorization_code") {
        return fail(
            "unauthorized_client",
            "this client may not use the authorization code flow",
        );
    }
    let scope = match check_scope(p.get("scope").unwrap_or("openid")) {
        Ok(s) => s,
        Err(e) => return fail("invalid_scope", &e),
    };
    let Some(challenge) = p.get("code_challenge") else {
        return fail(
            "invalid_request",
            "code_challenge is required (PKCE with S256)",
        );
    };
    if p.get("code_challenge_method") != Some("S256") {
        return fail(
            "invalid_request",
            "code_challenge_method must be S256 (plain is refused)",
        );
    }
    if !is_pkce_value(challenge) {
        return fail("invalid_request", "code_challenge is malformed");
    }
    if p.get("prompt")
        .is_some_and(|pr| pr.split(' ').any(|x| x == "none"))
    {
        return fail("login_required", "the user must sign in");
    }
    let nonce = p.get("nonce");
    if nonce.is_some_and(|n| n.len() > 512) || st.is_some_and(|s| s.len() > 2048) {
        return fail("invalid_request", "state or nonce is too long");
    }

    // Reuse the browser's CSRF value when it has one (several tabs may sign in at once).
    let csrf = cookie(&req, CSRF_COOKIE)
        .filter(|v| {
            v.len() == 43
                && v.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
        .unwrap_or_else(crypto::random_token);
    let now = Utc::now();
    let claims = LoginFormClaims {
        iss: tokens.issuer.clone(),
        aud: Tokens::login_form_audience().to_owned(),
        exp: (now + Duration::seconds(state.settings.login_form_ttl_s as i64)).timestamp(),
        iat: now.timestamp(),
        client_id: client.client_id.clone(),
        redirect_uri: redirect_uri.to_owned(),
        scope,
        state: st.map(str::to_owned),
        nonce: nonce.map(str::to_owned),
        code_challenge: challenge.to_owned(),
        csrf: crypto::sha256_hex(&csrf),
    };
    let form = match tokens.sign_login_form(&claims) {
        Ok(f) => f,
        Err(e) => {
            tracing::error!(error = %e, "cannot sign the login form");
            return fail("server_error", "the server cannot sign in users right now");
        }
    };
    let cookie = format!(
        "{CSRF_COOKIE}={csrf}; Path={}; Max-Age={}; HttpOnly; SameSite=Lax{}",
        tokens.public_path("/authorize"),
        state.settings.login_form_ttl_s,
        if tokens.issuer.starts_with("https://") {
            "; Secure"
        } else {
            ""
        }
    );
    let mut r = HttpResponse::Ok();
    r.insert_header(("Set-Cookie", cookie));
    login_page(
        r,
        &state,
        &client,
        &claims,
        &form,
        p.get("login_hint"),
        None,
    )
}

fn login_page(
    mut r: actix_web::HttpResponseBuilder,
    state: &AppState,
    client: &ClientRecord,
    claims: &LoginFormClaims,
    form: &str,
    username: Option<&str>,
    error: Option<&str>,
) -> HttpResponse {
    security_headers(&mut r, origin_of(&claims.redirect_uri).as_deref());
    let app = client.name.as_deref().unwrap_or(&client.client_id);
    let error = error
        .map(|e| format!("<p class=\"error\" role=\"alert\">{}</p>", escape(e)))
        .unwrap_or_default();
    let body = format!(
        r#"<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in to AurumAI</title>
<style>body{{font-family:sans-serif;max-width:22rem;margin:4rem auto}}label,input,button{{display:block;width:100%;margin:.4rem 0}}.error{{color:#b00}}</style>
</head>
<body>
<h1>Sign in</h1>
<p>to continue to {app}</p>
{error}
<form method="post" action="{action}">
<input type="hidden" name="request" value="{form}">
<label for="username">Username</label>
<input id="username" name="username" autocomplete="username" required value="{username}">
<label for="password">Password</label>
<input id="password" name="password" type="password" autocomplete="current-password" required>
<button type="submit">Sign in</button>
</form>
{federation}</body>
</html>
"#,
        app = escape(app),
        action = escape(&state.tokens.public_path("/authorize/login")),
        form = escape(form),
        username = escape(username.unwrap_or("")),
        federation = state
            .federation
            .login_links(&state.tokens.public_path("/authorize/federation"), form),
    );
    r.content_type("text/html; charset=utf-8").body(body)
}

/// Why a sign-in attempt failed (the user sees one generic message for all of them).
enum Refusal {
    Wrong,
    Locked,
    /// Storage failed: a retry-later page, not a sign-in error.
    Unavailable,
}

pub async fn login(state: web::Data<AppState>, req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let p = match Params::parse(&body) {
        Ok(p) => p,
        Err(_) => return error_page(StatusCode::BAD_REQUEST, "The sign-in form is invalid."),
    };
    let (Some(form), Some(username)) = (p.get("request"), p.get("username")) else {
        return error_page(StatusCode::BAD_REQUEST, "The sign-in form is incomplete.");
    };
    let password = p.get("password").unwrap_or("");
    let claims = match state.tokens.verify_login_form(form).await {
        Ok(c) => c,
        Err(e) => {
            tracing::info!(error = %e, "login form refused");
            return error_page(
                StatusCode::BAD_REQUEST,
                "This sign-in form has expired or is invalid. Go back to the application and start again.",
            );
        }
    };
    let csrf_ok = cookie(&req, CSRF_COOKIE).is_some_and(|c| {
        crypto::constant_time_eq(crypto::sha256_hex(&c).as_bytes(), claims.csrf.as_bytes())
    });
    if !csrf_ok {
        return error_page(
            StatusCode::FORBIDDEN,
            "The sign-in form does not belong to this browser session. Start again from the application.",
        );
    }
    let client = match state.clients.client(&claims.client_id).await {
        Ok(Some(c)) if c.redirect_uris.contains(&claims.redirect_uri) => c,
        Ok(_) => return error_page(StatusCode::BAD_REQUEST, "Unknown client."),
        Err(e) => {
            tracing::error!(error = %e, "storage failed");
            return error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "The service is unavailable; retry later.",
            );
        }
    };
    let origin = Origin::of(&req, &state.settings.trusted_proxies);
    let user = match check_credentials(&state, username, password, &origin).await {
        Ok(u) => u,
        Err(Refusal::Unavailable) => {
            return error_page(
                StatusCode::SERVICE_UNAVAILABLE,
                "The service is unavailable; retry later.",
            )
        }
        Err(refusal) => {
            let (status, message) = match refusal {
                Refusal::Wrong => (StatusCode::UNAUTHORIZED, "Invalid username or password."),
                Refusal::Locked | Refusal::Unavailable => (
                    StatusCode::TOO_MANY_REQUESTS,
                    "Too many failed sign-in attempts. Try again later.",
                ),
            };
            return login_page(
                HttpResponse::build(status),
                &state,
                &client,
                &claims,
                form,
                Some(username),
                Some(message),
            );
        }
    };
    let fail = |error: &str, description: &str| {
        redirect_error(
            &state.tokens,
            &claims.redirect_uri,
            claims.state.as_deref(),
            error,
            description,
        )
    };
    if client.tenant.as_ref().is_some_and(|t| *t != user.tenant) {
        return fail(
            "access_denied",
            "this application belongs to another tenant",
        );
    }
    let code = crypto::random_token();
    let now = Utc::now();
    let record = AuthorizationCode {
        code_hash: crypto::sha256_hex(&code),
        client_id: client.client_id.clone(),
        user_id: user.id,
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
        return fail("temporarily_unavailable", "retry later");
    }
    let mut params = vec![
        ("code", code.as_str()),
        ("iss", state.tokens.issuer.as_str()),
    ];
    if let Some(s) = claims.state.as_deref() {
        params.push(("state", s));
    }
    redirect_with(&claims.redirect_uri, &params)
}

/// Checks a username and password under brute-force protection, recording what happened.
async fn check_credentials(
    state: &AppState,
    username: &str,
    password: &str,
    origin: &Origin,
) -> Result<UserRecord, Refusal> {
    let unavailable = |e: aurum_ports::StoreError| {
        tracing::error!(error = %e, "storage failed");
        Refusal::Unavailable
    };
    let username: String = username.chars().take(200).collect();
    let ip = origin.ip.as_deref();
    let user = match state.users.user_by_username(&username).await {
        Ok(u) => u.filter(|u| u.anonymised_at.is_none()),
        Err(e) => return Err(unavailable(e)),
    };
    // The account's own name, never what was typed: a failed sign-in's "username" is at times
    // a password typed into the wrong field.
    let subject = Subject {
        tenant: user.as_ref().map(|u| u.tenant.as_str().to_owned()),
        user_id: user.as_ref().map(|u| u.id),
        username: user.as_ref().map(|u| u.username.clone()),
        client_id: None,
    };
    let account = match &user {
        Some(u) => Account::Known(u.id),
        None => Account::Unknown(&username),
    };
    match state.brute_force.locked_until(account, ip).await {
        Ok(Some(_)) => {
            state
                .events
                .record(EventKind::LoginLocked, subject, origin)
                .await;
            return Err(Refusal::Locked);
        }
        Ok(None) => {}
        Err(e) => return Err(unavailable(e)),
    }
    let candidate = password.to_owned();
    let hash = user
        .as_ref()
        .filter(|u| !u.disabled)
        .and_then(|u| u.password_hash.clone());
    let ok = state
        .hashes
        .run(move || match hash {
            Some(h) => crypto::verify_secret(&candidate, &h),
            None => {
                crypto::verify_against_dummy(&candidate);
                false
            }
        })
        .await
        .map_err(|_| Refusal::Unavailable)?;
    match (ok, user) {
        (true, Some(user)) => {
            if let Err(e) = state.brute_force.succeeded(user.id, ip).await {
                tracing::warn!(error = %e, "cannot clear failed sign-ins");
            }
            state
                .events
                .record(EventKind::LoginSucceeded, subject, origin)
                .await;
            Ok(user)
        }
        _ => {
            state
                .events
                .record(EventKind::LoginFailed, subject.clone(), origin)
                .await;
            match state.brute_force.failed(account, ip).await {
                Ok(Some(_)) => {
                    state
                        .events
                        .record(EventKind::LoginLocked, subject, origin)
                        .await;
                }
                Ok(None) => {}
                Err(e) => tracing::warn!(error = %e, "cannot count a failed sign-in"),
            }
            Err(Refusal::Wrong)
        }
    }
}
