//! The production profile refuses weak settings before anything starts, naming the keys and
//! never the values.

use std::process::Command;

#[test]
fn production_refuses_weak_settings_without_printing_secrets() {
    let secret = "weak-pw-4711";
    let out = Command::new(env!("CARGO_BIN_EXE_aurum-ingestion"))
        .arg("serve")
        .env_clear()
        .env("AURUM_CONFIG", "/nonexistent/aurumai.toml")
        .env("AURUM_PROFILE", "production")
        .env("AURUM_DATABASE__PASSWORD", secret)
        .env("AURUM_DATABASE__SSLMODE", "disable")
        .env("AURUM_MQTT__URL", "mqtt://127.0.0.1:1")
        .env("AURUM_MQTT__PASSWORD", "mosquitto")
        .output()
        .unwrap();
    assert!(
        !out.status.success(),
        "a weak production configuration must not start"
    );
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for key in [
        "database.password",
        "database.sslmode",
        "mqtt.url",
        "mqtt.password",
    ] {
        assert!(text.contains(key), "{key} not reported in:\n{text}");
    }
    assert!(!text.contains(secret), "a secret was printed:\n{text}");
    assert!(
        !text.contains("mosquitto\n") && !text.contains("\"mosquitto\""),
        "{text}"
    );
}

#[test]
fn an_unreadable_secret_file_stops_start_up() {
    let out = Command::new(env!("CARGO_BIN_EXE_aurum-ingestion"))
        .arg("serve")
        .env_clear()
        .env("AURUM_CONFIG", "/nonexistent/aurumai.toml")
        .env("AURUM_DATABASE__PASSWORD_FILE", "/nonexistent/db-password")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("AURUM_DATABASE__PASSWORD_FILE"));
}
