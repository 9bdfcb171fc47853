//! `spawn_app()`: the service on a fresh database with a bootstrap administrator and seeded
//! clients, and a scripted browser for the authorization code flow.

use aurum_auth::config::{BootstrapAdmin, SeedClient};
use aurum_auth::{Application, AuthConfig};
use aurum_testkit::TestDb;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use secrecy::SecretString;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

pub const TENANT: &str = "acme";
pub const ADMIN: &str = "admin@acme";
pub const ADMIN_PASSWORD: &str = "correct-horse-battery";
pub const WEB_CLIENT: &str = "web";
pub const WEB_SECRET: &str = "web-client-secret-0123456789abcdef";
pub const SPA_CLIENT: &str = "spa";
pub const REDIRECT: &str = "http://127.0.0.1:9/callback";
pub const POST_LOGOUT: &str = "http://127.0.0.1:9/signed-out";
pub const SVC_CLIENT: &str = "svc-ingestion";
pub const SVC_SECRET: &str = "svc-ingestion-secret-0123456789abcdef";
/// The platform operator's console: a client the configuration gives `platform_admin`, in the
/// operator's own tenant.
pub const PLATFORM_CLIENT: &str = "platform-console";
pub const PLATFORM_TENANT: &str = "ops";
pub const PLATFORM_SECRET: &str = "platform-console-secret-0123456789abcdef";

pub struct TestApp {
    pub address: String,
    pub db: TestDb,
    /// Follows no redirects: tests look at every Location.
    pub client: reqwest::Client,
    pub config: AuthConfig,
}

fn seed(client_id: &str, secret: Option<&str>, grants: &[&str]) -> SeedClient {
    SeedClient {
        client_id: client_id.into(),
        secret: secret.map(|s| SecretString::from(s.to_owned())),
        secret_file: None,
        name: Some(format!("{client_id} app")),
        redirect_uris: vec![REDIRECT.into()],
        post_logout_redirect_uris: vec![POST_LOGOUT.into()],
        grant_types: grants.iter().map(|g| (*g).to_owned()).collect(),
        audiences: vec![],
        tenant: None,
        roles: vec![],
    }
}

pub fn config_for(db: &TestDb, port: u16) -> AuthConfig {
    let mut c = AuthConfig::default();
    c.http.port = port;
    c.database = db.settings("aurumai_auth");
    c.auth.issuer = format!("http://127.0.0.1:{port}");
    c.auth.brute_force.user_max_failures = 3;
    c.auth.brute_force.ip_max_failures = 1_000;
    c.auth.brute_force.lockout_s = 2;
    c.auth.brute_force.max_lockout_s = 4;
    c.auth.bootstrap_admin = Some(BootstrapAdmin {
        tenant: TENANT.into(),
        username: ADMIN.into(),
        password: SecretString::from(ADMIN_PASSWORD.to_owned()),
        platform_admin: false,
    });
    let mut svc = seed(SVC_CLIENT, Some(SVC_SECRET), &["client_credentials"]);
    svc.redirect_uris.clear();
    svc.post_logout_redirect_uris.clear();
    svc.audiences = vec!["aurumai-ingestion".into(), "aurumai-prediction".into()];
    let mut platform = seed(
        PLATFORM_CLIENT,
        Some(PLATFORM_SECRET),
        &["client_credentials"],
    );
    platform.redirect_uris.clear();
    platform.post_logout_redirect_uris.clear();
    platform.audiences = vec!["aurumai-api".into()];
    platform.tenant = Some(PLATFORM_TENANT.into());
    platform.roles = vec!["platform_admin".into()];
    c.auth.clients = vec![
        seed(
            WEB_CLIENT,
            Some(WEB_SECRET),
            &["authorization_code", "refresh_token"],
        ),
        seed(SPA_CLIENT, None, &["authorization_code", "refresh_token"]),
        svc,
        platform,
    ];
    c
}

pub use aurum_testkit::init_test_logs;

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(tweak: impl FnOnce(&mut AuthConfig)) -> TestApp {
    init_test_logs();
    let db = TestDb::create().await;
    let mut config = config_for(&db, aurum_testkit::free_port());
    tweak(&mut config);
    aurum_postgres::auth::migrate(&config.database)
        .await
        .expect("migrate");
    let address = start(config.clone()).await;
    TestApp {
        address,
        db,
        client: no_redirects(),
        config,
    }
}

