//! Rows as the queries return them, and their conversion into port records.

use std::str::FromStr;

use aurum_domain::{Role, TenantId};
use aurum_ports::auth::{
    AuthorizationCode, ClientRecord, RefreshTokenRecord, SecurityEventRecord, UserRecord,
};
use aurum_ports::StoreError;
use chrono::{DateTime, Utc};
use diesel::sql_types::{Array, Bool, Nullable, Text, Timestamptz};
use diesel::QueryableByName;
use uuid::Uuid;

pub(crate) fn role_names(roles: &[Role]) -> Vec<String> {
    roles.iter().map(|r| r.as_str().to_owned()).collect()
}

fn bad(what: &str, e: impl std::fmt::Display) -> StoreError {
    StoreError::Refused(format!("unreadable {what} in the auth schema: {e}"))
}

pub(crate) fn uuid(s: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(s).map_err(|e| bad("uuid", e))
}

fn roles(names: Vec<String>) -> Result<Vec<Role>, StoreError> {
    names
        .iter()
        .map(|r| Role::from_str(r).map_err(|e| bad("role", e)))
        .collect()
}

fn tenant(s: &str) -> Result<TenantId, StoreError> {
    TenantId::parse(s).map_err(|e| bad("tenant", e))
}

#[derive(QueryableByName)]
pub(crate) struct UserRow {
    #[diesel(sql_type = Text)]
    id: String,
    #[diesel(sql_type = Text)]
    tenant_id: String,
    #[diesel(sql_type = Text)]
    username: String,
    #[diesel(sql_type = Nullable<Text>)]
    display_name: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    email: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    password_hash: Option<String>,
    #[diesel(sql_type = Array<Text>)]
    roles: Vec<String>,
    #[diesel(sql_type = Bool)]
    disabled: bool,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    updated_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    anonymised_at: Option<DateTime<Utc>>,
}

impl UserRow {
    pub(crate) fn into_record(self) -> Result<UserRecord, StoreError> {
        Ok(UserRecord {
            id: uuid(&self.id)?,
            tenant: tenant(&self.tenant_id)?,
            username: self.username,
            display_name: self.display_name,
            email: self.email,
            roles: roles(self.roles)?,
            disabled: self.disabled,
            created_at: self.created_at,
            updated_at: self.updated_at,
            anonymised_at: self.anonymised_at,
            password_hash: self.password_hash,
        })
    }
}

#[derive(QueryableByName)]
pub(crate) struct ClientRow {
    #[diesel(sql_type = Text)]
    client_id: String,
    #[diesel(sql_type = Nullable<Text>)]
    secret_hash: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    tenant_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    owner: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    name: Option<String>,
    #[diesel(sql_type = Array<Text>)]
    redirect_uris: Vec<String>,
    #[diesel(sql_type = Array<Text>)]
    post_logout_redirect_uris: Vec<String>,
    #[diesel(sql_type = Array<Text>)]
    grant_types: Vec<String>,
    #[diesel(sql_type = Array<Text>)]
    audiences: Vec<String>,
    #[diesel(sql_type = Array<Text>)]
    roles: Vec<String>,
    #[diesel(sql_type = Bool)]
    seeded: bool,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
}

impl ClientRow {
    pub(crate) fn into_record(self) -> Result<ClientRecord, StoreError> {
        Ok(ClientRecord {
            client_id: self.client_id,
            secret_hash: self.secret_hash,
            tenant: self.tenant_id.as_deref().map(tenant).transpose()?,
            owner: self.owner.as_deref().map(uuid).transpose()?,
            name: self.name,
            redirect_uris: self.redirect_uris,
            post_logout_redirect_uris: self.post_logout_redirect_uris,
            grant_types: self.grant_types,
            audiences: self.audiences,
            roles: roles(self.roles)?,
            seeded: self.seeded,
            created_at: self.created_at,
        })
    }
}

#[derive(QueryableByName)]
pub(crate) struct CodeRow {
    #[diesel(sql_type = Text)]
    code_hash: String,
    #[diesel(sql_type = Text)]
    client_id: String,
    #[diesel(sql_type = Text)]
    user_id: String,
    #[diesel(sql_type = Text)]
    redirect_uri: String,
    #[diesel(sql_type = Text)]
    scope: String,
    #[diesel(sql_type = Nullable<Text>)]
    nonce: Option<String>,
    #[diesel(sql_type = Text)]
    code_challenge: String,
    #[diesel(sql_type = Text)]
    session_id: String,
    #[diesel(sql_type = Timestamptz)]
    auth_time: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    family_id: String,
    #[diesel(sql_type = Timestamptz)]
    expires_at: DateTime<Utc>,
    #[diesel(sql_type = Bool)]
    pub(crate) was_used: bool,
}

