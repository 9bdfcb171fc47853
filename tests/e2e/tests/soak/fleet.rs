//! The soak's devices: one MQTT v5 connection per machine, logged in with the device account
//! provisioned for it through the API, publishing QoS 1 telemetry at a rate the soak sets.
//!
//! Every message is unique by (machine, seq): each machine numbers its messages 1, 2, 3...
//! and a message, once built, is sent again byte for byte until the broker acknowledges it
//! (across broker restarts, with a new attempt after an error or 10 s without an answer).
//! So after the soak each machine must have exactly the rows with seq 1..=issued.
//!
//! Two kinds of device. *Load* devices carry the throughput: timestamps are the wall clock,
//! thousands of messages a second. *Probe* devices are what prediction is judged on: one
//! message a second of wall-clock time, but ten minutes apart in device time (starting
//! almost a week back, within what ingestion accepts), the cadence the models were trained
//! on: a window's count, slope and spread then mean what they meant in training. At load
//! cadence every machine looks unlike the healthy fleet, whatever it sends. A probe's
//! readings come from the simulator's haul truck (`aurum_simulator::machine::SimMachine`),
//! kept in its normal phase; an anomalous probe's vibration and temperature are replaced by
//! a shaking, overheating truck's.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use aurum_domain::{MachineId, MachineType};
use aurum_mqtt::Publisher;
use aurum_simulator::degradation::LifecycleParams;
use aurum_simulator::machine::SimMachine;
use aurum_testkit::Broker;
use chrono::{DateTime, SecondsFormat, TimeDelta, Utc};
use serde_json::{json, Map, Value};
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use crate::harness::{truck_reading, TENANT};

/// Unacknowledged publishes one device keeps in flight.
const IN_FLIGHT: u32 = 64;
/// A device that fell behind its rate (broker away) catches up at most this much.
const MAX_DEBT: Duration = Duration::from_secs(2);
/// How long one attempt waits for the broker's acknowledgement.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);

/// A machine the fleet publishes for, with its device login.
#[derive(Debug, Clone)]
pub struct Device {
    pub machine: String,
    pub username: String,
    pub password: String,
    /// Shaking and running hot from the first message on: prediction must raise an alert.
    pub anomalous: bool,
    /// A probe (one message a second, ten device minutes apart) rather than load.
    pub probe: bool,
}

/// Device time between two messages of a probe.
const PROBE_STEP_S: i64 = 600;

/// What the fleet has done so far.
#[derive(Debug, Default)]
pub struct Counters {
    /// Publishes the broker acknowledged (each message once, however many attempts).
    pub acked: AtomicU64,
    /// Attempts that failed or timed out and were made again.
    pub retries: AtomicU64,
}

/// The fleet's rate: messages per second over all machines; infinite for as fast as it
/// goes, zero for paused. Each change starts a new pacing phase.
#[derive(Debug)]
struct Control {
    rate_bits: AtomicU64,
    phase: AtomicU64,
    stop: AtomicBool,
}

struct Machine {
    name: String,
    issued: Arc<AtomicU64>,
    in_flight: Arc<Semaphore>,
    task: JoinHandle<()>,
}

pub struct Fleet {
    machines: Vec<Machine>,
    control: Arc<Control>,
    pub counters: Arc<Counters>,
}

impl Fleet {
    /// Connects every device and starts them paused.
    pub async fn start(broker: &Broker, devices: &[Device]) -> Self {
        let control = Arc::new(Control {
            rate_bits: AtomicU64::new(0f64.to_bits()),
            phase: AtomicU64::new(0),
            stop: AtomicBool::new(false),
        });
        let counters = Arc::new(Counters::default());
        let mut machines = Vec::new();
        let share = 1.0 / devices.iter().filter(|d| !d.probe).count().max(1) as f64;
        for d in devices {
            let settings = broker.settings(
                &format!("soak-{}", d.machine),
                Some((&d.username, &d.password)),
            );
            let publisher = Arc::new(
                Publisher::connect(&settings, IN_FLIGHT as i32)
                    .await
                    .unwrap_or_else(|e| panic!("device of {} cannot connect: {e}", d.machine)),
            );
            let issued = Arc::new(AtomicU64::new(0));
            let in_flight = Arc::new(Semaphore::new(IN_FLIGHT as usize));
            let task = tokio::spawn(run_device(
                d.clone(),
                share,
                publisher,
                Arc::clone(&control),
                Arc::clone(&counters),
                Arc::clone(&issued),
                Arc::clone(&in_flight),
            ));
            machines.push(Machine {
                name: d.machine.clone(),
                issued,
                in_flight,
                task,
            });
        }
        Self {
            machines,
            control,
            counters,
        }
    }

    /// Messages per second over the whole fleet (`f64::INFINITY`: as fast as it goes).
    pub fn set_rate(&self, rate: f64) {
        self.control
            .rate_bits
            .store(rate.to_bits(), Ordering::SeqCst);
        self.control.phase.fetch_add(1, Ordering::SeqCst);
    }

    /// Messages built so far (each is retried until acknowledged).
    pub fn issued(&self) -> u64 {
        self.machines
            .iter()
            .map(|m| m.issued.load(Ordering::SeqCst))
            .sum()
    }

    pub fn acked(&self) -> u64 {
        self.counters.acked.load(Ordering::SeqCst)
    }

