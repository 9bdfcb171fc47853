//! The auth service's OpenID Connect endpoints through the gateway (`/auth/...`), against the
//! real auth service whose issuer is the gateway's URL + `/auth`: discovery and JWKS, client
//! credentials, the browser's code flow (login form, CSRF cookie, redirect), the allow-list,
//! the per-address limit; and the header policy against an echoing upstream.

use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use aurum_auth::config::{BootstrapAdmin, SeedClient};
use aurum_gateway::config::Limit;
use aurum_gateway::routes::oidc::OIDC_ROUTES;
use aurum_gateway::{Application as Gateway, GatewayConfig};
use aurum_testkit::{metric_value, TestDb};
use secrecy::SecretString;
use serde_json::{json, Value};

use crate::helpers::spawn_app_with;

const TENANT: &str = "acme";
const ADMIN: &str = "admin@acme";
const ADMIN_PASSWORD: &str = "an-admin-password-1234";
const WEB: &str = "web-console";
const WEB_SECRET: &str = "web-console-secret-0123456789abcdef";
const SERVICE: &str = "ops-robot";
const SERVICE_SECRET: &str = "ops-robot-secret-0123456789abcdefgh";
const REDIRECT: &str = "http://127.0.0.1:9/callback";
/// RFC 7636 appendix B: a PKCE verifier and its S256 challenge.
const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";

fn seed(id: &str, secret: &str, grants: &[&str]) -> SeedClient {
    SeedClient {
        client_id: id.into(),
        secret: Some(SecretString::from(secret.to_owned())),
        secret_file: None,
        name: Some(format!("{id} app")),
        redirect_uris: vec![],
        post_logout_redirect_uris: vec![],
        grant_types: grants.iter().map(|g| (*g).to_owned()).collect(),
        audiences: vec![],
        tenant: Some(TENANT.into()),
        roles: vec![],
    }
}

/// The gateway in front of the real auth service (ingestion and prediction are not needed).
struct Stack {
    gateway: String,
    issuer: String,
    auth: String,
    /// Follows no redirects: the tests look at every Location.
    client: reqwest::Client,
    db: TestDb,
}

impl Stack {
    async fn start(per_ip: Limit) -> Self {
        crate::helpers::init_test_logs();
        let db = TestDb::create().await;
        crate::helpers::migrate_all(&db).await;
        let gateway_port = aurum_testkit::free_port();
        let gateway = format!("http://127.0.0.1:{gateway_port}");
        let issuer = format!("{gateway}/auth");

        let mut a = aurum_auth::AuthConfig::default();
        a.http.port = 0;
        a.database = db.settings("aurumai_auth");
        a.auth.issuer = issuer.clone();
        // Behind the gateway (on loopback here): the client's address is the rightmost entry
        // of X-Forwarded-For that is not the gateway's.
        a.auth.trusted_proxies = aurum_http::TrustedProxies::parse(["127.0.0.1"]).unwrap();
        a.auth.bootstrap_admin = Some(BootstrapAdmin {
            tenant: TENANT.into(),
            username: ADMIN.into(),
            password: SecretString::from(ADMIN_PASSWORD.to_owned()),
            platform_admin: false,
        });
        let mut web = seed(WEB, WEB_SECRET, &["authorization_code", "refresh_token"]);
        web.redirect_uris = vec![REDIRECT.into()];
        let mut service = seed(SERVICE, SERVICE_SECRET, &["client_credentials"]);
        service.audiences = vec!["aurumai-api".into()];
        service.roles = vec!["admin".into()];
        a.auth.clients = vec![web, service];
        let app = aurum_auth::Application::build(a, prometheus::Registry::new())
            .await
            .unwrap();
        let auth = format!("http://127.0.0.1:{}", app.port());
        tokio::spawn(app.run_until_stopped());

        let mut g = GatewayConfig::default();
        g.http.port = gateway_port;
        g.database = db.settings("aurumai_gateway");
        g.auth.issuer = issuer.clone();
        // Inside the cluster the gateway fetches the keys from the service itself.
        g.auth.jwks_url = Some(format!("{auth}/jwks"));
        g.upstreams.auth.url = auth.clone();
        g.upstreams.ingestion.url = "http://127.0.0.1:9".into();
        g.upstreams.prediction.url = "http://127.0.0.1:9".into();
        let high = Limit {
            requests: 100_000,
            per_s: 60,
        };
        g.rate_limit.per_principal = high;
        g.rate_limit.per_tenant = high;
        g.rate_limit.per_ip_anonymous = per_ip;
        let app = Gateway::build(g, prometheus::Registry::new())
            .await
            .unwrap();
        assert_eq!(app.port(), gateway_port);
        tokio::spawn(app.run_until_stopped());

        Self {
            gateway,
            issuer,
            auth,
            client: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .unwrap(),
            db,
        }
    }

