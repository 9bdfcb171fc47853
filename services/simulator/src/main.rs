//! `aurum-sim`: see `aurum-sim --help`.

use std::process::ExitCode;

use aurum_simulator::cli::{self, Cli};
use clap::Parser;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    // With TZ unset, glibc re-checks /etc/localtime on every localtime() call, which the
    // MQTT client library makes several times per message. The same zone named explicitly
    // is cached. Done first, while the process has a single thread.
    if std::env::var_os("TZ").is_none() {
        std::env::set_var("TZ", ":/etc/localtime");
    }
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .init();
    match cli::execute(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!(error = %e, "aurum-sim failed");
            ExitCode::FAILURE
        }
    }
}
