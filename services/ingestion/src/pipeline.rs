//! From received bytes to what gets written: decoding, machine lookup, validation, and the
//! quarantine records for everything rejected. Shared by the MQTT and HTTP paths.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use aurum_domain::ingestion::validation::reject_all;
use aurum_domain::ingestion::{RejectReason, Rejection, ValidatedMessage, ValidationPolicy};
use aurum_domain::telemetry::RawValue;
use aurum_domain::{MachineId, ProfileId, SiteId, TelemetryMessage, TenantId};
use aurum_ports::ingestion::{MachineRegistry, QuarantineRecord, Source, StoredMessage};
use aurum_ports::{MachineKey, StoreError};
use aurum_proto::DecodeError;
use chrono::{DateTime, Utc};
use serde::Serialize;
use sha2::{Digest, Sha256};

use crate::features::MachineRef;
use crate::metrics::IngestMetrics;
use crate::profiles::ProfileCatalogue;

/// Raw payloads kept in quarantine are cut to this size.
pub const QUARANTINE_PAYLOAD_BYTES: usize = 4096;
/// How long "this machine is not registered" is believed before asking the database again.
const UNKNOWN_MACHINE_TTL: Duration = Duration::from_secs(5);
/// Cache entries kept at most; registered machines always fit, unknown ids make room.
const MAX_CACHED_MACHINES: usize = 100_000;

/// Where a payload came from, for quarantine records and dedup keys.
#[derive(Debug, Clone)]
pub struct Envelope<'a> {
    pub source: Source,
    pub tenant: Option<&'a str>,
    pub topic: Option<&'a str>,
    pub received_at: DateTime<Utc>,
    pub raw: &'a [u8],
    /// The sampled trace the message arrived in (W3C `traceparent`), looked up once per
    /// request or MQTT message by the caller, not per message of a batch.
    pub traceparent: Option<&'a str>,
}

impl Envelope<'_> {
    /// Content-derived, so a redelivered payload maps to the same quarantine rows.
    fn dedup_base(&self) -> String {
        let mut h = Sha256::new();
        h.update(self.source.as_str());
        h.update([0]);
        h.update(self.tenant.unwrap_or(""));
        h.update([0]);
        h.update(self.topic.unwrap_or(""));
        h.update([0]);
        h.update(self.raw);
        hex::encode(&h.finalize()[..16])
    }
}

/// What became of one message, as reported to an HTTP caller.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MessageReport {
    pub machine_id: Option<String>,
    pub seq: Option<u64>,
    pub accepted_readings: usize,
    pub rejections: Vec<RejectionView>,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct RejectionView {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub metric: Option<String>,
    pub reason: RejectReason,
    pub detail: String,
}

/// The result of processing one message.
#[derive(Debug, Clone)]
pub struct Processed {
    pub stored: Option<StoredMessage>,
    /// Whose message `stored` is, for the feature stream.
    pub machine: Option<MachineRef>,
    pub quarantine: Vec<QuarantineRecord>,
    pub report: MessageReport,
}

/// What the pipeline needs of a registered machine.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KnownMachine {
    pub key: MachineKey,
    pub profile: ProfileId,
    /// Where it is registered, carried into its feature vectors.
    pub site: Option<SiteId>,
}

#[derive(Debug, Clone)]
enum Known {
    Yes(KnownMachine),
    No(Instant),
}

#[derive(Debug)]
pub struct Ingestor {
    registry: Arc<dyn MachineRegistry>,
    profiles: Arc<ProfileCatalogue>,
    policy: ValidationPolicy,
    metrics: IngestMetrics,
    cache: RwLock<HashMap<(String, String), Known>>,
}

impl Ingestor {
    pub fn new(
        registry: Arc<dyn MachineRegistry>,
        profiles: Arc<ProfileCatalogue>,
        policy: ValidationPolicy,
        metrics: IngestMetrics,
    ) -> Self {
        Self {
            registry,
            profiles,
            policy,
            metrics,
            cache: RwLock::new(HashMap::new()),
        }
    }

