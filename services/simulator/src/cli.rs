//! The `aurum-sim` command line.

use std::convert::Infallible;
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::time::Duration;

use aurum_config::MqttSettings;
use aurum_domain::TenantId;
use aurum_proto::Encoding;
use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};
use secrecy::SecretString;

use crate::dataset::{self, DatasetOptions};
use crate::degradation::LifecycleParams;
use crate::error::SimError;
use crate::fleet::{FleetSpec, MachineInfo};
use crate::runner::{self, RunConfig, Summary};
use crate::transport::{HttpOptions, TransportConfig};

/// AurumAI fleet simulator: machines that wear out and fail, publishing telemetry like real
/// ones; also the platform's load generator and training-data generator.
#[derive(Debug, Parser)]
#[command(name = "aurum-sim", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Simulate a fleet live, over MQTT or HTTP.
    Run(Box<RunArgs>),
    /// Generate complete run-to-failure runs offline, as CSV.
    Dataset(DatasetArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TransportKind {
    Mqtt,
    Http,
}

/// Which lifecycle the simulated machines follow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LifecycleArg {
    /// Weeks of normal operation, a fault developing over days, repairs of hours: training
    /// data for a 72 h failure horizon.
    Field,
    /// Whole runs in a few simulated hours, for the live demo.
    Demo,
}

