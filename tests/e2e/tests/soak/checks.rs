//! What the soak checks at the end, read from the database as the superuser, and its
//! summary.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use aurum_testkit::TestDb;
use chrono::{DateTime, Utc};

use crate::fleet::Device;
use crate::memory::{self, Verdict};
use crate::Fault;

/// One machine's rows against what its device published (seq 1..=issued).
#[derive(Debug, Clone)]
pub struct MachineRows {
    pub machine: String,
    pub issued: u64,
    pub rows: u64,
    pub distinct: u64,
    /// Seqs published but not stored.
    pub missing: u64,
    /// Rows beyond one per seq.
    pub duplicates: u64,
    /// Rows whose seq was never published.
    pub unexpected: u64,
}

#[derive(Debug, Clone)]
pub struct Stored {
    pub machines: Vec<MachineRows>,
    /// Messages ingestion rejected (a rejected message is not stored: it would be lost).
    pub quarantined: u64,
}

impl Stored {
    pub fn rows(&self) -> u64 {
        self.machines.iter().map(|m| m.rows).sum()
    }
    pub fn missing(&self) -> u64 {
        self.machines.iter().map(|m| m.missing).sum()
    }
    pub fn duplicates(&self) -> u64 {
        self.machines.iter().map(|m| m.duplicates).sum()
    }
    pub fn unexpected(&self) -> u64 {
        self.machines.iter().map(|m| m.unexpected).sum()
    }
    fn ok(&self) -> bool {
        self.missing() == 0
            && self.duplicates() == 0
            && self.unexpected() == 0
            && self.quarantined == 0
    }
}

pub async fn stored(db: &TestDb, issued: &[(String, u64)]) -> Stored {
    let client = db.client().await;
    let mut by_machine: BTreeMap<String, (i64, i64, i64)> = BTreeMap::new();
    for (machine, n) in issued {
        let r = client
            .query_one(
                "SELECT count(*), count(DISTINCT t.seq), \
                        count(*) FILTER (WHERE t.seq < 1 OR t.seq > $2) \
                 FROM ingestion.telemetry t JOIN ingestion.machines m USING (machine_key) \
                 WHERE m.machine_id = $1",
                &[machine, &(*n as i64)],
            )
            .await
            .expect("count a machine's rows");
        by_machine.insert(machine.clone(), (r.get(0), r.get(1), r.get(2)));
    }
    let machines = issued
        .iter()
        .map(|(machine, n)| {
            let (rows, distinct, outside) = by_machine[machine];
            let (rows, distinct, outside) = (rows as u64, distinct as u64, outside as u64);
            // Distinct seqs inside 1..=n are at most n; those absent are lost.
            let inside = distinct.saturating_sub(outside);
            MachineRows {
                machine: machine.clone(),
                issued: *n,
                rows,
                distinct,
                missing: n.saturating_sub(inside),
                duplicates: rows - distinct,
                unexpected: outside,
            }
        })
        .collect();
    let quarantined = db.count("SELECT count(*) FROM ingestion.quarantine").await as u64;
    Stored {
        machines,
        quarantined,
    }
}

/// One alert row.
#[derive(Debug, Clone)]
pub struct AlertRow {
    pub machine: String,
    pub category: String,
    pub state: String,
    pub severity: String,
    /// Seconds into the soak (negative: during the calibration).
    pub opened_s: f64,
    pub resolved_s: Option<f64>,
}

#[derive(Debug, Clone)]
pub struct Alerts {
    pub anomalous: Vec<String>,
    pub rows: Vec<AlertRow>,
    /// What does not hold, in words.
    pub problems: Vec<String>,
    /// Alerts a healthy probe had and that prediction resolved by itself before the end.
    pub transient: Vec<String>,
}