pub(crate) const CODE_COLUMNS: &str = "code_hash, client_id, user_id::text AS user_id, \
    redirect_uri, scope, nonce, code_challenge, session_id::text AS session_id, auth_time, \
    family_id::text AS family_id, expires_at";

impl CodeRow {
    pub(crate) fn into_record(self) -> Result<AuthorizationCode, StoreError> {
        Ok(AuthorizationCode {
            code_hash: self.code_hash,
            client_id: self.client_id,
            user_id: uuid(&self.user_id)?,
            redirect_uri: self.redirect_uri,
            scope: self.scope,
            nonce: self.nonce,
            code_challenge: self.code_challenge,
            session_id: uuid(&self.session_id)?,
            auth_time: self.auth_time,
            family_id: uuid(&self.family_id)?,
            expires_at: self.expires_at,
        })
    }
}

#[derive(QueryableByName)]
pub(crate) struct RefreshRow {
    #[diesel(sql_type = Text)]
    token_hash: String,
    #[diesel(sql_type = Text)]
    family_id: String,
    #[diesel(sql_type = Text)]
    client_id: String,
    #[diesel(sql_type = Text)]
    user_id: String,
    #[diesel(sql_type = Text)]
    session_id: String,
    #[diesel(sql_type = Text)]
    scope: String,
    #[diesel(sql_type = Timestamptz)]
    auth_time: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    created_at: DateTime<Utc>,
    #[diesel(sql_type = Timestamptz)]
    expires_at: DateTime<Utc>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    rotated_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    revoked_at: Option<DateTime<Utc>>,
}

pub(crate) const REFRESH_COLUMNS: &str = "token_hash, family_id::text AS family_id, client_id, \
    user_id::text AS user_id, session_id::text AS session_id, scope, auth_time, created_at, \
    expires_at, rotated_at, revoked_at";

impl RefreshRow {
    pub(crate) fn rotated_at(&self) -> Option<DateTime<Utc>> {
        self.rotated_at
    }

    pub(crate) fn revoked_at(&self) -> Option<DateTime<Utc>> {
        self.revoked_at
    }

    pub(crate) fn expires_at(&self) -> DateTime<Utc> {
        self.expires_at
    }

    /// The family id; a row that does not hold a UUID there gets the nil id, which matches
    /// no family (the store writes only UUIDs).
    pub(crate) fn family(&self) -> Uuid {
        Uuid::parse_str(&self.family_id).unwrap_or(Uuid::nil())
    }

    pub(crate) fn into_record(self) -> Result<RefreshTokenRecord, StoreError> {
        Ok(RefreshTokenRecord {
            token_hash: self.token_hash,
            family_id: uuid(&self.family_id)?,
            client_id: self.client_id,
            user_id: uuid(&self.user_id)?,
            session_id: uuid(&self.session_id)?,
            scope: self.scope,
            auth_time: self.auth_time,
            created_at: self.created_at,
            expires_at: self.expires_at,
            rotated_at: self.rotated_at,
            revoked_at: self.revoked_at,
        })
    }
}

#[derive(QueryableByName)]
pub(crate) struct EventRow {
    #[diesel(sql_type = Timestamptz)]
    at: DateTime<Utc>,
    #[diesel(sql_type = Text)]
    event: String,
    #[diesel(sql_type = Nullable<Text>)]
    tenant_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    user_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    username: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    client_id: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    ip: Option<String>,
    #[diesel(sql_type = Nullable<Text>)]
    user_agent: Option<String>,
}

impl EventRow {
    pub(crate) fn into_record(self) -> Result<SecurityEventRecord, StoreError> {
        Ok(SecurityEventRecord {
            at: self.at,
            event: self.event,
            tenant: self.tenant_id,
            user_id: self.user_id.as_deref().map(uuid).transpose()?,
            username: self.username,
            client_id: self.client_id,
            ip: self.ip,
            user_agent: self.user_agent,
        })
    }
}
