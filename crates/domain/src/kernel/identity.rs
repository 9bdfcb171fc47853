//! Who may do what: the roles within a tenant, and the platform operator's above them.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A person's role within one tenant. Each role includes the rights of the ones below it:
/// `platform_admin` ⊇ `admin` ⊇ `operator` ⊇ `viewer`.
///
/// `platform_admin` is not a tenant's to give: it changes what every tenant shares (the model
/// registry, the emission-factor library, the token signing keys), so only the auth service's
/// own configuration grants it, never a tenant admin through the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Reads the tenant's machines, telemetry, predictions, alerts and reports.
    Viewer,
    /// Also acts on them: registers machines, sends telemetry, handles alerts, provisions devices.
    Operator,
    /// Also manages the tenant: users, clients, devices, site regions, the audit log.
    Admin,
    /// The platform operator: also what all tenants share (models, emission factors, signing
    /// keys). Still acts on tenant data of its own tenant only.
    #[serde(rename = "platform_admin")]
    PlatformAdmin,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role {0:?}; expected admin, operator or viewer (or platform_admin)")]
pub struct UnknownRole(pub String);

impl Role {
    /// The roles a tenant admin may give.
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
            Role::PlatformAdmin => "platform_admin",
        }
    }

    /// True for the roles a tenant admin may give (all but the platform operator's).
    pub fn is_tenant_role(self) -> bool {
        self <= Role::Admin
    }

    /// True when this role carries at least the rights of `required`.
    pub fn grants(self, required: Role) -> bool {
        self >= required
    }

    /// The strongest of a set of roles, if any.
    pub fn highest(roles: &[Role]) -> Option<Role> {
        roles.iter().copied().max()
    }
}

impl FromStr for Role {
    type Err = UnknownRole;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "viewer" => Ok(Role::Viewer),
            "operator" => Ok(Role::Operator),
            "admin" => Ok(Role::Admin),
            "platform_admin" => Ok(Role::PlatformAdmin),
            other => Err(UnknownRole(other.to_owned())),
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_role_includes_the_ones_below_it() {
        assert!(Role::Admin.grants(Role::Operator));
        assert!(Role::Admin.grants(Role::Viewer));
        assert!(Role::Operator.grants(Role::Viewer));
        assert!(!Role::Viewer.grants(Role::Operator));
        assert!(!Role::Operator.grants(Role::Admin));
        assert!(Role::PlatformAdmin.grants(Role::Admin));
        assert!(!Role::Admin.grants(Role::PlatformAdmin));
    }

    #[test]
    fn the_platform_operator_is_not_a_tenant_role() {
        assert!(Role::ALL.iter().all(|r| r.is_tenant_role()));
        assert!(!Role::PlatformAdmin.is_tenant_role());
    }

    #[test]
    fn roles_round_trip_through_text_and_json() {
        for role in Role::ALL.into_iter().chain([Role::PlatformAdmin]) {
            assert_eq!(role.as_str().parse::<Role>(), Ok(role));
            let json = serde_json::to_string(&role).unwrap_or_default();
            assert_eq!(json, format!("\"{role}\""));
        }
        assert!("root".parse::<Role>().is_err());
        assert_eq!(
            Role::highest(&[Role::Viewer, Role::Admin]),
            Some(Role::Admin)
        );
        assert_eq!(Role::highest(&[]), None);
    }
}