    pub fn registry(&self) -> &Arc<dyn MachineRegistry> {
        &self.registry
    }

    pub fn profiles(&self) -> &Arc<ProfileCatalogue> {
        &self.profiles
    }

    /// Looks a machine up, through a cache: registrations are permanent, so a hit is final;
    /// a miss is re-checked after a few seconds (it may have been registered meanwhile).
    pub async fn lookup(
        &self,
        tenant: &TenantId,
        id: &MachineId,
    ) -> Result<Option<KnownMachine>, StoreError> {
        let key = (tenant.to_string(), id.to_string());
        let cached = self.cache.read().ok().and_then(|c| c.get(&key).cloned());
        match cached {
            Some(Known::Yes(m)) => return Ok(Some(m)),
            Some(Known::No(at)) if at.elapsed() < UNKNOWN_MACHINE_TTL => return Ok(None),
            _ => {}
        }
        let found = self.registry.find(tenant, id).await?.map(|m| KnownMachine {
            key: m.key,
            profile: m.machine.profile,
            site: m.machine.site,
        });
        let entry = match &found {
            Some(m) => Known::Yes(m.clone()),
            None => Known::No(Instant::now()),
        };
        if let Ok(mut c) = self.cache.write() {
            // Unknown ids come from the outside: never let them grow the cache without bound.
            if c.len() >= MAX_CACHED_MACHINES {
                c.retain(|_, k| matches!(k, Known::Yes(..)));
            }
            if c.len() < MAX_CACHED_MACHINES || matches!(entry, Known::Yes(..)) {
                c.insert(key, entry);
            }
        }
        Ok(found)
    }

    /// Forgets a negative lookup (after a registration through this replica).
    pub fn forget(&self, tenant: &TenantId, id: &MachineId) {
        if let Ok(mut c) = self.cache.write() {
            c.remove(&(tenant.to_string(), id.to_string()));
        }
    }

    /// Rejects a whole payload before decoding (bad topic, too large, unknown content type).
    pub fn reject_payload(
        &self,
        env: &Envelope<'_>,
        reason: RejectReason,
        detail: String,
    ) -> Processed {
        self.metrics.reject(reason);
        let rejection = Rejection::message(reason, detail);
        let record =
            self.quarantine_record(env, &env.dedup_base(), None, None, &rejection, 0, true);
        Processed {
            stored: None,
            machine: None,
            quarantine: vec![record],
            report: MessageReport {
                machine_id: None,
                seq: None,
                accepted_readings: 0,
                rejections: vec![view(&rejection)],
            },
        }
    }

    /// Processes one decoded (or undecodable) message of `tenant`. `topic_machine` is the
    /// machine named by the MQTT topic, which the payload must match.
    pub async fn process(
        &self,
        env: &Envelope<'_>,
        tenant: &TenantId,
        topic_machine: Option<&MachineId>,
        decoded: Result<TelemetryMessage, DecodeError>,
    ) -> Result<Processed, StoreError> {
        let msg = match decoded {
            Ok(m) => m,
            Err(e) => {
                self.metrics.reject(RejectReason::MalformedPayload);
                let rejection =
                    Rejection::message(RejectReason::MalformedPayload, e.detail.clone());
                let seq = e.seq_hint.and_then(|s| i64::try_from(s).ok());
                let record = self.quarantine_record(
                    env,
                    &env.dedup_base(),
                    e.machine_hint.as_deref(),
                    seq,
                    &rejection,
                    0,
                    true,
                );
                return Ok(Processed {
                    stored: None,
                    machine: None,
                    quarantine: vec![record],
                    report: MessageReport {
                        machine_id: e.machine_hint,
                        seq: e.seq_hint,
                        accepted_readings: 0,
                        rejections: vec![view(&rejection)],
                    },
                });
            }
        };

        let validated = if let Some(expected) = topic_machine.filter(|m| **m != msg.machine_id) {
            reject_all(
                &msg,
                RejectReason::MachineMismatch,
                &format!(
                    "published on {expected}'s topic but names {}",
                    msg.machine_id
                ),
            )
        } else {
            match self.lookup(tenant, &msg.machine_id).await? {
                Some(known) => {
                    let v = match self.profiles.history(tenant, &known.profile).await? {
                        Some(history) => self.policy.validate(&msg, history.at(msg.ts), Utc::now()),
                        // Deleted while a registration raced it: nothing to check against.
                        None => reject_all(
                            &msg,
                            RejectReason::UnknownMetric,
                            &format!(
                                "machine {}'s profile {} does not exist",
                                msg.machine_id, known.profile
                            ),
                        ),
                    };
                    let mut processed = self.finish(env, &msg, Some(known.key), v);
                    if processed.stored.is_some() {
                        // Features are computed for the kinds the platform's models know:
                        // the built-in profiles.
                        processed.machine =
                            known.profile.machine_type().map(|machine_type| MachineRef {
                                tenant: tenant.clone(),
                                id: msg.machine_id.clone(),
                                machine_type,
                                site: known.site,
                                traceparent: env.traceparent.map(str::to_owned),
                            });
                    }
                    return Ok(processed);
                }
                None => reject_all(
                    &msg,
                    RejectReason::UnknownMachine,
                    &format!(
                        "machine {} is not registered for tenant {tenant}",
                        msg.machine_id
                    ),
                ),
            }
        };
        Ok(self.finish(env, &msg, None, validated))
    }

