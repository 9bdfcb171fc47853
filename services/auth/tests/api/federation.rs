//! Federation against a real upstream OpenID Connect provider (the npm `oidc-provider`, run
//! by tests/oidc_provider/provider.js on a free port): a browser-like client with a cookie jar
//! goes platform /authorize -> login page -> "Log in with ..." -> upstream sign-in and consent
//! -> platform callback -> the client's redirect URI with the platform's code -> /token.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::Arc;

use aurum_auth::federation::ProviderSettings;
use reqwest::cookie::Jar;
use secrecy::SecretString;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::helpers::*;

const PROVIDER: &str = "upstream";
const UPSTREAM_CLIENT: &str = "aurumai-platform";
const UPSTREAM_SECRET: &str = "aurumai-platform-upstream-secret-0123";

fn provider_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/oidc_provider")
}

/// Installs the provider's pinned packages (`npm ci`) once when `make deps` has not.
fn ensure_installed() {
    static LOCK: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let dir = provider_dir();
    if dir.join("node_modules/oidc-provider/package.json").exists() {
        return;
    }
    let out = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .output()
        .unwrap_or_else(|e| panic!("cannot run npm ({e}): run `make deps` to install Node.js"));
    assert!(
        out.status.success(),
        "npm ci failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The upstream provider, a child process killed at the end of the test (or on drop).
struct UpstreamIdp {
    child: Child,
    issuer: String,
}

impl UpstreamIdp {
    async fn start(redirect_uri: &str) -> Self {
        ensure_installed();
        let mut child = Command::new("node")
            .arg("provider.js")
            .current_dir(provider_dir())
            .env("CLIENT_ID", UPSTREAM_CLIENT)
            .env("CLIENT_SECRET", UPSTREAM_SECRET)
            .env("REDIRECT_URIS", redirect_uri)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("start node provider.js");
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let line = tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
            .await
            .expect("the provider did not start in 30 s")
            .unwrap()
            .expect("the provider exited");
        let ready: Value = serde_json::from_str(&line).unwrap();
        // Keep draining its output: a closed pipe would end the provider at its next write.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Self {
            child,
            issuer: ready["issuer"].as_str().unwrap().to_owned(),
        }
    }

    async fn stop(mut self) {
        self.child.kill().await.unwrap();
    }
}

fn provider_settings(issuer: &str, auto_provision: bool) -> ProviderSettings {
    serde_json::from_value::<ProviderSettings>(serde_json::json!({
        "id": PROVIDER,
        "display_name": "Upstream IdP",
        "issuer": issuer,
        "client_id": UPSTREAM_CLIENT,
        "scopes": ["openid", "email", "profile"],
        "claim": "email",
        "tenant": TENANT,
        "match_existing": true,
        "auto_provision": auto_provision,
    }))
    .map(|mut p| {
        p.client_secret = Some(SecretString::from(UPSTREAM_SECRET.to_owned()));
        p
    })
    .unwrap()
}

async fn federated_app(auto_provision: bool) -> (TestApp, UpstreamIdp) {
    let port = aurum_testkit::free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let idp = UpstreamIdp::start(&format!("{issuer}/federation/{PROVIDER}/callback")).await;
    let settings = provider_settings(&idp.issuer, auto_provision);
    let app = spawn_app_with(move |c| {
        c.http.port = port;
        c.auth.issuer = issuer;
        c.auth.federation.providers = vec![settings];
    })
    .await;
    (app, idp)
}

/// A browser: a cookie jar, no automatic redirects.
fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_provider(Arc::new(Jar::default()))
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn location(r: &reqwest::Response) -> String {
    let l = r
        .headers()
        .get("location")
        .unwrap_or_else(|| panic!("no Location in a {} answer", r.status()))
        .to_str()
        .unwrap();
    url::Url::parse(r.url().as_str())
        .unwrap()
        .join(l)
        .unwrap()
        .to_string()
}

/// Starts at the platform's /authorize and signs in upstream as `account`; returns the URL of
/// the platform callback the upstream provider sent the browser to (not yet followed).
async fn to_callback(
    app: &TestApp,
    idp: &UpstreamIdp,
    browser: &reqwest::Client,
    challenge: &str,
    account: &str,
) -> String {
    let page = browser
        .get(app.authorize_url(WEB_CLIENT, Some(challenge), &[]))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let page = page.text().await.unwrap();
    assert!(page.contains("Log in with Upstream IdP"), "{page}");
    let marker = format!("href=\"/authorize/federation/{PROVIDER}?request=");
    let start = page.find(&marker).expect("provider link") + "href=\"".len();
    let end = start + page[start..].find('"').unwrap();
    let href = page[start..end].replace("&amp;", "&");

    let r = browser.get(app.url(&href)).send().await.unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    let mut next = location(&r);
    assert!(next.starts_with(&idp.issuer), "{next}");
    let upstream_auth = query_of(&next);
    assert_eq!(upstream_auth["code_challenge_method"], "S256");
    assert!(upstream_auth.contains_key("nonce") && upstream_auth.contains_key("state"));

    for _ in 0..10 {
        if next.starts_with(&app.address) {
            return next;
        }
        let path = url::Url::parse(&next).unwrap().path().to_owned();
        let r = if path.starts_with("/interaction/") {
            let details: Value = browser
                .get(&next)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            match details["prompt"].as_str().unwrap() {
                "login" => browser
                    .post(format!("{next}/login"))
                    .form(&[
                        ("login", account),
                        ("password", &format!("{account}-upstream-password")),
                    ])
                    .send()
                    .await
                    .unwrap(),
                "consent" => browser
                    .post(format!("{next}/confirm"))
                    .send()
                    .await
                    .unwrap(),
                other => panic!("unexpected upstream prompt {other}"),
            }
        } else {
            browser.get(&next).send().await.unwrap()
        };
        assert!(
            r.status().is_redirection(),
            "{} at {next}: {}",
            r.status(),
            r.text().await.unwrap()
        );
        next = location(&r);
    }
    panic!("the upstream provider never sent the browser back");
}

/// Follows the callback; the platform must answer with its own code for the web client.
async fn platform_code(browser: &reqwest::Client, callback: &str) -> String {
    let r = browser.get(callback).send().await.unwrap();
    assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
    let l = location(&r);
    assert!(l.starts_with(REDIRECT), "{l}");
    let q = query_of(&l);
    assert_eq!(q["state"], "st-123");
    assert!(!q.contains_key("error"), "{l}");
    q["code"].clone()
}

/// A whole federated sign-in; the platform's tokens.
async fn federated_sign_in(app: &TestApp, idp: &UpstreamIdp, account: &str) -> Tokens {
    let browser = browser();
    let (verifier, challenge) = pkce();
    let callback = to_callback(app, idp, &browser, &challenge, account).await;
    let code = platform_code(&browser, &callback).await;
    let r = app
        .exchange(WEB_CLIENT, Some(WEB_SECRET), &code, &verifier)
        .await;
    assert_eq!(r.status(), 200);
    tokens(r.json().await.unwrap())
}

/// A refused callback: the generic error page, no detail.
async fn assert_refused(r: reqwest::Response) {
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("location").is_none());
    let body = r.text().await.unwrap();
    assert!(body.contains("did not succeed"), "{body}");
    for detail in ["state", "nonce", "token", "email", "subject"] {
        assert!(!body.contains(detail), "the page leaks {detail}: {body}");
    }
}

