//! Start-up checks: the production profile refuses weak settings.

use std::fmt;

use secrecy::{ExposeSecret, SecretString};

use crate::settings::{DatabaseSettings, MqttSettings, Profile, SslMode};

/// Passwords that ship in examples and default installs; never acceptable in production.
const KNOWN_DEFAULTS: &[&str] = &[
    "password",
    "postgres",
    "admin",
    "changeme",
    "change-me",
    "secret",
    "aurumai",
    "aurum",
    "mosquitto",
    "guest",
    "root",
    "test",
    "123456",
    "12345678",
];

/// Minimum length of a password in production; generated secrets are far longer.
const MIN_PASSWORD_LEN: usize = 16;
/// Minimum length of a signing or encryption key in production (S6).
pub const MIN_SECRET_KEY_BYTES: usize = 32;

/// One reason a configuration is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    pub key: String,
    pub problem: String,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.problem)
    }
}

fn problem(key: &str, problem: impl Into<String>) -> ConfigProblem {
    ConfigProblem {
        key: key.to_owned(),
        problem: problem.into(),
    }
}

fn weak_password(key: &str, pw: Option<&SecretString>, out: &mut Vec<ConfigProblem>) {
    match pw.map(|p| p.expose_secret()) {
        None | Some("") => out.push(problem(key, "is empty; production needs a password")),
        Some(p) if KNOWN_DEFAULTS.contains(&p.to_ascii_lowercase().as_str()) => {
            out.push(problem(key, "is a well-known default password"))
        }
        Some(p) if p.chars().count() < MIN_PASSWORD_LEN => out.push(problem(
            key,
            format!("is shorter than {MIN_PASSWORD_LEN} characters"),
        )),
        Some(_) => {}
    }
}

impl DatabaseSettings {
    /// Problems that make this unfit for `profile` (empty in dev unless plainly broken).
    pub fn problems(&self, profile: Profile) -> Vec<ConfigProblem> {
        let mut out = Vec::new();
        if self.pool_max_size == 0 {
            out.push(problem("database.pool_max_size", "must be at least 1"));
        }
        if profile == Profile::Production {
            weak_password("database.password", self.password.as_ref(), &mut out);
            if matches!(self.sslmode, SslMode::Disable | SslMode::Prefer) {
                out.push(problem(
                    "database.sslmode",
                    "must be require, verify-ca or verify-full in production",
                ));
            }
        }
        if matches!(self.sslmode, SslMode::VerifyCa | SslMode::VerifyFull)
            && self.sslrootcert.is_none()
        {
            out.push(problem(
                "database.sslrootcert",
                "is needed to verify the server certificate",
            ));
        }
        out
    }
}

impl MqttSettings {
    pub fn problems(&self, profile: Profile) -> Vec<ConfigProblem> {
        let mut out = Vec::new();
        let known = ["mqtt://", "mqtts://", "tcp://", "ssl://"];
        if !known.iter().any(|s| self.url.starts_with(s)) {
            out.push(problem("mqtt.url", "must start with mqtt:// or mqtts://"));
        }
        if self.cert_file.is_some() != self.key_file.is_some() {
            out.push(problem(
                "mqtt.cert_file",
                "client certificate and key must be given together",
            ));
        }
        if profile == Profile::Production {
            if !self.is_tls() {
                out.push(problem(
                    "mqtt.url",
                    "plaintext MQTT is refused in production: use mqtts://",
                ));
            }
            if self.cert_file.is_none() {
                weak_password("mqtt.password", self.password.as_ref(), &mut out);
            }
        }
        out
    }
}

/// Checks a signing or encryption key's length (S6).
pub fn check_secret_key(
    key: &str,
    secret: &SecretString,
    profile: Profile,
) -> Option<ConfigProblem> {
    let len = secret.expose_secret().len();
    (profile == Profile::Production && len < MIN_SECRET_KEY_BYTES).then(|| {
        problem(
            key,
            format!("must be at least {MIN_SECRET_KEY_BYTES} bytes, is {len}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn prod_db() -> DatabaseSettings {
        let mut db = DatabaseSettings::local("aurumai", "aurumai_ingestion");
        db.password = Some(SecretString::from("b6f1c0a9e2d84f7a93c5d1e0f2a4b6c8"));
        db.sslmode = SslMode::Require;
        db
    }

    #[test]
    fn production_accepts_a_strong_tls_database() {
        assert!(prod_db().problems(Profile::Production).is_empty());
    }

    #[test]
    fn production_refuses_default_short_and_missing_passwords() {
        for pw in [None, Some("postgres"), Some("short-pass")] {
            let mut db = prod_db();
            db.password = pw.map(SecretString::from);
            let problems = db.problems(Profile::Production);
            assert_eq!(problems.len(), 1, "{pw:?}: {problems:?}");
            assert_eq!(problems[0].key, "database.password");
        }
    }

    #[test]
    fn production_refuses_a_database_without_tls() {
        let mut db = prod_db();
        db.sslmode = SslMode::Disable;
        assert_eq!(db.problems(Profile::Production)[0].key, "database.sslmode");
        assert!(db.problems(Profile::Dev).is_empty());
    }

    #[test]
    fn production_refuses_plaintext_mqtt() {
        let mut m = MqttSettings::local("ingestion");
        m.password = Some(SecretString::from("0f3a9c1e7b5d4a2f8e6c0b1d3a5f7e9c"));
        assert_eq!(m.problems(Profile::Production)[0].key, "mqtt.url");
        m.url = "mqtts://broker:8883".into();
        assert!(m.problems(Profile::Production).is_empty());
    }

    #[test]
    fn short_signing_keys_are_refused_in_production() {
        let key = SecretString::from("too-short");
        assert!(check_secret_key("auth.signing_key", &key, Profile::Production).is_some());
        assert!(check_secret_key("auth.signing_key", &key, Profile::Dev).is_none());
        let long = SecretString::from("x".repeat(32));
        assert!(check_secret_key("auth.signing_key", &long, Profile::Production).is_none());
    }

    #[test]
    fn debug_output_never_shows_secrets() {
        let mut db = prod_db();
        db.admin_password = Some(SecretString::from("admin-secret-value-123"));
        let shown = format!("{db:?}");
        assert!(!shown.contains("b6f1c0a9"), "{shown}");
        assert!(!shown.contains("admin-secret"), "{shown}");
        let mut m = MqttSettings::local("x");
        m.password = Some(SecretString::from("mqtt-secret-value-456"));
        assert!(!format!("{m:?}").contains("mqtt-secret"));
    }
}