    async fn start_unlimited() -> Self {
        Self::start(Limit {
            requests: 100_000,
            per_s: 60,
        })
        .await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.gateway)
    }

    /// The service client's client_credentials grant, through the gateway.
    async fn client_credentials(&self) -> reqwest::Response {
        self.client
            .post(self.url("/auth/token"))
            .basic_auth(SERVICE, Some(SERVICE_SECRET))
            .form(&[
                ("grant_type", "client_credentials"),
                ("audience", "aurumai-api"),
            ])
            .send()
            .await
            .unwrap()
    }

    async fn service_token(&self) -> String {
        let r = self.client_credentials().await;
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    async fn metrics(&self) -> String {
        self.client
            .get(self.url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }
}

fn header<'a>(r: &'a reqwest::Response, name: &str) -> &'a str {
    r.headers()
        .get(name)
        .unwrap_or_else(|| panic!("no {name}"))
        .to_str()
        .unwrap()
}

fn is_problem(r: &reqwest::Response) -> bool {
    r.headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes() == b"application/problem+json")
}

/// The value of attribute `attr` of the first tag of `html` that contains `marker`.
fn attribute(html: &str, marker: &str, attr: &str) -> String {
    let at = html
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in {html}"));
    let tag_start = html[..=at].rfind('<').unwrap();
    let tag = &html[tag_start..tag_start + html[tag_start..].find('>').unwrap()];
    let key = format!("{attr}=\"");
    let start = tag.find(&key).unwrap() + key.len();
    let end = start + tag[start..].find('"').unwrap();
    tag[start..end].replace("&amp;", "&")
}

/// A cookie as a browser keeps it: `name=value` and its Path.
struct Cookie {
    pair: String,
    path: String,
}

impl Cookie {
    fn parse(set_cookie: &str) -> Self {
        let mut parts = set_cookie.split(';').map(str::trim);
        let pair = parts.next().unwrap().to_owned();
        let path = parts
            .find_map(|p| p.strip_prefix("Path="))
            .unwrap_or("/")
            .to_owned();
        Self { pair, path }
    }

    /// RFC 6265 section 5.1.4 path-match.
    fn sent_to(&self, path: &str) -> bool {
        path == self.path
            || (path.starts_with(&self.path)
                && (self.path.ends_with('/') || path[self.path.len()..].starts_with('/')))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn discovery_and_keys_through_the_gateway_name_the_gateways_urls() {
    let s = Stack::start_unlimited().await;
    let r = s
        .client
        .get(s.url("/auth/.well-known/openid-configuration"))
        .header("x-request-id", "oidc-discovery-1")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "x-request-id"), "oidc-discovery-1");
    assert_eq!(
        header(&r, "cache-control"),
        "public, max-age=300",
        "the service's caching passes"
    );
    let d: Value = r.json().await.unwrap();
    assert_eq!(d["issuer"], s.issuer);
    for (key, path) in [
        ("authorization_endpoint", "/authorize"),
        ("token_endpoint", "/token"),
        ("userinfo_endpoint", "/userinfo"),
        ("jwks_uri", "/jwks"),
        ("revocation_endpoint", "/revoke"),
        ("introspection_endpoint", "/introspect"),
        ("end_session_endpoint", "/logout"),
    ] {
        assert_eq!(d[key], format!("{}/auth{path}", s.gateway), "{key}");
    }

