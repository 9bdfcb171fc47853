//! Layered loading with figment.

use std::path::PathBuf;

use figment::providers::{Env, Format, Serialized, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Provider};
use serde::de::DeserializeOwned;
use serde::Serialize;

const PREFIX: &str = "AURUM_";
const FILE_SUFFIX: &str = "_FILE";

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

/// Loads a service's configuration on top of `defaults`.
pub fn load<T: Serialize + DeserializeOwned>(defaults: &T) -> Result<T, ConfigError> {
    let file = std::env::var("AURUM_CONFIG").unwrap_or_else(|_| "aurumai.toml".to_owned());
    let figment = Figment::from(Serialized::defaults(defaults))
        .merge(Toml::file(file))
        .merge(
            Env::prefixed(PREFIX)
                .filter(|k| !k.as_str().ends_with("_file") && k.as_str() != "config")
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
            let Some(key) = var
                .strip_prefix(PREFIX)
                .and_then(|k| k.strip_suffix(FILE_SUFFIX))
            else {
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
            let key = key.to_ascii_lowercase().replace("__", ".");
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