    /// Pauses and waits until every built message is acknowledged; `false` on timeout.
    pub async fn settle(&self, timeout: Duration) -> bool {
        self.set_rate(0.0);
        let deadline = Instant::now() + timeout;
        for m in &self.machines {
            let all = m.in_flight.acquire_many(IN_FLIGHT);
            match tokio::time::timeout_at(deadline, all).await {
                Ok(Ok(permits)) => drop(permits),
                _ => return false,
            }
        }
        self.acked() == self.issued()
    }

    /// Per machine: its name and how many messages it built (seq 1..=n).
    pub fn issued_by_machine(&self) -> Vec<(String, u64)> {
        self.machines
            .iter()
            .map(|m| (m.name.clone(), m.issued.load(Ordering::SeqCst)))
            .collect()
    }

    /// Stops every device after [`settle`](Self::settle).
    pub async fn stop(self) {
        self.control.stop.store(true, Ordering::SeqCst);
        for m in self.machines {
            let _ = m.task.await;
        }
    }
}

async fn run_device(
    device: Device,
    share: f64,
    publisher: Arc<Publisher>,
    control: Arc<Control>,
    counters: Arc<Counters>,
    issued: Arc<AtomicU64>,
    in_flight: Arc<Semaphore>,
) {
    let topic = format!("aurum/v1/{TENANT}/{}/telemetry", device.machine);
    // Probes start a week back, less two hours: ingestion accepts seven days of back-fill.
    let probe_start = Utc::now() - TimeDelta::days(7) + TimeDelta::hours(2);
    let mut sim = device.probe.then(|| {
        let healthy_for_good = LifecycleParams {
            normal_h: (100_000.0, 100_000.0),
            ..LifecycleParams::field()
        };
        let id = MachineId::parse(&device.machine).expect("a machine id");
        let seed = device.machine.bytes().map(u64::from).sum();
        SimMachine::new(id, MachineType::HaulTruck, seed, healthy_for_good)
    });
    let mut phase = u64::MAX;
    let mut phase_start = Instant::now();
    let mut sent_in_phase: u64 = 0;
    while !control.stop.load(Ordering::SeqCst) {
        let now_phase = control.phase.load(Ordering::SeqCst);
        let rate = match f64::from_bits(control.rate_bits.load(Ordering::SeqCst)) {
            r if r > 0.0 && device.probe => 1.0,
            r => r * share,
        };
        if now_phase != phase {
            phase = now_phase;
            phase_start = Instant::now();
            sent_in_phase = 0;
        }
        if rate <= 0.0 {
            tokio::time::sleep(Duration::from_millis(20)).await;
            continue;
        }
        let due = if rate.is_infinite() {
            u64::MAX
        } else {
            let due = (phase_start.elapsed().as_secs_f64() * rate) as u64;
            // Forgive what is owed beyond MAX_DEBT, as a device with a small buffer would.
            let debt_cap = (MAX_DEBT.as_secs_f64() * rate) as u64;
            sent_in_phase = sent_in_phase.max(due.saturating_sub(debt_cap));
            due
        };
        if sent_in_phase >= due {
            tokio::time::sleep(Duration::from_millis(5)).await;
            continue;
        }
        let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else {
            return;
        };
        let seq = issued.fetch_add(1, Ordering::SeqCst) + 1;
        sent_in_phase += 1;
        let message = match sim.as_mut() {
            Some(sim) => {
                let ts = probe_start + TimeDelta::seconds(PROBE_STEP_S * seq as i64);
                probe_reading(sim, &device, seq, ts)
            }
            None => {
                let (vibration, temperature) = (2.8 + (seq % 5) as f64 * 0.05, 88.0);
                truck_reading(&device.machine, seq, Utc::now(), vibration, temperature)
            }
        };
        let payload = serde_json::to_vec(&message).expect("telemetry JSON");
        let publisher = Arc::clone(&publisher);
        let counters = Arc::clone(&counters);
        let topic = topic.clone();
        tokio::spawn(async move {
            deliver(&publisher, &topic, payload, &counters).await;
            drop(permit);
        });
    }
    // Dropping the client closes its connection; the soak is over by then.
}

/// The simulated truck's next reading (ten device minutes on), anomalous if the device is.
fn probe_reading(sim: &mut SimMachine, device: &Device, seq: u64, ts: DateTime<Utc>) -> Value {
    let sample = sim.step(PROBE_STEP_S as f64, ts);
    let metrics: Map<String, Value> = sample
        .metrics
        .into_iter()
        .map(|(name, value)| {
            let value = match (device.anomalous, name) {
                (true, "vibration") => 14.0,
                (true, "temperature") => 131.0,
                _ => value,
            };
            (name.to_owned(), json!(value))
        })
        .collect();
    json!({
        "machine_id": device.machine,
        "seq": seq,
        "ts": ts.to_rfc3339_opts(SecondsFormat::Millis, true),
        "metrics": metrics,
    })
}

/// Publishes until the broker acknowledges: the same bytes every attempt.
async fn deliver(publisher: &Publisher, topic: &str, payload: Vec<u8>, counters: &Counters) {
    loop {
        // While the client library reconnects, wait for it rather than hand it messages.
        if !publisher.is_connected() {
            tokio::time::sleep(Duration::from_millis(100)).await;
            continue;
        }
        let attempt = publisher.publish(topic, payload.clone(), "application/json", None);
        if let Ok(Ok(())) = tokio::time::timeout(ATTEMPT_TIMEOUT, attempt).await {
            counters.acked.fetch_add(1, Ordering::SeqCst);
            return;
        }
        counters.retries.fetch_add(1, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}
