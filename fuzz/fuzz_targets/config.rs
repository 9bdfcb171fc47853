//! Configuration files: `aurum_ingestion::IngestionConfig::load`, i.e. `aurum_config::
//! load_checked` (figment: service defaults, then the TOML file named by `AURUM_CONFIG`, then
//! the environment) and the service's checks, on the fuzzed TOML; then what the service
//! derives from an accepted configuration at start-up (`IngestSettings::validation_policy`)
//! applied to a message, as the first message would be.
//!
//! No function takes the TOML as text, so the input is written to a file of this process's
//! own (under `TMPDIR`) that `AURUM_CONFIG` names; other `AURUM_*` variables are removed at
//! start so the environment layer is empty.
//!
//! Properties: a configuration the checks accept can be used: deriving the validation policy
//! and validating a message with it do not panic. Loading is idempotent: the accepted
//! configuration as the defaults, under the same file, loads into the same configuration.
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use aurum_domain::telemetry::{RawReading, RawValue};
use aurum_domain::{MachineId, MachineType, Profile, Seq, TelemetryMessage};
use aurum_ingestion::IngestionConfig;
use libfuzzer_sys::fuzz_target;

#[allow(clippy::expect_used)]
fn config_file() -> &'static PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let path =
            std::env::temp_dir().join(format!("aurum-fuzz-config-{}.toml", std::process::id()));
        let ours: Vec<String> = std::env::vars_os()
            .filter_map(|(k, _)| k.into_string().ok())
            .filter(|k| k.starts_with("AURUM_"))
            .collect();
        for k in ours {
            std::env::remove_var(k);
        }
        std::env::set_var("AURUM_CONFIG", &path);
        path
    })
}

fuzz_target!(|data: &[u8]| {
    let file = config_file();
    if std::fs::write(file, data).is_err() {
        return;
    }
    let Ok(config) = IngestionConfig::load() else {
        return;
    };

    let policy = config.ingest.validation_policy();
    let now = chrono::Utc::now();
    let msg = TelemetryMessage {
        machine_id: MachineId::parse("TRUCK-21").unwrap_or_else(|_| unreachable!()),
        seq: Seq::new(1).unwrap_or_else(|_| unreachable!()),
        ts: now,
        readings: vec![RawReading {
            metric: "rpm".into(),
            value: RawValue::Number(1500.0),
        }],
    };
    let v = policy.validate(&msg, &Profile::builtin(MachineType::HaulTruck), now);
    assert_eq!(v.accepted.len() + v.rejected.len(), 1);

    let again: IngestionConfig = match aurum_config::load(&config) {
        Ok(c) => c,
        Err(e) => panic!("an accepted configuration does not load over itself: {e}"),
    };
    let json = |c: &IngestionConfig| serde_json::to_value(c).ok();
    assert_eq!(json(&again), json(&config));
});
