//! Layered loading with figment.

use std::path::PathBuf;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Provider};
use serde::de::DeserializeOwned;
use serde::Serialize;

const PREFIX: &str = "AURUM_";
const FILE_SUFFIX: &str = "_FILE";

/// Settings that may come from a secret file. Only these: other keys legitimately end in
/// `_file` (`mqtt.ca_file` is a path, not a secret).
const SECRET_KEYS: &[&str] = &[
    "password",
    "admin_password",
    "signing_key",
    "client_secret",
    "bootstrap_password",
    "key_encryption_key",
];

/// `AURUM_DATABASE__PASSWORD_FILE` -> `Some("database.password")`.
fn secret_file_key(var: &str) -> Option<String> {
    let key = var.strip_prefix(PREFIX)?.strip_suffix(FILE_SUFFIX)?;
    let key = key.to_ascii_lowercase().replace("__", ".");
    let last = key.rsplit('.').next()?;
    SECRET_KEYS.contains(&last).then_some(key)
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("invalid configuration: {0}")]
    Invalid(Box<figment::Error>),
    #[error("cannot read secret file {path} (from {var}): {source}")]
    SecretFile {
        var: String,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("configuration refused:\n{}", .0.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n"))]
    Refused(Vec<crate::ConfigProblem>),
}

/// Loads a service's configuration on top of `defaults`, then refuses it when `problems`
/// finds any (weak settings under the production profile, out-of-range values).
pub fn load_checked<T: Serialize + DeserializeOwned>(
    defaults: &T,
    problems: impl Fn(&T) -> Vec<crate::ConfigProblem>,
) -> Result<T, ConfigError> {
    let config = load(defaults)?;
    let found = problems(&config);
    if found.is_empty() {
        Ok(config)
    } else {
        Err(ConfigError::Refused(found))
    }
}

/// Loads a service's configuration on top of `defaults`.
pub fn load<T: Serialize + DeserializeOwned>(defaults: &T) -> Result<T, ConfigError> {
    let file = std::env::var("AURUM_CONFIG").unwrap_or_else(|_| "aurumai.toml".to_owned());
    let figment = Figment::from(Serialized::defaults(defaults))
        .merge(Toml::file(file))
        .merge(
            Env::prefixed(PREFIX)
                .filter(|k| {
                    let var = format!("{PREFIX}{}", k.as_str().to_ascii_uppercase());
                    secret_file_key(&var).is_none() && !k.as_str().eq_ignore_ascii_case("config")
                })
                .split("__"),
        )
        .merge(SecretFiles::from_env()?);
    figment
        .extract()
        .map_err(|e| ConfigError::Invalid(Box::new(e)))
}

/// `AURUM_A__B_FILE=/path` provides `a.b` = the file's content (without the trailing newline).
#[derive(Debug)]
struct SecretFiles(Dict);

impl SecretFiles {
    fn from_env() -> Result<Self, ConfigError> {
        let mut dict = Dict::new();
        for (var, path) in std::env::vars() {
            let Some(key) = secret_file_key(&var) else {
                continue;
            };
            let path = PathBuf::from(path);
            let content =
                std::fs::read_to_string(&path).map_err(|source| ConfigError::SecretFile {
                    var: var.clone(),
                    path: path.clone(),
                    source,
                })?;
            let value = content.trim_end_matches(['\n', '\r']).to_owned();
            if let Value::Dict(_, nested) = figment::util::nest(&key, Value::from(value)) {
                merge(&mut dict, nested);
            }
        }
        Ok(Self(dict))
    }
}

fn merge(into: &mut Dict, from: Dict) {
    for (k, v) in from {
        match (into.get_mut(&k), v) {
            (Some(Value::Dict(_, existing)), Value::Dict(_, new)) => merge(existing, new),
            (_, v) => {
                into.insert(k, v);
            }
        }
    }
}

impl Provider for SecretFiles {
    fn metadata(&self) -> Metadata {
        Metadata::named("AURUM_*_FILE secret files")
    }

    fn data(&self) -> Result<Map<figment::Profile, Dict>, figment::Error> {
        Ok(Map::from([(figment::Profile::Default, self.0.clone())]))
    }
}

#[cfg(test)]
// figment's Jail fixes the closure's error type.
#[allow(clippy::result_large_err)]
mod tests {
    use super::*;
    use crate::{DatabaseSettings, MqttSettings};
    use secrecy::ExposeSecret;
    use serde::Deserialize;

    #[derive(Debug, Serialize, Deserialize)]
    struct Cfg {
        database: DatabaseSettings,
        mqtt: MqttSettings,
    }

    fn defaults() -> Cfg {
        Cfg {
            database: DatabaseSettings::local("aurumai", "svc"),
            mqtt: MqttSettings::local("svc"),
        }
    }

    #[test]
    fn only_secret_keys_come_from_files() {
        assert_eq!(
            secret_file_key("AURUM_DATABASE__PASSWORD_FILE").as_deref(),
            Some("database.password")
        );
        assert_eq!(
            secret_file_key("AURUM_AUTH__KEY_ENCRYPTION_KEY_FILE").as_deref(),
            Some("auth.key_encryption_key")
        );
        assert_eq!(secret_file_key("AURUM_MQTT__CA_FILE"), None);
        assert_eq!(secret_file_key("OTHER_PASSWORD_FILE"), None);
    }

    #[test]
    fn layers_apply_in_order_defaults_file_env_secret_files() {
        figment::Jail::expect_with(|jail| {
            jail.create_file(
                "aurumai.toml",
                "[database]\nhost = \"db.internal\"\nport = 6432\n",
            )?;
            jail.create_file("db-password", "from-a-secret-file\n")?;
            jail.set_env("AURUM_DATABASE__PORT", "7432");
            jail.set_env("AURUM_DATABASE__PASSWORD", "from-the-environment");
            jail.set_env("AURUM_DATABASE__PASSWORD_FILE", "db-password");
            jail.set_env("AURUM_MQTT__CA_FILE", "/etc/aurumai/ca.pem");
            let cfg: Cfg = load(&defaults()).map_err(|e| e.to_string())?;
            assert_eq!(cfg.database.host, "db.internal"); // file over defaults
            assert_eq!(cfg.database.port, 7432); // environment over file
            assert_eq!(cfg.database.name, "aurumai"); // defaults
            let pw = cfg
                .database
                .password
                .as_ref()
                .map(|p| p.expose_secret().to_owned());
            assert_eq!(pw.as_deref(), Some("from-a-secret-file")); // secret file over environment
            assert_eq!(
                cfg.mqtt.ca_file.as_deref(),
                Some(std::path::Path::new("/etc/aurumai/ca.pem"))
            );
            Ok(())
        });
    }

    #[test]
    fn an_unreadable_secret_file_stops_start_up() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("AURUM_DATABASE__PASSWORD_FILE", "/nonexistent/secret");
            match load(&defaults()) {
                Err(ConfigError::SecretFile { var, .. }) => {
                    assert_eq!(var, "AURUM_DATABASE__PASSWORD_FILE")
                }
                other => panic!("expected a secret file error, got {other:?}"),
            }
            Ok(())
        });
    }
}
