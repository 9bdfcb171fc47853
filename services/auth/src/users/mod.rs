//! Users: the first administrator, password rules, anonymisation (GDPR erasure).

pub mod routes;

use aurum_domain::{Role, TenantId};
use aurum_http::Problem;
use aurum_ports::auth::{CreateOutcome, NewUser};
use aurum_ports::StoreError;
use secrecy::ExposeSecret;
use uuid::Uuid;

use crate::app::AppState;
use crate::config::BootstrapAdmin;
use crate::crypto;
use crate::security_events::{EventKind, Origin, Subject};

#[derive(Debug, thiserror::Error)]
pub enum BootstrapError {
    #[error("invalid tenant: {0}")]
    Tenant(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Hash(#[from] crypto::HashError),
    #[error("the username {0} is taken by another tenant's user")]
    Taken(String),
}

/// A storage failure as the caller sees it: the cause is logged, never sent.
pub(crate) fn store_problem(e: &StoreError) -> Problem {
    Problem::store(e, "an account request")
}

/// Creates the configured administrator when its tenant has no user yet. `true` if created.
pub async fn bootstrap_admin(state: &AppState, a: &BootstrapAdmin) -> Result<bool, BootstrapError> {
    let tenant = TenantId::parse(&a.tenant).map_err(|e| BootstrapError::Tenant(e.to_string()))?;
    if state.users.count_users_of(&tenant).await? > 0 {
        return Ok(false);
    }
    let user = NewUser {
        id: Uuid::new_v4(),
        tenant: tenant.clone(),
        username: a.username.clone(),
        display_name: Some("Administrator".into()),
        email: None,
        password_hash: crypto::hash_secret(a.password.expose_secret())?,
        roles: vec![if a.platform_admin {
            Role::PlatformAdmin
        } else {
            Role::Admin
        }],
    };
    match state.users.create_user(&user).await? {
        CreateOutcome::Created => {
            state
                .events
                .record(
                    EventKind::UserCreated,
                    Subject {
                        tenant: Some(tenant.as_str().to_owned()),
                        user_id: Some(user.id),
                        username: Some(user.username.clone()),
                        client_id: None,
                    },
                    &Origin::default(),
                )
                .await;
            tracing::info!(tenant = %tenant.as_str(), "bootstrap administrator created");
            Ok(true)
        }
        CreateOutcome::Taken => Err(BootstrapError::Taken(a.username.clone())),
    }
}

/// Usernames: 1 to 200 printable characters without whitespace.
pub fn check_username(u: &str) -> Result<(), String> {
    let ok = !u.is_empty()
        && u.chars().count() <= 200
        && u.chars().all(|c| !c.is_control() && !c.is_whitespace());
    ok.then_some(())
        .ok_or_else(|| "username: 1 to 200 printable characters without spaces".into())
}

/// A username as a tenant's admin creates it: `<name>@<tenant>`, a bare name qualified with
/// the caller's tenant. Usernames are unique across tenants (sign-in asks for a username only),
/// so a name any tenant could pick would tell by its conflict that another tenant has it; a
/// name carrying the tenant can only conflict within that tenant.
pub fn tenant_username(typed: &str, tenant: &TenantId) -> Result<String, String> {
    check_username(typed)?;
    let qualified = match typed.rsplit_once('@') {
        None => format!("{typed}@{tenant}"),
        Some((name, domain))
            if !name.is_empty() && domain.eq_ignore_ascii_case(tenant.as_str()) =>
        {
            format!("{name}@{tenant}")
        }
        Some(_) => {
            return Err(format!(
                "username: <name>@{tenant}, or a bare name, which becomes one"
            ))
        }
    };
    check_username(&qualified).map(|()| qualified)
}

pub fn check_password(p: &str, min_len: usize) -> Result<(), String> {
    let n = p.chars().count();
    if n < min_len {
        return Err(format!("password must be at least {min_len} characters"));
    }
    if n > 1024 {
        return Err("password must be at most 1024 characters".into());
    }
    Ok(())
}

/// Erases a user's personal data (keeps the id), revokes their tokens, logs it.
pub async fn anonymise(
    state: &AppState,
    id: Uuid,
    by: Subject,
    origin: &Origin,
) -> Result<bool, StoreError> {
    let replacement = format!("deleted-{}", id.simple());
    let done = state.users.anonymise_user(id, &replacement).await?;
    if done {
        // Its access tokens too, at every resource server.
        crate::oidc::revocations::revoke_access_of(
            state,
            aurum_ports::auth::RevocationKind::Subject,
            &id.to_string(),
        )
        .await?;
        let mut who = by;
        who.user_id = Some(id);
        who.username = None;
        state
            .events
            .record(EventKind::UserAnonymised, who, origin)
            .await;
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::tenant_username;
    use aurum_domain::TenantId;
    use proptest::prelude::*;

    fn acme() -> TenantId {
        TenantId::parse("acme").unwrap_or_else(|_| unreachable!())
    }

    #[test]
    fn a_bare_name_takes_the_tenant_and_another_tenants_name_is_refused() {
        assert_eq!(tenant_username("olga", &acme()).as_deref(), Ok("olga@acme"));
        assert_eq!(
            tenant_username("olga@ACME", &acme()).as_deref(),
            Ok("olga@acme")
        );
        assert!(tenant_username("olga@globex", &acme()).is_err());
        assert!(tenant_username("olga@example.com", &acme()).is_err());
        assert!(tenant_username("@acme", &acme()).is_err());
        assert!(tenant_username("", &acme()).is_err());
    }

    proptest! {
        /// Whatever is typed, what is created ends in the caller's tenant: it cannot collide
        /// with a name of another tenant.
        #[test]
        fn every_created_name_ends_in_the_callers_tenant(typed in "\\PC{0,40}") {
            if let Ok(name) = tenant_username(&typed, &acme()) {
                prop_assert!(name.ends_with("@acme"), "{name}");
                prop_assert!(name.chars().count() <= 200);
            }
        }
    }
}
