//! The real binary's JSON logs of a failed sign-in: the security event with who and from where,
//! and never the password.

use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::helpers::*;

struct Service(Child);

impl Drop for Service {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_login_is_logged_as_a_security_event_without_the_password() {
    let db = aurum_testkit::TestDb::create().await;
    let settings = db.settings("aurumai_auth");
    let port = aurum_testkit::free_port();
    let issuer = format!("http://127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("aurumai.toml");
    std::fs::write(
        &config,
        format!(
            "[[auth.clients]]\nclient_id = \"{WEB_CLIENT}\"\nsecret = \"{WEB_SECRET}\"\n\
             redirect_uris = [\"{REDIRECT}\"]\ngrant_types = [\"authorization_code\"]\n"
        ),
    )
    .unwrap();
    let log_path = dir.path().join("auth.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let child = Command::new(env!("CARGO_BIN_EXE_aurum-auth"))
        .env_clear()
        .env("AURUM_CONFIG", &config)
        .env("AURUM_HTTP__PORT", port.to_string())
        .env("AURUM_AUTH__ISSUER", &issuer)
        .env("AURUM_DATABASE__HOST", &settings.host)
        .env("AURUM_DATABASE__PORT", settings.port.to_string())
        .env("AURUM_DATABASE__NAME", &settings.name)
        .env("AURUM_DATABASE__USER", "aurumai_auth")
        .env(
            "AURUM_DATABASE__ADMIN_USER",
            settings.admin_user.as_deref().unwrap(),
        )
        .env("AURUM_DATABASE__SSLMODE", "disable")
        .env("AURUM_TELEMETRY__LOG_FORMAT", "json")
        .env("AURUM_AUTH__BOOTSTRAP_ADMIN__TENANT", TENANT)
        .env("AURUM_AUTH__BOOTSTRAP_ADMIN__USERNAME", ADMIN)
        .env("AURUM_AUTH__BOOTSTRAP_ADMIN__PASSWORD", ADMIN_PASSWORD)
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let service = Service(child);
    let client = no_redirects();
    assert!(
        aurum_testkit::http_ready(&client, &issuer, Duration::from_secs(30)).await,
        "{}",
        std::fs::read_to_string(&log_path).unwrap()
    );
    let app = TestApp {
        address: issuer.clone(),
        db,
        client,
        config: aurum_auth::AuthConfig::default(),
    };
    let (_, challenge) = pkce();
    let form = app
        .login_form(&app.authorize_url(WEB_CLIENT, Some(&challenge), &[]))
        .await;
    let secret_guess = "Tr0ub4dor-and-3-guess";
    let r = app
        .client
        .post(app.url("/authorize/login"))
        .header("cookie", &form.cookie)
        .header("user-agent", "log-test-agent/1.0")
        .form(&[
            ("request", form.request.as_str()),
            ("username", ADMIN),
            ("password", secret_guess),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    // And a successful one, whose password must not show either.
    let r = app.post_login(&form, ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(r.status(), 303);
    tokio::time::sleep(Duration::from_millis(300)).await;
    drop(service);

    let text = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        !text.contains(secret_guess),
        "a password reached the logs:\n{text}"
    );
    assert!(
        !text.contains(ADMIN_PASSWORD),
        "a password reached the logs:\n{text}"
    );
    assert!(
        !text.contains(WEB_SECRET),
        "a client secret reached the logs"
    );
    assert!(
        !text.contains(&form.request),
        "a signed form token reached the logs"
    );
    let event = text
        .lines()
        .filter(|l| l.starts_with('{'))
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .find(|l| l["event"] == "login_failed")
        .unwrap_or_else(|| panic!("no login_failed event in:\n{text}"));
    assert_eq!(event["level"], "WARN");
    assert_eq!(event["username"], ADMIN);
    assert_eq!(event["ip"], "127.0.0.1");
    assert_eq!(event["user_agent"], "log-test-agent/1.0");
    assert!(event["user"].is_string());
}
