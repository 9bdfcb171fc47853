//! The auth service's OpenID Connect endpoints, public under [`OIDC_PREFIX`]: browsers and
//! clients sign in through the gateway, the only public entry, so the platform's issuer is
//! `https://<gateway host>/auth`. An explicit allow-list: `/auth/token` reaches auth's
//! `/token`; anything else below `/auth` (auth's `/v1` API above all) is 404 here.
//!
//! No token is checked (these endpoints are how tokens are obtained; the auth service
//! authenticates clients and users itself), nothing is audited (no tenant). Each call counts
//! against the client address's anonymous limit (`rate_limit.per_ip_anonymous`).

use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use aurum_http::Problem;

use crate::rate_limit::{add_headers, too_many};
use crate::routes::handler::GatewayState;
use crate::routes::Method;
use crate::security_headers::UpstreamPolicy;

/// Where the auth service's OpenID Connect endpoints are public on the gateway. The auth
/// service's `auth.issuer` is the gateway's public URL with this path.
pub const OIDC_PREFIX: &str = "/auth";

/// One passed-through endpoint: `path` is the auth service's own (and the public one below
/// [`OIDC_PREFIX`]). `{provider}` segments are federation provider ids.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OidcRoute {
    pub method: Method,
    pub path: &'static str,
    pub summary: &'static str,
}

impl OidcRoute {
    pub fn public_path(&self) -> String {
        format!("{OIDC_PREFIX}{}", self.path)
    }

    /// The auth service's path for a matched request: each `{name}` segment replaced by the
    /// request's value, which must be a provider id (`[a-z0-9][a-z0-9_-]{0,63}`).
    pub fn upstream_path(&self, req: &HttpRequest) -> Option<String> {
        let mut out = String::with_capacity(self.path.len() + 16);
        for segment in self.path.split('/').skip(1) {
            out.push('/');
            match segment.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                Some(name) => {
                    let value = req.match_info().get(name).filter(|v| is_provider_id(v))?;
                    out.push_str(value);
                }
                None => out.push_str(segment),
            }
        }
        Some(out)
    }
}

/// The auth service's federation provider ids.
fn is_provider_id(v: &str) -> bool {
    let b = v.as_bytes();
    (1..=64).contains(&b.len())
        && (b[0].is_ascii_lowercase() || b[0].is_ascii_digit())
        && b.iter()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || *c == b'_' || *c == b'-')
}

const fn r(method: Method, path: &'static str, summary: &'static str) -> OidcRoute {
    OidcRoute {
        method,
        path,
        summary,
    }
}

/// Every method and path of the auth service's OpenID Connect and federation surface.
pub const OIDC_ROUTES: &[OidcRoute] = &[
    r(
        Method::Get,
        "/.well-known/openid-configuration",
        "OpenID Connect discovery",
    ),
    r(
        Method::Get,
        "/.well-known/oauth-authorization-server",
        "OAuth 2.0 authorization server metadata (RFC 8414)",
    ),
    r(Method::Get, "/jwks", "The issuer's signing keys"),
    r(
        Method::Get,
        "/authorize",
        "Authorization code flow (PKCE S256): the login page",
    ),
    r(Method::Post, "/authorize/login", "The login form's target"),
    r(
        Method::Get,
        "/authorize/federation/{provider}",
        "Sign in with an upstream identity provider",
    ),
    r(
        Method::Get,
        "/federation/{provider}/callback",
        "Back from the upstream identity provider",
    ),
    r(
        Method::Post,
        "/token",
        "Tokens: authorization_code, refresh_token, client_credentials",
    ),
    r(Method::Get, "/userinfo", "Claims of the token's user"),
    r(Method::Post, "/userinfo", "Claims of the token's user"),
    r(Method::Post, "/revoke", "Token revocation (RFC 7009)"),
    r(
        Method::Post,
        "/introspect",
        "Token introspection (RFC 7662)",
    ),
    r(
        Method::Get,
        "/logout",
        "End the session (RP-initiated logout)",
    ),
];

/// Serves `OIDC_ROUTES[index]`: the client address's limit, the body limit, then the auth
/// service's answer.
pub async fn passthrough(
    req: HttpRequest,
    payload: web::Payload,
    state: web::Data<GatewayState>,
    index: usize,
) -> HttpResponse {
    let Some(route) = OIDC_ROUTES.get(index) else {
        return Problem::internal().error_response();
    };
    let allowance = match &state.limits {
        Some(l) => match l.check_ip(&req) {
            Ok(a) => Some(a),
            Err(limited) => return too_many(&limited),
        },
        None => None,
    };
    let mut res = match route.upstream_path(&req) {
        None => not_found(&req),
        Some(path) => match aurum_http::read_body(&req, payload, state.body_limit).await {
            Err(problem) => problem.error_response(),
            Ok(body) => {
                let mut res = state.proxy.pass_through(&req, &path, body).await;
                res.extensions_mut().insert(UpstreamPolicy);
                res
            }
        },
    };
    if let Some(a) = &allowance {
        add_headers(&mut res, a);
    }
    res
}

/// Anything else below the prefix: 404 without asking the auth service (its `/v1` API is
/// reached only through `/api/v1`, with the gateway's checks), under the same address limit.
pub async fn unknown(req: HttpRequest, state: web::Data<GatewayState>) -> HttpResponse {
    if let Some(l) = &state.limits {
        if let Err(limited) = l.check_ip(&req) {
            return too_many(&limited);
        }
    }
    not_found(&req)
}

fn not_found(req: &HttpRequest) -> HttpResponse {
    Problem::not_found(format!("no route {} {}", req.method(), req.path())).error_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn the_allow_list_is_unique_and_never_reaches_the_v1_api() {
        let mut seen = HashSet::new();
        for r in OIDC_ROUTES {
            assert!(r.path.starts_with('/'), "{r:?}");
            assert!(!r.path.starts_with("/v1"), "{r:?}");
            assert!(seen.insert((r.method, r.path)), "duplicate {r:?}");
        }
    }

    #[test]
    fn provider_ids_are_plain() {
        for ok in ["keycloak", "entra", "a", "g00gle_x-1"] {
            assert!(is_provider_id(ok), "{ok}");
        }
        for bad in ["", "..", "Keycloak", "-x", "a/b", "a%2Fb", &"x".repeat(65)] {
            assert!(!is_provider_id(bad), "{bad}");
        }
    }
}