pub fn no_redirects() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Starts a replica with `config` and returns its address.
pub async fn start(config: AuthConfig) -> String {
    let app = Application::build(config, prometheus::Registry::new())
        .await
        .expect("build app");
    let address = format!("http://127.0.0.1:{}", app.port());
    tokio::spawn(app.run_until_stopped());
    address
}

/// A PKCE verifier and its S256 challenge.
pub fn pkce() -> (String, String) {
    let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

/// Query parameters of a URL.
pub fn query_of(url: &str) -> std::collections::HashMap<String, String> {
    url::Url::parse(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// The payload of a JWT (unverified: for looking at claims).
pub fn claims_of(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

pub fn header_of(jwt: &str) -> Value {
    let h = jwt.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap()
}

/// The login form as a browser got it.
#[derive(Debug)]
pub struct LoginForm {
    pub request: String,
    pub cookie: String,
    pub page: String,
}

/// Tokens of a completed code flow.
#[derive(Debug, Clone)]
pub struct Tokens {
    pub access_token: String,
    pub refresh_token: Option<String>,
    pub id_token: Option<String>,
    pub body: Value,
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    pub fn authorize_url(
        &self,
        client_id: &str,
        challenge: Option<&str>,
        extra: &[(&str, &str)],
    ) -> String {
        let mut u = url::Url::parse(&self.url("/authorize")).unwrap();
        {
            let mut q = u.query_pairs_mut();
            q.append_pair("response_type", "code")
                .append_pair("client_id", client_id)
                .append_pair("redirect_uri", REDIRECT)
                .append_pair("scope", "openid profile email offline_access")
                .append_pair("state", "st-123")
                .append_pair("nonce", "n-456");
            if let Some(c) = challenge {
                q.append_pair("code_challenge", c)
                    .append_pair("code_challenge_method", "S256");
            }
            for (k, v) in extra {
                q.append_pair(k, v);
            }
        }
        u.to_string()
    }

    /// GETs an authorize URL that must show the login form.
    pub async fn login_form(&self, authorize_url: &str) -> LoginForm {
        let r = self.client.get(authorize_url).send().await.unwrap();
        assert_eq!(r.status(), 200, "{:?}", r.headers().get("location"));
        let cookie = r
            .headers()
            .get("set-cookie")
            .unwrap()
            .to_str()
            .unwrap()
            .split(';')
            .next()
            .unwrap()
            .to_owned();
        let page = r.text().await.unwrap();
        let marker = "name=\"request\" value=\"";
        let start = page.find(marker).unwrap() + marker.len();
        let end = start + page[start..].find('"').unwrap();
        LoginForm {
            request: page[start..end].to_owned(),
            cookie,
            page,
        }
    }

    pub async fn post_login(
        &self,
        form: &LoginForm,
        username: &str,
        password: &str,
    ) -> reqwest::Response {
        self.post_login_via(form, username, password, None).await
    }

    /// The sign-in form posted through a proxy that appended `forwarded_for` to
    /// `X-Forwarded-For` (the app must trust 127.0.0.1 as a proxy for it to count).
    pub async fn post_login_via(
        &self,
        form: &LoginForm,
        username: &str,
        password: &str,
        forwarded_for: Option<&str>,
    ) -> reqwest::Response {
        let mut request = self.client.post(self.url("/authorize/login"));
        if let Some(hop) = forwarded_for {
            request = request.header("x-forwarded-for", hop);
        }
        request
            .header("cookie", &form.cookie)
            .form(&[
                ("request", form.request.as_str()),
                ("username", username),
                ("password", password),
            ])
            .send()
            .await
            .unwrap()
    }

    /// Signs in through the form and returns the redirect's query (code, state, ...).
    pub async fn authorize(
        &self,
        client_id: &str,
        challenge: &str,
        username: &str,
        password: &str,
    ) -> std::collections::HashMap<String, String> {
        let form = self
            .login_form(&self.authorize_url(client_id, Some(challenge), &[]))
            .await;
        let r = self.post_login(&form, username, password).await;
        assert_eq!(r.status(), 303, "{}", r.text().await.unwrap());
        let location = r
            .headers()
            .get("location")
            .unwrap()
            .to_str()
            .unwrap()
            .to_owned();
        assert!(location.starts_with(REDIRECT), "{location}");
        query_of(&location)
    }

    pub async fn exchange(
        &self,
        client_id: &str,
        secret: Option<&str>,
        code: &str,
        verifier: &str,
    ) -> reqwest::Response {
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", REDIRECT),
            ("code_verifier", verifier),
        ];
        let mut r = self.client.post(self.url("/token"));
        match secret {
            Some(s) => r = r.basic_auth(client_id, Some(s)),
            None => form.push(("client_id", client_id)),
        }
        r.form(&form).send().await.unwrap()
    }

    /// A full code flow for `username` with the web client.
    pub async fn sign_in(&self, username: &str, password: &str) -> Tokens {
        let (verifier, challenge) = pkce();
        let q = self
            .authorize(WEB_CLIENT, &challenge, username, password)
            .await;
        let r = self
            .exchange(WEB_CLIENT, Some(WEB_SECRET), &q["code"], &verifier)
            .await;
        assert_eq!(r.status(), 200);
        tokens(r.json().await.unwrap())
    }

    pub async fn admin_tokens(&self) -> Tokens {
        self.sign_in(ADMIN, ADMIN_PASSWORD).await
    }

    pub async fn refresh(&self, refresh_token: &str) -> reqwest::Response {
        self.client
            .post(self.url("/token"))
            .basic_auth(WEB_CLIENT, Some(WEB_SECRET))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", refresh_token),
            ])
            .send()
            .await
            .unwrap()
    }

    pub async fn client_credentials(
        &self,
        id: &str,
        secret: &str,
        extra: &[(&str, &str)],
    ) -> reqwest::Response {
        let mut form = vec![("grant_type", "client_credentials")];
        form.extend_from_slice(extra);
        self.client
            .post(self.url("/token"))
            .basic_auth(id, Some(secret))
            .form(&form)
            .send()
            .await
            .unwrap()
    }

    /// An access token of the platform operator's console.
    pub async fn platform_token(&self) -> String {
        let r = self
            .client_credentials(PLATFORM_CLIENT, PLATFORM_SECRET, &[])
            .await;
        assert_eq!(r.status(), 200);
        r.json::<Value>().await.unwrap()["access_token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// Ages every signing key past the least interval between rotations, as if the last one
    /// happened minutes ago.
    pub async fn age_signing_keys(&self) {
        self.db
            .client()
            .await
            .execute(
                "UPDATE auth.signing_keys SET created_at = created_at - interval '10 minutes'",
                &[],
            )
            .await
            .unwrap();
    }

    pub async fn rotate_keys(&self, token: &str) -> reqwest::Response {
        self.client
            .post(self.url("/v1/keys/rotate"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn get_with(&self, token: &str, path: &str) -> reqwest::Response {
        self.client
            .get(self.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
    }

    pub async fn create_user(&self, admin_token: &str, username: &str, roles: &[&str]) -> Value {
        let r = self
            .client
            .post(self.url("/v1/users"))
            .bearer_auth(admin_token)
            .json(&json!({
                "username": username,
                "password": format!("{username}-password"),
                "display_name": format!("User {username}"),
                "email": format!("{username}@example.com"),
                "roles": roles,
            }))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 201);
        r.json().await.unwrap()
    }

    pub async fn introspect(&self, token: &str) -> Value {
        let r = self
            .client
            .post(self.url("/introspect"))
            .basic_auth(WEB_CLIENT, Some(WEB_SECRET))
            .form(&[("token", token)])
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    pub async fn metrics(&self) -> String {
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

pub fn tokens(body: Value) -> Tokens {
    Tokens {
        access_token: body["access_token"].as_str().unwrap().to_owned(),
        refresh_token: body["refresh_token"].as_str().map(str::to_owned),
        id_token: body["id_token"].as_str().map(str::to_owned),
        body,
    }
}