fn events(metrics: &str, event: &str) -> f64 {
    aurum_testkit::metric_value(
        metrics,
        &format!("aurum_auth_security_events_total{{event=\"{event}\"}}"),
    )
    .unwrap_or(0.0)
}

async fn links_of(app: &TestApp, user: &str) -> i64 {
    let pg = app.db.client().await;
    pg.query_one(
        "SELECT count(*) FROM auth.federated_identities WHERE provider = $1 AND user_id::text = $2",
        &[&PROVIDER, &user],
    )
    .await
    .unwrap()
    .get(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_sign_in_maps_a_verified_email_then_the_stored_link() {
    let (app, idp) = federated_app(false).await;
    let admin = app.admin_tokens().await;
    let alice = app
        .create_user(&admin.access_token, "alice", &["operator"])
        .await;
    let alice_id = alice["id"].as_str().unwrap().to_owned();

    for round in 0..2 {
        let t = federated_sign_in(&app, &idp, "alice").await;
        let id = claims_of(t.id_token.as_deref().unwrap());
        assert_eq!(id["sub"], alice_id.as_str(), "round {round}");
        assert_eq!(id["aud"], WEB_CLIENT);
        assert_eq!(id["nonce"], "n-456");
        let at = claims_of(&t.access_token);
        assert_eq!(at["sub"], alice_id.as_str());
        assert_eq!(at["tenant"], TENANT);
        assert_eq!(at["roles"], serde_json::json!(["operator"]));
        // The first sign-in matched the email and stored the link; the second used it.
        assert_eq!(links_of(&app, &alice_id).await, 1);
    }
    let m = app.metrics().await;
    assert_eq!(events(&m, "federated_login_succeeded"), 2.0);
    idp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_replayed_and_foreign_callbacks_are_refused() {
    let (app, idp) = federated_app(false).await;
    let admin = app.admin_tokens().await;
    let alice = app
        .create_user(&admin.access_token, "alice", &["viewer"])
        .await;

    let b = browser();
    let (verifier, challenge) = pkce();
    let callback = to_callback(&app, &idp, &b, &challenge, "alice").await;
    let state = query_of(&callback)["state"].clone();
    // One character of the state changed: no pending sign-in has it.
    let mut forged = state.clone().into_bytes();
    forged[5] = if forged[5] == b'A' { b'B' } else { b'A' };
    let tampered = callback.replace(&state, std::str::from_utf8(&forged).unwrap());
    assert_refused(b.get(&tampered).send().await.unwrap()).await;
    // The genuine callback still works once ...
    let code = platform_code(&b, &callback).await;
    let r = app
        .exchange(WEB_CLIENT, Some(WEB_SECRET), &code, &verifier)
        .await;
    assert_eq!(r.status(), 200);
    let t = tokens(r.json().await.unwrap());
    assert_eq!(claims_of(&t.access_token)["sub"], alice["id"]);
    // ... and never again.
    assert_refused(b.get(&callback).send().await.unwrap()).await;

    // A callback carried to another browser (no binding cookie) is refused, and spent.
    let b2 = browser();
    let (_, challenge) = pkce();
    let callback = to_callback(&app, &idp, &b2, &challenge, "alice").await;
    assert_refused(browser().get(&callback).send().await.unwrap()).await;
    assert_refused(b2.get(&callback).send().await.unwrap()).await;

    let m = app.metrics().await;
    assert_eq!(events(&m, "federated_login_failed"), 4.0);
    assert_eq!(events(&m, "federated_login_succeeded"), 1.0);
    idp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unmapped_or_unverified_identities_are_refused_without_auto_provisioning() {
    let (app, idp) = federated_app(false).await;
    let admin = app.admin_tokens().await;
    app.create_user(&admin.access_token, "alice", &["viewer"])
        .await;
    let users_before = app.db.count("SELECT count(*) FROM auth.users").await;

    // Nobody at the tenant has mallory's address.
    let b = browser();
    let (_, challenge) = pkce();
    let callback = to_callback(&app, &idp, &b, &challenge, "mallory").await;
    assert_refused(b.get(&callback).send().await.unwrap()).await;

    // Alice's address, but the upstream has not verified it: no match.
    let b = browser();
    let (_, challenge) = pkce();
    let callback = to_callback(&app, &idp, &b, &challenge, "unverified").await;
    assert_refused(b.get(&callback).send().await.unwrap()).await;

    assert_eq!(
        app.db.count("SELECT count(*) FROM auth.users").await,
        users_before
    );
    assert_eq!(
        app.db
            .count("SELECT count(*) FROM auth.federated_identities")
            .await,
        0
    );
    let m = app.metrics().await;
    assert_eq!(events(&m, "federated_login_failed"), 2.0);
    idp.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_provisioning_creates_a_viewer_of_the_tenant_once() {
    let (app, idp) = federated_app(true).await;
    let first = federated_sign_in(&app, &idp, "newbie").await;
    let at = claims_of(&first.access_token);
    assert_eq!(at["tenant"], TENANT);
    assert_eq!(at["roles"], serde_json::json!(["viewer"]));
    let sub = at["sub"].as_str().unwrap().to_owned();

    // The user exists with the upstream's verified email and name, and signs in again as
    // the same platform user.
    let admin = app.admin_tokens().await;
    let user: Value = app
        .get_with(&admin.access_token, &format!("/v1/users/{sub}"))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(user["username"], "newbie@acme.test");
    assert_eq!(user["email"], "newbie@acme.test");
    assert_eq!(user["roles"], serde_json::json!(["viewer"]));
    let again = federated_sign_in(&app, &idp, "newbie").await;
    assert_eq!(claims_of(&again.access_token)["sub"], sub.as_str());
    assert_eq!(links_of(&app, &sub).await, 1);

    // The provisioned user has no usable password.
    let form = app
        .login_form(&app.authorize_url(WEB_CLIENT, Some(&pkce().1), &[]))
        .await;
    let r = app.post_login(&form, "newbie@acme.test", "").await;
    assert_eq!(r.status(), 401);
    idp.stop().await;
}