/// Each anomalous probe: exactly one operational alert ever, still open, and at most one
/// of any other category; a healthy probe: no unresolved alert at the end (those raised and
/// resolved on the way are listed as transient). Load machines are not judged.
pub async fn alerts(db: &TestDb, devices: &[Device], soak_start: DateTime<Utc>) -> Alerts {
    let rows: Vec<AlertRow> = db
        .client()
        .await
        .query(
            "SELECT m.machine_id, a.category, a.state, a.severity, \
                    extract(epoch FROM a.opened_at)::float8, extract(epoch FROM a.resolved_at)::float8 \
             FROM prediction.alerts a JOIN prediction.machines m USING (machine_key) \
             ORDER BY m.machine_id, a.category, a.id",
            &[],
        )
        .await
        .expect("read the alerts")
        .into_iter()
        .map(|r| AlertRow {
            machine: r.get(0),
            category: r.get(1),
            state: r.get(2),
            severity: r.get(3),
            opened_s: r.get::<_, f64>(4) - epoch(soak_start),
            resolved_s: r.get::<_, Option<f64>>(5).map(|t| t - epoch(soak_start)),
        })
        .collect();
    let mut problems = Vec::new();
    let mut transient = Vec::new();
    for d in devices.iter().filter(|d| d.probe) {
        let of = |category: Option<&str>| -> Vec<&AlertRow> {
            rows.iter()
                .filter(|r| r.machine == d.machine && category.is_none_or(|c| r.category == c))
                .collect()
        };
        if d.anomalous {
            let operational = of(Some("operational"));
            match operational.as_slice() {
                [one] if one.state == "open" => {}
                [one] => problems.push(format!(
                    "{}: its operational alert is {}, not open",
                    d.machine, one.state
                )),
                other => problems.push(format!(
                    "{}: {} operational alerts, not one",
                    d.machine,
                    other.len()
                )),
            }
            let mut per_category: BTreeMap<&str, usize> = BTreeMap::new();
            for r in of(None) {
                *per_category.entry(r.category.as_str()).or_default() += 1;
            }
            for (category, n) in per_category {
                if n > 1 {
                    problems.push(format!("{}: {n} {category} alerts", d.machine));
                }
            }
        } else {
            for r in of(None) {
                let what = format!(
                    "healthy probe {}: {} {} alert opened at {:.0} s, {}",
                    d.machine,
                    r.severity,
                    r.category,
                    r.opened_s,
                    r.resolved_s
                        .map_or_else(|| r.state.clone(), |t| format!("resolved at {t:.0} s"))
                );
                if r.state == "resolved" {
                    transient.push(what);
                } else {
                    problems.push(what);
                }
            }
        }
    }
    Alerts {
        anomalous: devices
            .iter()
            .filter(|d| d.anomalous)
            .map(|d| d.machine.clone())
            .collect(),
        rows,
        problems,
        transient,
    }
}

fn epoch(t: DateTime<Utc>) -> f64 {
    t.timestamp_millis() as f64 / 1000.0
}

pub struct Summary {
    pub soak_s: u64,
    pub calibration_s: u64,
    pub calibrated: f64,
    pub soak_rate: f64,
    pub soak_published: u64,
    pub soak_elapsed: f64,
    pub published: u64,
    pub retries: u64,
    pub drain_s: f64,
    pub drained: bool,
    pub faults: Vec<Fault>,
    pub stored: Stored,
    pub memory: Vec<Verdict>,
    pub alerts: Alerts,
}

fn mib(kib: u64) -> f64 {
    (kib as f64 / 1024.0 * 10.0).round() / 10.0
}

impl Summary {
    fn memory_flat(&self) -> bool {
        self.memory.iter().all(|v| v.flat != Some(false))
    }

    pub fn passed(&self) -> bool {
        self.drained && self.stored.ok() && self.memory_flat() && self.alerts.problems.is_empty()
    }

    /// The summary through `tracing`, one event per figure.
    pub fn log(&self) {
        tracing::info!(
            calibrated_per_s = self.calibrated.round(),
            soak_per_s = self.soak_rate.round(),
            achieved_per_s = (self.soak_published as f64 / self.soak_elapsed).round(),
            "rate"
        );
        tracing::info!(
            published = self.published,
            stored = self.stored.rows(),
            missing = self.stored.missing(),
            duplicates = self.stored.duplicates(),
            unexpected = self.stored.unexpected(),
            quarantined = self.stored.quarantined,
            publish_retries = self.retries,
            drain_s = self.drain_s.round(),
            "messages"
        );
        for m in &self.stored.machines {
            tracing::info!(
                machine = %m.machine,
                issued = m.issued,
                rows = m.rows,
                distinct_seqs = m.distinct,
                "machine"
            );
        }
        for f in &self.faults {
            tracing::info!(
                at_s = f.at_s.round(),
                recovered_after_s = (f.recovered_after_s * 10.0).round() / 10.0,
                fault = %f.what,
                "fault"
            );
        }
        for v in &self.memory {
            tracing::info!(
                service = v.service,
                pid = v.pid,
                from_s = v.from_s.round(),
                to_s = v.to_s.round(),
                samples = v.samples,
                first_mib = mib(v.first_kib),
                last_mib = mib(v.last_kib),
                max_mib = mib(v.max_kib),
                flat = ?v.flat,
                "rss"
            );
        }
        for r in &self.alerts.rows {
            tracing::info!(
                machine = %r.machine,
                category = %r.category,
                state = %r.state,
                severity = %r.severity,
                opened_s = r.opened_s.round(),
                resolved_s = ?r.resolved_s.map(f64::round),
                "alert"
            );
        }
        for t in &self.alerts.transient {
            tracing::warn!(alert = %t, "transient alert of a healthy probe");
        }
        for p in &self.alerts.problems {
            tracing::error!(problem = %p, "alerts");
        }
        tracing::info!(passed = self.passed(), "soak");
    }

