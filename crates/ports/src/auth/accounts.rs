//! What the auth service needs from storage: users, OAuth clients, signing keys, grants
//! (authorization codes, refresh tokens, revoked access tokens), brute-force state and
//! security events.
//!
//! Secrets never reach a store in the clear: passwords and client secrets arrive as argon2id
//! hashes, codes and refresh tokens as SHA-256 digests.

use async_trait::async_trait;
use aurum_domain::{Role, TenantId};
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::StoreError;

/// A person who signs in. Anonymised users keep their id (audit references stay valid) but
/// lose every personal field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UserRecord {
    pub id: Uuid,
    pub tenant: TenantId,
    pub username: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub roles: Vec<Role>,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub anonymised_at: Option<DateTime<Utc>>,
    /// The argon2id PHC string; `None` once anonymised. Never serialised.
    #[serde(skip)]
    pub password_hash: Option<String>,
}

#[derive(Debug, Clone)]
pub struct NewUser {
    pub id: Uuid,
    pub tenant: TenantId,
    pub username: String,
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub password_hash: String,
    pub roles: Vec<Role>,
}

/// A partial update; `None` leaves a field alone. `Some(None)` clears an optional field.
#[derive(Debug, Clone, Default)]
pub struct UserPatch {
    pub display_name: Option<Option<String>>,
    pub email: Option<Option<String>>,
    pub roles: Option<Vec<Role>>,
    pub disabled: Option<bool>,
    pub password_hash: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CreateOutcome {
    Created,
    /// The username (or client id) is taken.
    Taken,
}

#[async_trait]
pub trait UserStore: Send + Sync + std::fmt::Debug {
    async fn create_user(&self, user: &NewUser) -> Result<CreateOutcome, StoreError>;
    async fn user(&self, id: Uuid) -> Result<Option<UserRecord>, StoreError>;
    /// Usernames are unique across tenants, compared case-insensitively.
    async fn user_by_username(&self, username: &str) -> Result<Option<UserRecord>, StoreError>;
    /// The tenant's users that are not anonymised, by username.
    async fn users_of(&self, tenant: &TenantId) -> Result<Vec<UserRecord>, StoreError>;
    async fn count_users_of(&self, tenant: &TenantId) -> Result<i64, StoreError>;
    /// Applies `patch`; `None` when no such user.
    async fn update_user(
        &self,
        id: Uuid,
        patch: &UserPatch,
    ) -> Result<Option<UserRecord>, StoreError>;
    /// Replaces personal data (username, name, email, hash), disables the account, revokes its
    /// refresh tokens and scrubs network details from its security events. `false` when no
    /// such user.
    async fn anonymise_user(
        &self,
        id: Uuid,
        replacement_username: &str,
    ) -> Result<bool, StoreError>;
}

/// Grant types a client may use.
pub const GRANT_TYPES: [&str; 3] = ["authorization_code", "refresh_token", "client_credentials"];

/// An OAuth client: an application users sign in to, or a service with its own credentials.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ClientRecord {
    pub client_id: String,
    /// The argon2id PHC string of the secret; `None` for public clients. Never serialised.
    #[serde(skip)]
    pub secret_hash: Option<String>,
    /// `None` for platform service clients.
    pub tenant: Option<TenantId>,
    pub owner: Option<Uuid>,
    pub name: Option<String>,
    pub redirect_uris: Vec<String>,
    pub post_logout_redirect_uris: Vec<String>,
    pub grant_types: Vec<String>,
    pub audiences: Vec<String>,
    pub roles: Vec<Role>,
    /// Created from configuration (re-applied at each start) rather than through the API.
    pub seeded: bool,
    pub created_at: DateTime<Utc>,
}

impl ClientRecord {
    pub fn is_public(&self) -> bool {
        self.secret_hash.is_none()
    }

    pub fn allows_grant(&self, grant: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant)
    }
}

