//! `GET /revocations?after=<seq>`: the revocation feed the resource servers follow (the
//! gateway, ingestion and prediction verify tokens themselves, so a revoked token must reach
//! them, not only this service). Public like the JWKS: a revocation list names opaque ids
//! only (token ids, user ids, session ids), never who they are.
//!
//! What enters the feed: a revoked access token (`/revoke`), a sign-in session ended
//! (`/logout`), a user disabled, given a new password or erased (every token of theirs issued
//! until then). See [`revoke_access_of`].

use actix_web::{web, HttpResponse};
use aurum_ports::auth::RevocationKind;
use aurum_ports::StoreError;
use chrono::{TimeDelta, Utc};
use serde::Deserialize;
use serde_json::json;

use crate::app::AppState;
use crate::oidc::error::OAuthError;

/// Entries per page; a follower that is behind asks again.
const PAGE: i64 = 1_000;

#[derive(Debug, Deserialize)]
pub struct FeedQuery {
    #[serde(default)]
    after: i64,
}

pub async fn feed(
    state: web::Data<AppState>,
    query: web::Query<FeedQuery>,
) -> Result<HttpResponse, OAuthError> {
    let entries = state
        .grants
        .revocations_after(query.after.max(0), Utc::now(), PAGE)
        .await
        .map_err(|e| OAuthError::store(&e))?;
    let entries: Vec<_> = entries
        .iter()
        .map(|e| {
            json!({
                "seq": e.seq,
                "kind": e.kind.as_str(),
                "value": e.value,
                "issued_before": e.issued_before,
                "expires_at": e.expires_at,
            })
        })
        .collect();
    Ok(HttpResponse::Ok()
        .insert_header(("Cache-Control", "no-store"))
        .json(json!({ "entries": entries })))
}

/// Revokes every access token of a subject or a session issued until now, at the resource
/// servers too. The entry lives as long as the longest token it can cover.
pub async fn revoke_access_of(
    state: &AppState,
    kind: RevocationKind,
    value: &str,
) -> Result<(), StoreError> {
    let now = Utc::now();
    let lifetime = state.settings.access_token_ttl_s + state.settings.leeway_s + 60;
    let until = now
        + i64::try_from(lifetime)
            .ok()
            .and_then(TimeDelta::try_seconds)
            .unwrap_or(TimeDelta::days(1));
    state
        .grants
        .record_revocation(kind, value, Some(now), until)
        .await
}