    // The advertised JWKS answers through the gateway with the service's keys.
    let keys: Value = s
        .client
        .get(d["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let direct: Value = s
        .client
        .get(format!("{}/jwks", s.auth))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(!keys["keys"].as_array().unwrap().is_empty());
    assert_eq!(keys, direct);

    // Every allow-listed endpoint reaches the service (none is the gateway's own 404 or a
    // failed upstream call), whatever the service then says of an empty request.
    for route in OIDC_ROUTES {
        let path = route.public_path().replace("{provider}", "nobody");
        let method = reqwest::Method::from_bytes(route.method.as_str().as_bytes()).unwrap();
        let r = s.client.request(method, s.url(&path)).send().await.unwrap();
        let status = r.status().as_u16();
        assert!(
            (status != 404 || !is_problem(&r)) && !matches!(status, 405 | 502 | 504),
            "{} {path}: {status}",
            route.method.as_str()
        );
    }
    let metrics = s.metrics().await;
    assert!(
        metrics.contains(r#"route="/auth/.well-known/openid-configuration""#),
        "counted in the HTTP metrics by route"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_credentials_token_from_the_gateway_is_accepted_by_the_gateway() {
    let s = Stack::start_unlimited().await;
    let r = s.client_credentials().await;
    assert_eq!(r.status(), 200);
    assert_eq!(header(&r, "cache-control"), "no-store");
    assert_eq!(header(&r, "pragma"), "no-cache");
    let token = r.json::<Value>().await.unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();

    // The gateway verifies it (issuer = its own URL + /auth) and the auth service again.
    let r = s
        .client
        .get(s.url("/api/v1/users"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let users = r.text().await.unwrap();
    assert!(users.contains(ADMIN), "{users}");

    // Introspection through the gateway: the token's issuer is the gateway's prefix.
    let r = s
        .client
        .post(s.url("/auth/introspect"))
        .basic_auth(SERVICE, Some(SERVICE_SECRET))
        .form(&[("token", token.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let i: Value = r.json().await.unwrap();
    assert_eq!(i["active"], true, "{i}");
    assert_eq!(i["iss"], s.issuer, "{i}");

    // A wrong secret: the service's 401 and its challenge pass unchanged, and the service
    // records the client's address from X-Forwarded-For: the entry the ingress appended (this
    // test plays the ingress), not the one the client wrote to its left.
    let r = s
        .client
        .post(s.url("/auth/token"))
        .basic_auth(SERVICE, Some("not-the-secret"))
        .header("x-forwarded-for", "198.51.100.250, 203.0.113.7")
        .header("user-agent", "oidc-passthrough-test")
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(header(&r, "www-authenticate").starts_with("Basic"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"], "invalid_client");
    let recorded = "SELECT count(*) FROM auth.security_events WHERE event = 'invalid_client_auth' \
                    AND ip = '203.0.113.7' AND user_agent = 'oidc-passthrough-test'";
    assert_eq!(s.db.count(recorded).await, 1);

    // Nothing of the passthrough is in the tenant's audit log (only the /api/v1 call).
    let audit = s.client.get(s.url("/api/v1/audit")).bearer_auth(&token);
    let audit: Value = audit.send().await.unwrap().json().await.unwrap();
    assert!(!audit.to_string().contains("/auth/"), "{audit}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_signs_in_through_the_gateway_with_the_code_flow() {
    let s = Stack::start_unlimited().await;
    let mut authorize = url::Url::parse(&s.url("/auth/authorize")).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", WEB)
        .append_pair("redirect_uri", REDIRECT)
        .append_pair("scope", "openid profile")
        .append_pair("state", "st-42")
        .append_pair("nonce", "n-42")
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256");
    let r = s.client.get(authorize.as_str()).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(header(&r, "content-type").starts_with("text/html"));
    // The login page's own policy (its form posts back here), not the API's form-action 'none'.
    let csp = header(&r, "content-security-policy");
    assert!(csp.contains("form-action 'self'"), "{csp}");
    assert_eq!(header(&r, "x-frame-options"), "DENY");
    assert_eq!(header(&r, "cache-control"), "no-store");
    let cookies: Vec<Cookie> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| Cookie::parse(v.to_str().unwrap()))
        .collect();
    assert_eq!(cookies.len(), 1);
    let csrf = &cookies[0];
    assert!(csrf.pair.starts_with("aurum_login_csrf="));
    let page = r.text().await.unwrap();

    // The form's target, resolved as a browser does, is below the prefix, and the CSRF
    // cookie's path covers it.
    let action = authorize
        .join(&attribute(&page, "<form", "action"))
        .unwrap();
    assert_eq!(action.as_str(), s.url("/auth/authorize/login"));
    assert!(
        csrf.sent_to(action.path()),
        "cookie path {} vs {}",
        csrf.path,
        action.path()
    );
    let request = attribute(&page, "name=\"request\"", "value");

    let r = s
        .client
        .post(action.as_str())
        .header("cookie", &csrf.pair)
        // A browser posting the form names the page's origin (not a CORS origin: allowed).
        .header("origin", &s.gateway)
        .header("x-forwarded-for", "198.51.100.23")
        .header("user-agent", "oidc-passthrough-browser")
        .form(&[
            ("request", request.as_str()),
            ("username", ADMIN),
            ("password", ADMIN_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    let location = url::Url::parse(header(&r, "location")).unwrap();
    assert!(location.as_str().starts_with(REDIRECT), "{location}");
    let q: std::collections::HashMap<String, String> =
        location.query_pairs().into_owned().collect();
    assert_eq!(q["state"], "st-42");
    assert_eq!(q["iss"], s.issuer);
    let recorded = "SELECT count(*) FROM auth.security_events WHERE event = 'login_succeeded' \
                    AND ip = '198.51.100.23' AND user_agent = 'oidc-passthrough-browser'";
    assert_eq!(s.db.count(recorded).await, 1);

    // The client redeems the code through the gateway; the user's token works on /api/v1.
    let r = s
        .client
        .post(s.url("/auth/token"))
        .basic_auth(WEB, Some(WEB_SECRET))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", q["code"].as_str()),
            ("redirect_uri", REDIRECT),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let tokens: Value = r.json().await.unwrap();
    let access = tokens["access_token"].as_str().unwrap();
    let me: Value = s
        .client
        .get(s.url("/api/v1/me"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], ADMIN, "{me}");
    let r = s
        .client
        .get(s.url("/auth/userinfo"))
        .bearer_auth(access)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let info: Value = r.json().await.unwrap();
    assert_eq!(info["sub"], me["id"], "{info} {me}");

    // Without the cookie the same form is refused by the service.
    let r = s
        .client
        .post(action.as_str())
        .form(&[
            ("request", request.as_str()),
            ("username", ADMIN),
            ("password", ADMIN_PASSWORD),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_allow_list_is_passed_and_the_admin_api_is_not_reachable_below_the_prefix() {
    let s = Stack::start_unlimited().await;
    let token = s.service_token().await;
    // The same token reaches the users through /api/v1 ...
    let r = s
        .client
        .get(s.url("/api/v1/users"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // ... never through /auth, with or without it.
    for (method, path) in [
        (reqwest::Method::GET, "/auth/v1/users"),
        (reqwest::Method::POST, "/auth/v1/users"),
        (reqwest::Method::POST, "/auth/v1/keys/rotate"),
        (reqwest::Method::GET, "/auth/v1/me"),
        (reqwest::Method::GET, "/auth/healthz"),
        (reqwest::Method::GET, "/auth/metrics"),
        (reqwest::Method::GET, "/auth"),
        (reqwest::Method::DELETE, "/auth/token"),
        (
            reqwest::Method::GET,
            "/auth/authorize/federation/..%2F..%2Fv1%2Fusers",
        ),
        (
            reqwest::Method::GET,
            "/auth/federation/a%2F..%2F..%2Fv1/callback",
        ),
    ] {
        for bearer in [None, Some(token.as_str())] {
            let mut req = s.client.request(method.clone(), s.url(path));
            if let Some(t) = bearer {
                req = req.bearer_auth(t);
            }
            let r = req.send().await.unwrap();
            assert_eq!(r.status(), 404, "{method} {path}");
            assert!(is_problem(&r), "the gateway's own 404 for {method} {path}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_over_the_per_address_limit_gets_429() {
    let s = Stack::start(Limit {
        requests: 3,
        per_s: 60,
    })
    .await;
    let mut remaining = Vec::new();
    for _ in 0..3 {
        let r = s.client.get(s.url("/auth/jwks")).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert_eq!(header(&r, "ratelimit-limit"), "3");
        remaining.push(header(&r, "ratelimit-remaining").to_owned());
    }
    assert_eq!(remaining, ["2", "1", "0"]);
    let r = s.client.get(s.url("/auth/jwks")).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert!(is_problem(&r));
    let retry: u64 = header(&r, "retry-after").parse().unwrap();
    assert!((1..=20).contains(&retry), "Retry-After {retry}");
    // One allowance per address for every endpoint (and for calls without a valid token);
    // a client-sent X-Forwarded-For does not open another one.
    let r = s
        .client
        .post(s.url("/auth/token"))
        .header("x-forwarded-for", "203.0.113.99")
        .basic_auth(SERVICE, Some(SERVICE_SECRET))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    let r = s
        .client
        .get(s.url("/api/v1/machines"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(
        metric_value(
            &s.metrics().await,
            "aurum_gateway_rate_limited_total{scope=\"ip\"}"
        ),
        Some(3.0)
    );
}

/// An upstream that echoes the headers it got and answers with several cookies, a
/// redirect, a challenge and a header of its own that must not leave the cluster.
async fn echo(req: HttpRequest, body: web::Bytes) -> HttpResponse {
    let headers: serde_json::Map<String, Value> = req
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_owned(), json!(v.to_str().unwrap_or(""))))
        .collect();
    HttpResponse::Found()
        .append_header(("location", "https://app.example.com/back"))
        .append_header(("set-cookie", "a=1; Path=/auth/authorize; HttpOnly"))
        .append_header(("set-cookie", "b=2; Path=/auth/federation; HttpOnly"))
        .append_header(("www-authenticate", "Bearer error=\"invalid_token\""))
        .append_header(("cache-control", "no-store"))
        .append_header(("pragma", "no-cache"))
        .append_header(("x-internal-detail", "node-7"))
        .json(json!({
            "path": req.path(),
            "query": req.query_string(),
            "headers": headers,
            "body": String::from_utf8_lossy(&body),
        }))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_passthrough_forwards_and_returns_only_the_allowed_headers() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let server = HttpServer::new(|| App::new().default_service(web::to(echo)))
        .workers(1)
        .disable_signals()
        .listen(listener)
        .unwrap()
        .run();
    tokio::spawn(server);
    let app = spawn_app_with(|c| c.upstreams.auth.url = upstream).await;
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();

    let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let r = client
        .post(app.url("/auth/token?x=1"))
        .basic_auth("some-client", Some("some-secret"))
        .header("cookie", "aurum_login_csrf=c1")
        .header("accept", "application/json")
        .header("user-agent", "ua-1")
        .header("origin", crate::helpers::ORIGIN)
        .header("x-forwarded-for", "203.0.113.7")
        .header("x-request-id", "pass-1")
        .header("traceparent", traceparent)
        .header("x-aurum-tenant", "acme")
        .header("x-aurum-user", "someone")
        .header("x-something-else", "1")
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 302, "the upstream's status passes");
    assert_eq!(header(&r, "location"), "https://app.example.com/back");
    let cookies: Vec<&str> = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap())
        .collect();
    assert_eq!(
        cookies,
        [
            "a=1; Path=/auth/authorize; HttpOnly",
            "b=2; Path=/auth/federation; HttpOnly"
        ]
    );
    assert_eq!(
        header(&r, "www-authenticate"),
        "Bearer error=\"invalid_token\""
    );
    assert_eq!(header(&r, "cache-control"), "no-store");
    assert_eq!(header(&r, "pragma"), "no-cache");
    assert_eq!(header(&r, "x-request-id"), "pass-1");
    assert!(r.headers().get("x-internal-detail").is_none());
    // A CORS origin of the gateway is answered as on the API.
    assert_eq!(
        header(&r, "access-control-allow-origin"),
        crate::helpers::ORIGIN
    );
    let seen: Value = r.json().await.unwrap();
    assert_eq!(seen["path"], "/token");
    assert_eq!(seen["query"], "x=1");
    assert_eq!(seen["body"], "grant_type=client_credentials");
    let h = &seen["headers"];
    assert!(h["authorization"].as_str().unwrap().starts_with("Basic "));
    assert_eq!(h["cookie"], "aurum_login_csrf=c1");
    assert_eq!(h["content-type"], "application/x-www-form-urlencoded");
    assert_eq!(h["accept"], "application/json");
    assert_eq!(h["user-agent"], "ua-1");
    assert_eq!(h["x-request-id"], "pass-1");
    assert!(
        h["traceparent"]
            .as_str()
            .unwrap()
            .contains("4bf92f3577b34da6a3ce929d0e0e4736"),
        "{h}"
    );
    assert_eq!(h["x-forwarded-for"], "203.0.113.7, 127.0.0.1");
    assert_eq!(h["x-forwarded-proto"], "http");
    assert_eq!(
        h["x-forwarded-host"],
        app.address.trim_start_matches("http://")
    );
    for dropped in [
        "x-aurum-tenant",
        "x-aurum-user",
        "x-something-else",
        "origin",
    ] {
        assert!(
            h.get(dropped).is_none(),
            "{dropped} reached the upstream: {h}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_passthrough_retries_a_get_that_could_not_connect_and_never_a_post() {
    let app = spawn_app_with(|c| {
        c.upstreams.auth.url = "http://127.0.0.1:9".into();
        c.http.body_limit_bytes = 1024;
    })
    .await;
    let r = app.client.get(app.url("/auth/jwks")).send().await.unwrap();
    assert_eq!(r.status(), 502);
    assert_eq!(header(&r, "content-type"), "application/problem+json");
    let r = app
        .client
        .post(app.url("/auth/token"))
        .form(&[("grant_type", "client_credentials")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 502);
    let r = app
        .client
        .post(app.url("/auth/token"))
        .body("x".repeat(4096))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413, "the body limit applies");
    let metrics = app
        .client
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(
        metric_value(
            &metrics,
            "aurum_gateway_upstream_retries_total{upstream=\"auth\"}"
        ),
        Some(2.0),
        "two retries of the GET, none of the POST"
    );
    assert_eq!(
        metric_value(
            &metrics,
            "aurum_gateway_upstream_failures_total{kind=\"connect\",upstream=\"auth\"}"
        ),
        Some(2.0)
    );
}
