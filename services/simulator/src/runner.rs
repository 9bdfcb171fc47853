//! The live simulation: every tick, each machine of the fleet sends one message.
//!
//! One task paces the whole fleet with a single interval timer (not a task per machine), and
//! the transport keeps many sends in flight, so thousands of machines at high rates fit on a
//! couple of cores.

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use aurum_domain::TenantId;
use aurum_proto::Encoding;
use chrono::Utc;
use serde::Serialize;
use tokio::time::{Instant, MissedTickBehavior};

use crate::degradation::LifecycleParams;
use crate::error::SimError;
use crate::fleet::{self, MachineInfo};
use crate::labels::LabelFile;
use crate::machine::SimMachine;
use crate::transport::{SendStats, Transport, TransportConfig};

/// Everything `aurum-sim run` needs.
#[derive(Debug, Clone)]
pub struct RunConfig {
    pub tenant: TenantId,
    pub machines: Vec<MachineInfo>,
    pub transport: TransportConfig,
    pub encoding: Encoding,
    /// Messages per second per machine.
    pub rate: f64,
    /// Stop after this long.
    pub duration: Option<Duration>,
    /// Stop after this many messages per machine.
    pub count: Option<u64>,
    /// Simulated seconds per wall second.
    pub time_scale: f64,
    pub seed: u64,
    /// Every machine's first seq.
    pub first_seq: u64,
    pub labels_csv: Option<PathBuf>,
    /// How long to wait for outstanding acknowledgements when stopping.
    pub drain_timeout: Duration,
    pub lifecycle: LifecycleParams,
    /// How often progress is logged.
    pub progress_every: Duration,
}

/// The JSON line printed at the end of a run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub published: u64,
    pub acked: u64,
    pub failed: u64,
    pub elapsed_s: f64,
    pub rate_msgs_per_s: f64,
}

impl Summary {
    fn new(stats: &SendStats, elapsed: Duration) -> Self {
        let elapsed_s = elapsed.as_secs_f64();
        let rate = if elapsed_s > 0.0 {
            stats.outcome.acked as f64 / elapsed_s
        } else {
            0.0
        };
        Self {
            published: stats.published,
            acked: stats.outcome.acked,
            failed: stats.outcome.failed,
            elapsed_s: (elapsed_s * 1_000.0).round() / 1_000.0,
            rate_msgs_per_s: (rate * 10.0).round() / 10.0,
        }
    }
}

fn validate(config: &RunConfig) -> Result<Duration, SimError> {
    if config.machines.is_empty() {
        return Err(SimError::InvalidArgument("the fleet is empty".into()));
    }
    // Below one message in 11 days per machine, nothing would happen in any useful time.
    if !(config.rate.is_finite() && config.rate >= 1e-6) {
        return Err(SimError::InvalidArgument(format!(
            "--rate must be at least 0.000001 messages per second, got {}",
            config.rate
        )));
    }
    if !(config.time_scale.is_finite() && config.time_scale > 0.0) {
        return Err(SimError::InvalidArgument(format!(
            "--time-scale must be > 0, got {}",
            config.time_scale
        )));
    }
    let period = Duration::try_from_secs_f64(1.0 / config.rate)
        .map_err(|e| SimError::InvalidArgument(format!("--rate {}: {e}", config.rate)))?;
    if period.is_zero() {
        return Err(SimError::InvalidArgument(format!(
            "--rate {} is too high",
            config.rate
        )));
    }
    Ok(period)
}

/// Builds one message per machine, records its labels and hands it to the transport.
async fn tick(
    machines: &mut [SimMachine],
    dt_sim_s: f64,
    labels: Option<&mut LabelFile>,
    transport: &mut Transport,
) -> Result<(), SimError> {
    let mut labels = labels;
    for (i, machine) in machines.iter_mut().enumerate() {
        let sample = machine.step(dt_sim_s, Utc::now());
        if let Some(labels) = labels.as_deref_mut() {
            labels.write(machine.id().as_str(), sample.seq, sample.ts, &sample.label)?;
        }
        transport.submit(i, sample).await;
    }
    transport.end_of_tick().await;
    Ok(())
}

