//! Every route of the route table × every kind of caller gives the expected status: what every
//! tenant shares (models, emission factors, signing keys) is refused to the admins of both
//! tenants and served to the platform operator only.

use aurum_domain::Role;
use aurum_gateway::routes::{Method, RouteSpec, ROUTES};
use serde_json::json;

use crate::helpers::{spawn_app, Caller};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Expect {
    Unauthorized,
    Forbidden,
    /// Past the gateway: answered by the service (or the gateway's own handler).
    Through,
}

fn expected(route: &RouteSpec, caller: Caller) -> Expect {
    let role = match caller {
        Caller::NoToken | Caller::Expired | Caller::WrongSignature | Caller::WrongAudience => {
            return Expect::Unauthorized
        }
        Caller::Viewer => Role::Viewer,
        Caller::Operator => Role::Operator,
        Caller::Admin | Caller::OtherTenant => Role::Admin,
        Caller::PlatformAdmin => Role::PlatformAdmin,
    };
    if role >= route.role {
        Expect::Through
    } else {
        Expect::Forbidden
    }
}

fn concrete(path: &str) -> String {
    path.split('/')
        .map(|s| if s.starts_with('{') { "truck-1" } else { s })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_route_and_caller_gets_the_expected_status() {
    let app = spawn_app().await;
    app.register_machine("truck-1").await;
    let mut failures = Vec::new();
    let mut through = 0;
    for route in ROUTES.iter() {
        let path = format!("/api/v1{}", concrete(route.path));
        for caller in Caller::ALL {
            let token = app.token_for(caller);
            let mut req = app.request(route.method.actix_reqwest(), &path, token.as_deref());
            if matches!(route.method, Method::Post | Method::Put | Method::Patch) {
                req = req.json(&json!({}));
            }
            let res = req.send().await.unwrap();
            let status = res.status().as_u16();
            let expect = expected(route, caller);
            let ok = match expect {
                Expect::Unauthorized => {
                    status == 401
                        && res
                            .headers()
                            .get("www-authenticate")
                            .is_some_and(|v| v.to_str().unwrap().starts_with("Bearer"))
                }
                Expect::Forbidden => status == 403,
                Expect::Through => {
                    through += 1;
                    // Not refused by the gateway, and the service answered (no 502/504).
                    !matches!(status, 401 | 403 | 429 | 502 | 504)
                }
            };
            if !ok {
                failures.push(format!(
                    "{} {} as {caller:?}: got {status}, expected {expect:?}",
                    route.method.as_str(),
                    path
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} mismatches:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(through > ROUTES.len() * 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_tenant_admin_reaches_a_platform_scope_route() {
    let app = spawn_app().await;
    let platform: Vec<_> = ROUTES
        .iter()
        .filter(|r| r.role == Role::PlatformAdmin)
        .collect();
    assert_eq!(platform.len(), 4, "{platform:?}");
    for route in platform {
        let plain = format!("/api/v1{}", concrete(route.path));
        // The first letter after /api/v1 percent-encoded: routed, and checked, the same.
        let encoded = aurum_testkit::percent_encoded_path(&plain, 3, false);
        for (path, caller) in [&plain, &encoded].into_iter().flat_map(|p| {
            [Caller::Admin, Caller::OtherTenant, Caller::PlatformAdmin].map(|c| (p, c))
        }) {
            let token = app.token_for(caller);
            let res = app
                .request(route.method.actix_reqwest(), path, token.as_deref())
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            let refused = res.status() == 403;
            assert_eq!(
                refused,
                caller != Caller::PlatformAdmin,
                "{} {path} as {caller:?}: {}",
                route.method.as_str(),
                res.status()
            );
        }
    }
}

trait ReqwestMethod {
    fn actix_reqwest(self) -> reqwest::Method;
}

impl ReqwestMethod for Method {
    fn actix_reqwest(self) -> reqwest::Method {
        reqwest::Method::from_bytes(self.as_str().as_bytes()).unwrap()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_tenants_resources_are_not_found_and_tenant_headers_cannot_be_forged() {
    let app = spawn_app().await;
    app.register_machine("truck-1").await;
    let viewer = app.token("viewer");
    let r = app.get("/api/v1/machines/truck-1", &viewer).await;
    assert_eq!(r.status(), 200);

    let other = app.token_for(Caller::OtherTenant).unwrap();
    let r = app
        .request(
            reqwest::Method::GET,
            "/api/v1/machines/truck-1",
            Some(&other),
        )
        .header("x-aurum-tenant", crate::helpers::TENANT)
        .header("x-aurum-user", "someone-else")
        .send()
        .await
        .unwrap();
    assert_eq!(
        r.status(),
        404,
        "a forged tenant header must not reach the tenant's data"
    );
    let list: serde_json::Value = app
        .get("/api/v1/machines", &other)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list["machines"].as_array().unwrap().len(), 0, "{list}");

    // The upstream sees the token's tenant and subject, and the caller's Authorization as is.
    let admin = app.token("admin");
    let r = app
        .request(reqwest::Method::GET, "/api/v1/users", Some(&admin))
        .header("x-aurum-tenant", "globex")
        .header("x-aurum-user", "forged")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let seen = app.auth.last("/v1/users").unwrap();
    assert_eq!(seen.headers["x-aurum-tenant"], crate::helpers::TENANT);
    assert_eq!(seen.headers["x-aurum-user"], "user-admin");
    assert_eq!(seen.headers["authorization"], format!("Bearer {admin}"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_paths_are_401_without_a_token_and_404_with_one() {
    let app = spawn_app().await;
    let r = app
        .client
        .get(app.url("/api/v1/nothing"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let r = app
        .client
        .get(app.url("/v1/machines"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401, "upstream paths are not public");
    let r = app.get("/api/v1/nothing", &app.token("admin")).await;
    assert_eq!(r.status(), 404);
    // A service token without a tenant reaches no tenant data.
    let svc = app.issuer.sign(&app.issuer.claims("svc", None, &[]));
    assert_eq!(app.get("/api/v1/machines", &svc).await.status(), 403);
}