impl LifecycleArg {
    pub fn params(self) -> LifecycleParams {
        match self {
            LifecycleArg::Field => LifecycleParams::field(),
            LifecycleArg::Demo => LifecycleParams::demo(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum EncodingArg {
    Json,
    Protobuf,
}

impl From<EncodingArg> for Encoding {
    fn from(e: EncodingArg) -> Self {
        match e {
            EncodingArg::Json => Encoding::Json,
            EncodingArg::Protobuf => Encoding::Protobuf,
        }
    }
}

fn parse_secret(s: &str) -> Result<SecretString, Infallible> {
    Ok(SecretString::from(s))
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Tenant the machines belong to.
    #[arg(long, env = "AURUM_TENANT", default_value = "demo")]
    pub tenant: String,
    #[arg(long, value_enum, default_value_t = TransportKind::Mqtt)]
    pub transport: TransportKind,
    /// Broker URL: mqtt://host:1883 or mqtts://host:8883.
    #[arg(long, env = "AURUM_MQTT_URL", default_value = "mqtt://127.0.0.1:1883")]
    pub mqtt_url: String,
    #[arg(long, env = "AURUM_MQTT_USERNAME")]
    pub mqtt_username: Option<String>,
    #[arg(long, env = "AURUM_MQTT_PASSWORD", hide_env_values = true, value_parser = parse_secret)]
    pub mqtt_password: Option<SecretString>,
    /// CA bundle (PEM) that signed the broker's certificate, for mqtts://.
    #[arg(long, env = "AURUM_MQTT_CA_FILE")]
    pub mqtt_ca_file: Option<PathBuf>,
    /// Base URL of the ingestion service, for --transport http.
    #[arg(
        long,
        env = "AURUM_INGESTION_URL",
        default_value = "http://127.0.0.1:8081"
    )]
    pub ingestion_url: String,
    #[arg(long, value_enum, default_value_t = EncodingArg::Json)]
    pub encoding: EncodingArg,
    /// Simulate exactly the demo fleet: TRUCK-21, MILL-3, BOILER-7 (the default).
    #[arg(long, conflicts_with = "machines")]
    pub seed_fleet: bool,
    /// Simulate N machines (TRUCK-001, MILL-001, BOILER-001, TRUCK-002, ...).
    #[arg(long, value_name = "N")]
    pub machines: Option<usize>,
    /// Simulate only this machine of the fleet (repeatable): a device with its own MQTT
    /// credentials may publish only its own machine's telemetry.
    #[arg(long, value_name = "ID")]
    pub only: Vec<String>,
    /// Messages per second per machine.
    #[arg(long, default_value_t = 1.0)]
    pub rate: f64,
    /// Stop after this many seconds (default: run until SIGINT/SIGTERM).
    #[arg(long)]
    pub duration_s: Option<f64>,
    /// Stop after this many messages per machine.
    #[arg(long)]
    pub count: Option<u64>,
    /// Simulated seconds per wall second (60: one simulated minute per second).
    #[arg(long, default_value_t = 60.0)]
    pub time_scale: f64,
    /// Seed of the random generators (default: random, and logged).
    #[arg(long)]
    pub seed: Option<u64>,
    /// The first message's seq for every machine (default: microseconds since the Unix epoch,
    /// so a restarted simulator never reuses a seq the platform already stored).
    #[arg(long)]
    pub first_seq: Option<u64>,
    /// Write the ground-truth labels of every message sent to this CSV file.
    #[arg(long)]
    pub labels_csv: Option<PathBuf>,
    /// Messages per HTTP batch.
    #[arg(long, default_value_t = 100)]
    pub batch_size: usize,
    /// HTTP batches in flight at once.
    #[arg(long, default_value_t = 8)]
    pub http_concurrency: usize,
    /// MQTT publishes awaiting their acknowledgement at once.
    #[arg(long, default_value_t = 1000)]
    pub max_inflight: usize,
    /// MQTT client id (default: aurum-sim-<random>).
    #[arg(long)]
    pub client_id: Option<String>,
    /// Seconds to wait for outstanding acknowledgements when stopping.
    #[arg(long, default_value_t = 10.0)]
    pub drain_timeout_s: f64,
    /// Print the fleet as JSON lines ({"id":..,"machine_type":..}) and exit.
    #[arg(long)]
    pub print_machines: bool,
}

#[derive(Debug, Args)]
pub struct DatasetArgs {
    /// Number of complete run-to-failure runs.
    #[arg(long)]
    pub runs: usize,
    /// Output CSV file (`-` for standard output).
    #[arg(long)]
    pub out: PathBuf,
    #[arg(long, default_value_t = 42)]
    pub seed: u64,
    /// Simulated seconds between two messages of a machine.
    #[arg(long, default_value_t = 60.0)]
    pub interval_s: f64,
    /// Spread the runs over N machines (default: the demo fleet).
    #[arg(long, value_name = "N")]
    pub machines: Option<usize>,
    /// Timestamp of the first message (RFC 3339).
    #[arg(long, default_value = "2026-01-01T00:00:00Z")]
    pub start: DateTime<Utc>,
    /// Lifecycle profile: `field` (weeks per run, for training) or `demo` (hours per run).
    #[arg(long, value_enum, default_value_t = LifecycleArg::Field)]
    pub lifecycle: LifecycleArg,
}

fn fleet_spec(machines: Option<usize>) -> Result<FleetSpec, SimError> {
    match machines {
        None => Ok(FleetSpec::Seed),
        Some(0) => Err(SimError::InvalidArgument(
            "--machines must be at least 1".into(),
        )),
        Some(n) => Ok(FleetSpec::Numbered(n)),
    }
}

fn seconds(name: &str, s: f64) -> Result<Duration, SimError> {
    Duration::try_from_secs_f64(s)
        .map_err(|e| SimError::InvalidArgument(format!("{name} {s}: {e}")))
}

impl RunArgs {
    /// The run configuration these arguments describe.
    pub fn to_config(&self) -> Result<RunConfig, SimError> {
        let tenant = TenantId::parse(&self.tenant)?;
        let mut machines = fleet_spec(self.machines)?.machines()?;
        if !self.only.is_empty() {
            if let Some(unknown) = self
                .only
                .iter()
                .find(|id| !machines.iter().any(|m| m.id.as_str() == id.as_str()))
            {
                return Err(SimError::InvalidArgument(format!(
                    "--only {unknown}: no such machine in the fleet"
                )));
            }
            machines.retain(|m| self.only.iter().any(|id| id == m.id.as_str()));
        }
        let transport = match self.transport {
            TransportKind::Mqtt => {
                let client_id = self
                    .client_id
                    .clone()
                    .unwrap_or_else(|| format!("aurum-sim-{:08x}", rand::random::<u32>()));
                let mut settings = MqttSettings::local(&client_id);
                settings.url.clone_from(&self.mqtt_url);
                settings.username.clone_from(&self.mqtt_username);
                settings.password.clone_from(&self.mqtt_password);
                settings.ca_file.clone_from(&self.mqtt_ca_file);
                TransportConfig::Mqtt {
                    settings,
                    max_inflight: self.max_inflight.max(1),
                }
            }
            TransportKind::Http => TransportConfig::Http(HttpOptions {
                ingestion_url: self.ingestion_url.clone(),
                batch_size: self.batch_size.max(1),
                concurrency: self.http_concurrency.max(1),
                request_timeout: Duration::from_secs(30),
            }),
        };
        Ok(RunConfig {
            tenant,
            machines,
            transport,
            encoding: self.encoding.into(),
            rate: self.rate,
            duration: self
                .duration_s
                .map(|s| seconds("--duration-s", s))
                .transpose()?,
            count: self.count,
            time_scale: self.time_scale,
            seed: self.seed.unwrap_or_else(rand::random),
            first_seq: self.first_seq.unwrap_or_else(|| {
                u64::try_from(chrono::Utc::now().timestamp_micros()).unwrap_or(1)
            }),
            labels_csv: self.labels_csv.clone(),
            drain_timeout: seconds("--drain-timeout-s", self.drain_timeout_s)?,
            lifecycle: LifecycleParams::default(),
            progress_every: Duration::from_secs(10),
        })
    }
}

impl DatasetArgs {
    pub fn to_options(&self) -> Result<DatasetOptions, SimError> {
        if !(self.interval_s.is_finite() && self.interval_s >= 0.001 && self.interval_s <= 3_600.0)
        {
            return Err(SimError::InvalidArgument(format!(
                "--interval-s must be within [0.001, 3600], got {}",
                self.interval_s
            )));
        }
        Ok(DatasetOptions {
            runs: self.runs,
            seed: self.seed,
            interval_s: self.interval_s,
            start: self.start,
            machines: fleet_spec(self.machines)?.machines()?,
            params: self.lifecycle.params(),
        })
    }
}

#[allow(clippy::print_stdout)]
fn print_machines(machines: &[MachineInfo]) -> Result<(), SimError> {
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for m in machines {
        let line = serde_json::to_string(m).map_err(std::io::Error::other)?;
        writeln!(out, "{line}")?;
    }
    out.flush()?;
    Ok(())
}

#[allow(clippy::print_stdout)]
fn print_json_line<T: serde::Serialize>(value: &T) -> Result<(), SimError> {
    let line = serde_json::to_string(value).map_err(std::io::Error::other)?;
    println!("{line}");
    Ok(())
}

fn run_dataset(args: &DatasetArgs) -> Result<(), SimError> {
    let options = args.to_options()?;
    tracing::info!(runs = options.runs, seed = options.seed, interval_s = options.interval_s, out = %args.out.display(), "generating dataset");
    let stats = if args.out.as_os_str() == "-" {
        dataset::generate(&options, BufWriter::new(std::io::stdout().lock()))?
    } else {
        let file = std::fs::File::create(&args.out).map_err(|e| SimError::file(&args.out, e))?;
        let stats =
            dataset::generate(&options, BufWriter::with_capacity(1 << 20, file)).map_err(|e| {
                match e {
                    SimError::Io(io) => SimError::file(&args.out, io),
                    other => other,
                }
            })?;
        print_json_line(&serde_json::json!({
            "runs": stats.runs,
            "rows": stats.rows,
            "out": args.out.display().to_string(),
        }))?;
        stats
    };
    tracing::info!(runs = stats.runs, rows = stats.rows, "dataset written");
    Ok(())
}

fn run_live(args: &RunArgs) -> Result<(), SimError> {
    let config = args.to_config()?;
    if args.print_machines {
        return print_machines(&config.machines);
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let summary: Summary = runtime.block_on(runner::run(config, crate::shutdown::signal()))?;
    print_json_line(&summary)
}

/// Runs a parsed command line.
pub fn execute(cli: Cli) -> Result<(), SimError> {
    match cli.command {
        Command::Run(args) => run_live(&args),
        Command::Dataset(args) => run_dataset(&args),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn seed_fleet_and_machines_conflict() {
        assert!(
            Cli::try_parse_from(["aurum-sim", "run", "--seed-fleet", "--machines", "3"]).is_err()
        );
    }

    #[test]
    fn only_keeps_the_named_machines_of_the_fleet() {
        let run = |extra: &[&str]| {
            let mut argv = vec!["aurum-sim", "run", "--seed-fleet"];
            argv.extend_from_slice(extra);
            let Command::Run(args) = Cli::try_parse_from(argv).unwrap().command else {
                panic!("not run")
            };
            args.to_config()
        };
        let one = run(&["--only", "MILL-3"]).unwrap();
        assert_eq!(one.machines.len(), 1);
        assert_eq!(one.machines[0].id.as_str(), "MILL-3");
        assert!(run(&["--only", "NOPE-1"]).is_err());
    }

    #[test]
    fn defaults() {
        let cli =
            Cli::try_parse_from(["aurum-sim", "run", "--count", "1", "--client-id", "x"]).unwrap();
        let Command::Run(args) = cli.command else {
            panic!("not run")
        };
        let config = args.to_config().unwrap();
        assert_eq!(config.machines.len(), 3);
        assert_eq!(config.rate, 1.0);
        assert_eq!(config.time_scale, 60.0);
        assert_eq!(config.encoding, Encoding::Json);
        match config.transport {
            TransportConfig::Mqtt {
                settings,
                max_inflight,
            } => {
                assert_eq!(max_inflight, 1000);
                assert_eq!(settings.client_id, "x");
            }
            TransportConfig::Http(_) => panic!("mqtt is the default"),
        }
    }

    #[test]
    fn datasets_use_the_field_lifecycle_unless_told_otherwise() {
        let parse = |extra: &[&str]| {
            let mut argv = vec!["aurum-sim", "dataset", "--runs", "3", "--out", "-"];
            argv.extend_from_slice(extra);
            let Command::Dataset(args) = Cli::try_parse_from(argv).unwrap().command else {
                panic!("not dataset")
            };
            args.to_options().unwrap().params
        };
        assert_eq!(parse(&[]), LifecycleParams::field());
        assert_eq!(parse(&["--lifecycle", "field"]), LifecycleParams::field());
        assert_eq!(parse(&["--lifecycle", "demo"]), LifecycleParams::demo());
        assert!(Cli::try_parse_from([
            "aurum-sim",
            "dataset",
            "--runs",
            "3",
            "--out",
            "-",
            "--lifecycle",
            "lab"
        ])
        .is_err());
    }

    #[test]
    fn the_password_never_shows_in_debug_output() {
        let cli = Cli::try_parse_from(["aurum-sim", "run", "--mqtt-password", "hunter2"]).unwrap();
        assert!(!format!("{cli:?}").contains("hunter2"));
        let Command::Run(args) = cli.command else {
            panic!("not run")
        };
        assert!(!format!("{:?}", args.to_config().unwrap()).contains("hunter2"));
    }

    #[test]
    fn a_bad_tenant_is_refused() {
        let cli = Cli::try_parse_from(["aurum-sim", "run", "--tenant", "a/b"]).unwrap();
        let Command::Run(args) = cli.command else {
            panic!("not run")
        };
        assert!(args.to_config().is_err());
    }
}
