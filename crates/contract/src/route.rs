//! What a route declaration holds.

use std::fmt;

use aurum_domain::Role;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    Get,
    Post,
    Put,
    Patch,
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }

    /// The method of a request, if it is one routes are declared for.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Method::Get,
            Method::Post,
            Method::Put,
            Method::Patch,
            Method::Delete,
        ]
        .into_iter()
        .find(|m| m.as_str() == s)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Access {
    /// A person (or a tenant's client) holding at least this role in the token's tenant; it
    /// acts on that tenant's data only.
    Tenant(Role),
    /// The platform operator (`platform_admin`): what every tenant shares, such as the model
    /// registry and the emission-factor library. Tenant admins are refused.
    Platform,
    /// A platform service client (client_credentials, no tenant) whose token is addressed to
    /// the service itself, e.g. ingestion posting feature batches to prediction. Never public.
    Service,
}

impl Access {
    /// The least role a person needs, `None` for service-only routes.
    pub fn least_role(self) -> Option<Role> {
        match self {
            Access::Tenant(r) => Some(r),
            Access::Platform => Some(Role::PlatformAdmin),
            Access::Service => None,
        }
    }
}

impl fmt::Display for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.least_role() {
            Some(r) => r.fmt(f),
            None => f.write_str("service"),
        }
    }
}

/// One route of a service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    pub method: Method,
    /// Below the service's `/v1` (and the gateway's `/api/v1`), with `{name}` segments.
    pub path: &'static str,
    pub access: Access,
    pub summary: &'static str,
}

impl Route {
    pub const fn new(
        method: Method,
        path: &'static str,
        access: Access,
        summary: &'static str,
    ) -> Self {
        Self {
            method,
            path,
            access,
            summary,
        }
    }

    /// Reachable through the gateway: everything but service-to-service calls.
    pub fn is_public(&self) -> bool {
        self.access != Access::Service
    }
}