    /// The summary as Markdown, for `docs/soak.md`.
    pub fn markdown(&self) -> String {
        let mut s = String::new();
        let _ = writeln!(s, "| Figure | Value |\n|---|---|");
        let _ = writeln!(
            s,
            "| Calibrated ingest rate ({} s, as fast as the devices publish) | {:.0} msg/s |",
            self.calibration_s, self.calibrated
        );
        let _ = writeln!(
            s,
            "| Soak rate (80 %) / achieved over {:.0} s (SOAK_SECONDS={}) | {:.0} / {:.0} msg/s |",
            self.soak_elapsed,
            self.soak_s,
            self.soak_rate,
            self.soak_published as f64 / self.soak_elapsed
        );
        let _ = writeln!(
            s,
            "| Messages published (calibration + soak) | {} |",
            self.published
        );
        let _ = writeln!(s, "| Rows stored | {} |", self.stored.rows());
        let _ = writeln!(
            s,
            "| Missing / duplicated / unexpected / quarantined | {} / {} / {} / {} |",
            self.stored.missing(),
            self.stored.duplicates(),
            self.stored.unexpected(),
            self.stored.quarantined
        );
        let _ = writeln!(s, "| Publish attempts repeated | {} |", self.retries);
        let _ = writeln!(
            s,
            "| Drain after the load stopped | {:.0} s |",
            self.drain_s
        );
        let _ = writeln!(
            s,
            "\n| Machine | Published (seq 1..=n) | Rows | Distinct seqs |\n|---|---|---|---|"
        );
        for m in &self.stored.machines {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} |",
                m.machine, m.issued, m.rows, m.distinct
            );
        }
        let _ = writeln!(
            s,
            "\n| Fault | At (s into the soak) | Answering again after (s) |\n|---|---|---|"
        );
        for f in &self.faults {
            let _ = writeln!(
                s,
                "| {} | {:.0} | {:.1} |",
                f.what, f.at_s, f.recovered_after_s
            );
        }
        let _ = writeln!(
            s,
            "\nResident memory (VmRSS), one row per process (a restarted service is a new \
             process); first and last are the medians of the first and last third of its \
             samples after {:.0} s of warm-up; flat means last <= first x {} + {} MiB.\n",
            memory::WARM_UP_S,
            1.0 + memory::TOLERANCE_RATIO,
            memory::TOLERANCE_KIB / 1024
        );
        let _ = writeln!(
            s,
            "| Service | Seconds sampled | Samples judged | First MiB | Last MiB | Max MiB | Flat |\n|---|---|---|---|---|---|---|"
        );
        for v in &self.memory {
            let _ = writeln!(
                s,
                "| {} | {:.0}-{:.0} | {} | {} | {} | {} | {} |",
                v.service,
                v.from_s,
                v.to_s,
                v.samples,
                mib(v.first_kib),
                mib(v.last_kib),
                mib(v.max_kib),
                match v.flat {
                    Some(true) => "yes",
                    Some(false) => "NO",
                    None => "too short to judge",
                }
            );
        }
        let _ = writeln!(
            s,
            "\nAlerts (anomalous probes: {}; only probes are judged):\n\n| Machine | Category | State | Severity | Opened (s) | Resolved (s) |\n|---|---|---|---|---|---|",
            self.alerts.anomalous.join(", ")
        );
        for r in &self.alerts.rows {
            let _ = writeln!(
                s,
                "| {} | {} | {} | {} | {:.0} | {} |",
                r.machine,
                r.category,
                r.state,
                r.severity,
                r.opened_s,
                r.resolved_s.map_or_else(String::new, |t| format!("{t:.0}"))
            );
        }
        for t in &self.alerts.transient {
            let _ = writeln!(s, "\nTransient: {t}");
        }
        for p in &self.alerts.problems {
            let _ = writeln!(s, "\nProblem: {p}");
        }
        s
    }

    pub fn assert_passed(&self) {
        assert!(
            self.drained,
            "not every message was stored within the drain period"
        );
        assert!(
            self.stored.ok(),
            "stored != published exactly once: {:?}",
            self.stored
        );
        assert!(
            self.memory_flat(),
            "memory not flat: {:?}",
            self.memory
                .iter()
                .filter(|v| v.flat == Some(false))
                .collect::<Vec<_>>()
        );
        assert!(
            self.alerts.problems.is_empty(),
            "alerts: {:?}",
            self.alerts.problems
        );
    }
}