#[async_trait]
pub trait ClientStore: Send + Sync + std::fmt::Debug {
    async fn create_client(&self, client: &ClientRecord) -> Result<CreateOutcome, StoreError>;
    /// Creates or replaces a client from configuration.
    async fn upsert_client(&self, client: &ClientRecord) -> Result<(), StoreError>;
    async fn client(&self, client_id: &str) -> Result<Option<ClientRecord>, StoreError>;
    async fn clients_of(&self, tenant: &TenantId) -> Result<Vec<ClientRecord>, StoreError>;
    async fn clients_owned_by(&self, user: Uuid) -> Result<Vec<ClientRecord>, StoreError>;
    /// Deletes the client with its codes and refresh tokens. `false` when no such client.
    async fn delete_client(&self, client_id: &str) -> Result<bool, StoreError>;
}

/// A token signing key. Published in the JWKS until `expires_at`; used for signing while it
/// is the newest key whose `retire_after` has not passed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SigningKeyRecord {
    pub kid: String,
    pub algorithm: String,
    /// The private key as stored: PEM, or an encrypted envelope of it.
    pub private_key: String,
    pub public_jwk: serde_json::Value,
    pub created_at: DateTime<Utc>,
    pub retire_after: Option<DateTime<Utc>>,
    pub expires_at: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait SigningKeyStore: Send + Sync + std::fmt::Debug {
    /// Stores `key` and retires every older key still signing: they stop signing now and
    /// stay published until `old_keys_expire_at`.
    async fn add_key(
        &self,
        key: &SigningKeyRecord,
        old_keys_expire_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Keys not yet expired at `now`, newest first.
    async fn published_keys(&self, now: DateTime<Utc>)
        -> Result<Vec<SigningKeyRecord>, StoreError>;
}

/// An issued authorization code (by its digest), bound to the request that asked for it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizationCode {
    pub code_hash: String,
    pub client_id: String,
    pub user_id: Uuid,
    pub redirect_uri: String,
    pub scope: String,
    pub nonce: Option<String>,
    pub code_challenge: String,
    pub session_id: Uuid,
    pub auth_time: DateTime<Utc>,
    /// The refresh-token family the exchange starts; a replayed code revokes it.
    pub family_id: Uuid,
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CodeRedemption {
    /// First use: the code, now spent.
    Redeemed(AuthorizationCode),
    /// The code was spent before: its grant must be revoked.
    Replayed(AuthorizationCode),
    Unknown,
}

/// A refresh token (by its digest). Rotation spends it and issues a successor in the same
/// family; presenting a spent one again revokes the family.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RefreshTokenRecord {
    #[serde(skip)]
    pub token_hash: String,
    pub family_id: Uuid,
    pub client_id: String,
    pub user_id: Uuid,
    pub session_id: Uuid,
    pub scope: String,
    pub auth_time: DateTime<Utc>,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub rotated_at: Option<DateTime<Utc>>,
    pub revoked_at: Option<DateTime<Utc>>,
}

/// What a revocation feed entry covers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationKind {
    /// One access token, by `jti`.
    Token,
    /// Every token of a subject (`sub`) issued up to an instant: a disabled or erased user.
    Subject,
    /// Every token of a sign-in session (`sid`) issued up to an instant: a logout.
    Session,
}

impl RevocationKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RevocationKind::Token => "token",
            RevocationKind::Subject => "subject",
            RevocationKind::Session => "session",
        }
    }
}

/// One entry of the revocation feed the resource servers follow.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RevocationEntry {
    pub seq: i64,
    pub kind: RevocationKind,
    pub value: String,
    pub issued_before: Option<DateTime<Utc>>,
    /// When every token the entry covers has expired.
    pub expires_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RefreshRotation {
    /// The presented token, now spent; its successor was stored.
    Rotated(RefreshTokenRecord),
    /// The token was spent before (or its family revoked): the family is now revoked.
    Reused(RefreshTokenRecord),
    /// Unknown or expired.
    Invalid,
}