    fn finish(
        &self,
        env: &Envelope<'_>,
        msg: &TelemetryMessage,
        key: Option<MachineKey>,
        v: ValidatedMessage,
    ) -> Processed {
        let seq = Some(msg.seq.as_i64());
        let whole_message_rejected = v.accepted.is_empty();
        // Hashed once per message, not once per rejected reading.
        let dedup_base = if v.rejected.is_empty() {
            String::new()
        } else {
            env.dedup_base()
        };
        let quarantine = v
            .rejected
            .iter()
            .enumerate()
            .map(|(i, r)| {
                self.metrics.reject(r.reason);
                // Keep the raw payload once per message, when nothing of it was stored.
                let keep_raw = whole_message_rejected && i == 0;
                self.quarantine_record(
                    env,
                    &dedup_base,
                    Some(msg.machine_id.as_str()),
                    seq,
                    r,
                    i,
                    keep_raw,
                )
            })
            .collect();
        let report = MessageReport {
            machine_id: Some(msg.machine_id.to_string()),
            seq: Some(msg.seq.get()),
            accepted_readings: v.accepted.len(),
            rejections: v.rejected.iter().map(view).collect(),
        };
        let stored = match key {
            Some(machine) if !v.accepted.is_empty() => Some(StoredMessage {
                machine,
                seq: msg.seq,
                ts: msg.ts,
                received_at: env.received_at,
                readings: v.accepted,
            }),
            _ => None,
        };
        Processed {
            stored,
            machine: None,
            quarantine,
            report,
        }
    }

    #[allow(clippy::too_many_arguments)] // one record's fields, all different
    fn quarantine_record(
        &self,
        env: &Envelope<'_>,
        dedup_base: &str,
        machine: Option<&str>,
        seq: Option<i64>,
        r: &Rejection,
        index: usize,
        keep_raw: bool,
    ) -> QuarantineRecord {
        QuarantineRecord {
            dedup_key: format!("{dedup_base}:{index}"),
            received_at: env.received_at,
            source: env.source,
            tenant: env.tenant.map(str::to_owned),
            machine: machine.map(str::to_owned),
            seq,
            topic: env.topic.map(str::to_owned),
            metric: r.metric.clone(),
            value: r.value.as_ref().map(|v| match v {
                RawValue::Number(n) => n.to_string(),
                RawValue::NotANumber(text) => text.clone(),
            }),
            reason: r.reason,
            detail: r.detail.clone(),
            payload: keep_raw
                .then(|| env.raw[..env.raw.len().min(QUARANTINE_PAYLOAD_BYTES)].to_vec()),
        }
    }
}

fn view(r: &Rejection) -> RejectionView {
    RejectionView {
        metric: r.metric.clone(),
        reason: r.reason,
        detail: r.detail.clone(),
    }
}