/// Runs the fleet until `count` messages per machine were sent, `duration` elapsed or
/// `shutdown` completes; then waits (bounded) for acknowledgements and disconnects.
pub async fn run(
    config: RunConfig,
    shutdown: impl Future<Output = ()>,
) -> Result<Summary, SimError> {
    let period = validate(&config)?;
    let dt_sim_s = config.time_scale / config.rate;
    let mut machines = fleet::build(&config.machines, config.seed, config.lifecycle);
    for m in &mut machines {
        m.start_seq_at(config.first_seq);
    }
    let mut labels = config
        .labels_csv
        .as_deref()
        .map(LabelFile::create)
        .transpose()?;
    let mut transport = Transport::connect(
        &config.transport,
        &config.tenant,
        &config.machines,
        config.encoding,
    )
    .await?;

    tracing::info!(
        tenant = %config.tenant,
        machines = machines.len(),
        rate_per_machine = config.rate,
        target_msgs_per_s = config.rate * machines.len() as f64,
        time_scale = config.time_scale,
        simulated_s_per_message = dt_sim_s,
        seed = config.seed,
        encoding = config.encoding.mime(),
        "simulation started"
    );

    let start = Instant::now();
    let mut ticker = tokio::time::interval(period);
    // A load generator catches up after a stall instead of silently sending less.
    ticker.set_missed_tick_behavior(MissedTickBehavior::Burst);
    let mut progress = tokio::time::interval_at(
        start + config.progress_every,
        config.progress_every.max(Duration::from_millis(100)),
    );
    progress.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let far_future = start + Duration::from_secs(100 * 365 * 86_400);
    let stop_at = tokio::time::sleep_until(
        config
            .duration
            .and_then(|d| start.checked_add(d))
            .map_or(far_future, |t| t.min(far_future)),
    );
    tokio::pin!(stop_at);
    tokio::pin!(shutdown);

    let mut ticks = 0u64;
    let mut failure = None;
    let reason = loop {
        if config.count.is_some_and(|c| ticks >= c) {
            break "count reached";
        }
        tokio::select! {
            biased;
            () = &mut shutdown => break "stop requested",
            () = &mut stop_at, if config.duration.is_some() => break "duration elapsed",
            // Before the ticker, which is always ready when the target rate is out of reach.
            _ = progress.tick() => {
                let s = transport.stats();
                tracing::info!(
                    published = s.published,
                    acked = s.outcome.acked,
                    failed = s.outcome.failed,
                    elapsed_s = start.elapsed().as_secs(),
                    "progress"
                );
            }
            _ = ticker.tick() => {
                if let Err(e) = tick(&mut machines, dt_sim_s, labels.as_mut(), &mut transport).await {
                    failure = Some(e);
                    break "error";
                }
                ticks += 1;
            }
            () = transport.harvest(), if transport.has_inflight() => {}
        }
    };
    tracing::info!(
        reason,
        messages_per_machine = ticks,
        "stopping the simulation"
    );

    let stats = transport.drain(config.drain_timeout).await;
    let summary = Summary::new(&stats, start.elapsed());
    transport.close().await;
    let flushed = labels.as_mut().map(LabelFile::flush).transpose();
    log_outcome(&config.transport, &stats);
    if let Some(e) = failure {
        return Err(e);
    }
    flushed?;
    Ok(summary)
}

fn log_outcome(transport: &TransportConfig, stats: &SendStats) {
    match transport {
        TransportConfig::Http(_) => tracing::info!(
            published = stats.published,
            acked = stats.outcome.acked,
            accepted = stats.outcome.accepted,
            rejected = stats.outcome.rejected,
            duplicates = stats.outcome.duplicates,
            failed = stats.outcome.failed,
            "HTTP ingestion summary"
        ),
        TransportConfig::Mqtt { .. } => tracing::info!(
            published = stats.published,
            acked = stats.outcome.acked,
            failed = stats.outcome.failed,
            "MQTT publish summary"
        ),
    }
}