#[async_trait]
pub trait GrantStore: Send + Sync + std::fmt::Debug {
    async fn put_code(&self, code: &AuthorizationCode) -> Result<(), StoreError>;
    /// Spends a code, exactly once across replicas.
    async fn redeem_code(
        &self,
        code_hash: &str,
        now: DateTime<Utc>,
    ) -> Result<CodeRedemption, StoreError>;
    async fn put_refresh(&self, token: &RefreshTokenRecord) -> Result<(), StoreError>;
    async fn refresh(&self, token_hash: &str) -> Result<Option<RefreshTokenRecord>, StoreError>;
    /// Spends `token_hash` and stores `successor` (same family) atomically; a spent or
    /// revoked token revokes its whole family instead.
    async fn rotate_refresh(
        &self,
        token_hash: &str,
        successor: &RefreshTokenRecord,
        now: DateTime<Utc>,
    ) -> Result<RefreshRotation, StoreError>;
    /// Revokes every token of a family; returns how many were still live.
    async fn revoke_family(&self, family_id: Uuid) -> Result<u64, StoreError>;
    async fn revoke_session(&self, session_id: Uuid) -> Result<u64, StoreError>;
    async fn revoke_user_tokens(&self, user_id: Uuid) -> Result<u64, StoreError>;
    /// Refresh token metadata of a user (for the personal-data export), newest first.
    async fn refresh_tokens_of(&self, user_id: Uuid)
        -> Result<Vec<RefreshTokenRecord>, StoreError>;
    /// Marks an access token revoked until it expires anyway.
    async fn revoke_access_token(
        &self,
        jti: &str,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    async fn access_token_revoked(&self, jti: &str) -> Result<bool, StoreError>;
    /// Adds an entry to the revocation feed (subjects and sessions; a revoked access token
    /// gets its entry from `revoke_access_token`).
    async fn record_revocation(
        &self,
        kind: RevocationKind,
        value: &str,
        issued_before: Option<DateTime<Utc>>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// The feed's unexpired entries after `after`, oldest first, at most `limit`.
    async fn revocations_after(
        &self,
        after: i64,
        now: DateTime<Utc>,
        limit: i64,
    ) -> Result<Vec<RevocationEntry>, StoreError>;
    /// Deletes expired codes, refresh tokens and revocations; returns the rows removed.
    async fn purge_expired(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;
}

/// Failed sign-in state of one key (`user:<name>` or `ip:<address>`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoginAttemptState {
    pub failures: i32,
    pub locked_until: Option<DateTime<Utc>>,
}

#[async_trait]
pub trait LoginAttemptStore: Send + Sync + std::fmt::Debug {
    async fn attempt_state(&self, key: &str) -> Result<Option<LoginAttemptState>, StoreError>;
    /// Counts a failure (the count restarts when the last failure is older than
    /// `window_start`) and stores the lock `lock` computes from the new count.
    async fn record_failure(
        &self,
        key: &str,
        now: DateTime<Utc>,
        window_start: DateTime<Utc>,
        lock: &(dyn Fn(i32) -> Option<DateTime<Utc>> + Sync),
    ) -> Result<LoginAttemptState, StoreError>;
    async fn clear_failures(&self, key: &str) -> Result<(), StoreError>;
}

/// A security-relevant event, kept for the person it concerns and for operators. Never holds
/// a password, secret or token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecurityEventRecord {
    pub at: DateTime<Utc>,
    pub event: String,
    pub tenant: Option<String>,
    pub user_id: Option<Uuid>,
    pub username: Option<String>,
    pub client_id: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
}

#[async_trait]
pub trait SecurityEventStore: Send + Sync + std::fmt::Debug {
    async fn record_event(&self, event: &SecurityEventRecord) -> Result<(), StoreError>;
    async fn events_about(&self, user_id: Uuid) -> Result<Vec<SecurityEventRecord>, StoreError>;
}
