//! Feature vectors in, predictions and alerts out: the service's core flow, shared by the
//! batches ingestion posts and on-demand scoring.

use std::collections::HashMap;
use std::sync::Arc;

use aurum_domain::prediction::{
    AlertCategory, AlertDecision, AlertPolicy, PolicyError, Prediction, Severity,
};
use aurum_domain::{FeatureVector, MachineId, MachineType, TenantId};
use aurum_models::{ModelArtifact, Score};
use aurum_ports::prediction::{
    AlertChange, AlertStore, AlertUpdate, MachineIdentity, PredictionStore, TrackedMachine,
};
use aurum_ports::{MachineKey, StoreError};
use aurum_proto::features::{ActivityRecord, FeatureBatch, MachineFeatures};
use chrono::Utc;
use serde::Serialize;

use crate::machine_traces::MachineTraces;
use crate::metrics::PredictionMetrics;
use crate::models::{ActiveModel, ModelService};

/// How alerts follow the scores.
#[derive(Debug, Clone)]
pub struct AlertSettings {
    pub raise_after: usize,
    pub clear_after: usize,
    pub clear_ratio: f64,
    /// Anomaly score (0..1) at which an operational alert starts.
    pub anomaly_threshold: f64,
}

/// A vector that could not be scored, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Rejected {
    pub machine_id: MachineId,
    pub reason: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct BatchReport {
    pub received: usize,
    pub scored: usize,
    /// Stored but not scored because no model is active.
    pub unscored: usize,
    pub rejected: Vec<Rejected>,
    pub model_version: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ScoringError {
    #[error("no feature vector fits the active model")]
    AllRejected(Vec<Rejected>),
    #[error("machine {0} is unknown")]
    UnknownMachine(MachineId),
    #[error("no model is active")]
    NoModel,
    #[error("the model cannot score machine {machine}: {reason}")]
    Unscorable { machine: MachineId, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Debug)]
pub struct Scorer {
    models: Arc<ModelService>,
    store: Arc<dyn PredictionStore>,
    alerts: Arc<dyn AlertStore>,
    settings: AlertSettings,
    metrics: PredictionMetrics,
}

/// One machine's vector after scoring.
struct Scored {
    machine: MachineIdentity,
    features: FeatureVector,
    prediction: Option<Prediction>,
    /// Moved out of the batch for ESG accounting once the machine is tracked.
    activity: Vec<ActivityRecord>,
}

impl Scorer {
    pub fn new(
        models: Arc<ModelService>,
        store: Arc<dyn PredictionStore>,
        alerts: Arc<dyn AlertStore>,
        settings: AlertSettings,
        metrics: PredictionMetrics,
    ) -> Self {
        Self {
            models,
            store,
            alerts,
            settings,
            metrics,
        }
    }

    /// Scores a batch from ingestion with the active model and stores features,
    /// predictions and alert changes. Vectors that do not fit the model are reported, not
    /// stored; when none fits, the whole batch is refused. Returns the tracked machine of
    /// every stored vector with its activity, in batch order, for ESG accounting.
    pub async fn ingest(
        &self,
        batch: FeatureBatch,
    ) -> Result<(BatchReport, Vec<(TrackedMachine, Vec<ActivityRecord>)>), ScoringError> {
        let timer = self
            .metrics
            .batch_seconds
            .with_label_values(&["features"])
            .start_timer();
        let received = batch.vectors.len();
        let traces = MachineTraces::open(&batch.vectors);
        let model = self.models.current();
        // Scoring is CPU work: off the async workers for big batches.
        let (scored, rejected) = match model.clone() {
            Some(m) if received > 64 => {
                tokio::task::spawn_blocking(move || score_all(Some(&m), batch.vectors))
                    .await
                    .map_err(|e| StoreError::Refused(format!("scoring task failed: {e}")))?
            }
            m => score_all(m.as_deref(), batch.vectors),
        };
        let counted = |outcome: &str, n: usize| {
            self.metrics
                .vectors
                .with_label_values(&[outcome])
                .inc_by(n as u64)
        };
        let mut scored = one_per_machine(scored);
        counted("rejected", rejected.len());
        if scored.is_empty() && !rejected.is_empty() {
            return Err(ScoringError::AllRejected(rejected));
        }
        let unscored = scored.iter().filter(|s| s.prediction.is_none()).count();
        counted("unscored", unscored);
        counted("scored", scored.len() - unscored);
        if !traces.is_empty() {
            for s in &scored {
                if let Some(p) = &s.prediction {
                    traces.record_prediction(&s.machine.tenant_id, &s.machine.machine_id, p);
                }
            }
        }
        let tracked = self.persist(&scored, model.as_deref(), &traces).await?;
        timer.observe_duration();
        Ok((
            BatchReport {
                received,
                scored: scored.len() - unscored,
                unscored,
                rejected,
                model_version: model.map(|m| m.version().to_owned()),
            },
            tracked
                .into_iter()
                .zip(scored.iter_mut().map(|s| std::mem::take(&mut s.activity)))
                .collect(),
        ))
    }

    /// Scores a machine's latest features now.
    pub async fn predict_now(
        &self,
        tenant: &TenantId,
        machine: &MachineId,
    ) -> Result<Prediction, ScoringError> {
        let timer = self
            .metrics
            .batch_seconds
            .with_label_values(&["predict"])
            .start_timer();
        let tracked = self
            .store
            .find(tenant, machine)
            .await?
            .ok_or_else(|| ScoringError::UnknownMachine(machine.clone()))?;
        let features = self
            .store
            .latest_features(tracked.key)
            .await?
            .ok_or_else(|| ScoringError::UnknownMachine(machine.clone()))?;
        let model = self.models.current().ok_or(ScoringError::NoModel)?;
        let prediction = predict(&model, tracked.machine_type, &features).map_err(|reason| {
            ScoringError::Unscorable {
                machine: machine.clone(),
                reason,
            }
        })?;
        let scored = [Scored {
            machine: MachineIdentity {
                tenant_id: tracked.tenant_id.clone(),
                machine_id: tracked.machine_id.clone(),
                machine_type: tracked.machine_type,
                site_id: tracked.site_id.clone(),
            },
            features,
            prediction: Some(prediction.clone()),
            activity: Vec::new(),
        }];
        self.persist(&scored, Some(&model), &MachineTraces::default())
            .await?;
        timer.observe_duration();
        Ok(prediction)
    }

    /// Tracks the machines, decides alert changes from their recent scores, and stores it all.
    async fn persist(
        &self,
        scored: &[Scored],
        model: Option<&ActiveModel>,
        traces: &MachineTraces,
    ) -> Result<Vec<TrackedMachine>, ScoringError> {
        let identities: Vec<MachineIdentity> = scored.iter().map(|s| s.machine.clone()).collect();
        let tracked = self.store.track(&identities).await?;
        let keys: Vec<MachineKey> = tracked.iter().map(|t| t.key).collect();
        let updates = match model {
            Some(model) => self.alert_updates(model, scored, &tracked).await?,
            None => Vec::new(),
        };
        let rows: Vec<(MachineKey, &FeatureVector, Option<&Prediction>)> = keys
            .iter()
            .zip(scored)
            .map(|(k, s)| (*k, &s.features, s.prediction.as_ref()))
            .collect();
        self.store.save(&rows).await?;
        self.alerts.apply(&updates).await?;
        let by_key: HashMap<MachineKey, &TrackedMachine> = if traces.is_empty() {
            HashMap::new()
        } else {
            tracked.iter().map(|t| (t.key, t)).collect()
        };
        for u in &updates {
            let change = match u.change {
                AlertChange::Raise { .. } => "raised",
                AlertChange::Update { .. } => "updated",
                AlertChange::Clear { .. } => "cleared",
            };
            self.metrics
                .alerts
                .with_label_values(&[u.category.as_str(), change])
                .inc();
            if let Some(t) = by_key.get(&u.machine) {
                traces.record_alert(&t.tenant_id, &t.machine_id, u.category, change);
            }
        }
        Ok(tracked)
    }

    async fn alert_updates(
        &self,
        model: &ActiveModel,
        scored: &[Scored],
        tracked: &[TrackedMachine],
    ) -> Result<Vec<AlertUpdate>, ScoringError> {
        let keys: Vec<MachineKey> = tracked.iter().map(|t| t.key).collect();
        let recent: HashMap<MachineKey, (Vec<f64>, Vec<f64>)> = self
            .store
            .recent_scores(&keys)
            .await?
            .into_iter()
            .map(|r| (r.machine, (r.risk, r.anomaly)))
            .collect();
        let open: HashMap<(MachineKey, AlertCategory), Severity> = self
            .alerts
            .unresolved(&keys)
            .await?
            .into_iter()
            .map(|(k, c, s)| ((k, c), s))
            .collect();
        let anomaly_policy = self.anomaly_policy();
        let mut policies: HashMap<MachineType, Option<AlertPolicy>> = HashMap::new();
        let now = Utc::now();
        let mut updates = Vec::new();
        for (t, s) in tracked.iter().zip(scored) {
            let Some(p) = &s.prediction else { continue };
            let risk_policy = policies
                .entry(t.machine_type)
                .or_insert_with(|| self.risk_policy(&model.artifact, t.machine_type).ok());
            let (mut risk, mut anomaly) = recent.get(&t.key).cloned().unwrap_or_default();
            risk.push(p.risk_score);
            anomaly.push(p.anomaly_percent());
            let checks = [
                (
                    AlertCategory::Predictive,
                    risk_policy.as_ref(),
                    risk,
                    p.risk_score,
                ),
                (
                    AlertCategory::Operational,
                    anomaly_policy.as_ref(),
                    anomaly,
                    p.anomaly_percent(),
                ),
            ];
            for (category, policy, history, score) in checks {
                let Some(policy) = policy else { continue };
                let current = open.get(&(t.key, category)).copied();
                let change = match policy.decide(current, &history) {
                    AlertDecision::Keep => continue,
                    AlertDecision::Raise(severity) => AlertChange::Raise {
                        severity,
                        score,
                        message: alert_message(category, p),
                    },
                    AlertDecision::Change(severity) => AlertChange::Update {
                        severity,
                        score,
                        message: alert_message(category, p),
                    },
                    AlertDecision::Clear => AlertChange::Clear { score },
                };
                updates.push(AlertUpdate {
                    machine: t.key,
                    category,
                    change,
                    model_version: Some(p.model_version.clone()),
                    at: now,
                });
            }
        }
        Ok(updates)
    }

    /// Predictive alerts start at the threshold the model calibrated for the machine type on
    /// validation runs (a probability, here on the 0..=100 risk scale).
    fn risk_policy(
        &self,
        model: &ModelArtifact,
        machine_type: MachineType,
    ) -> Result<AlertPolicy, PolicyError> {
        let threshold = model
            .alert_threshold(machine_type)
            .ok_or(PolicyError::NotIncreasing)?;
        AlertPolicy::from_threshold(
            threshold * 100.0,
            self.settings.clear_ratio,
            self.settings.raise_after,
            self.settings.clear_after,
        )
    }

    fn anomaly_policy(&self) -> Option<AlertPolicy> {
        AlertPolicy::from_threshold(
            self.settings.anomaly_threshold * 100.0,
            self.settings.clear_ratio,
            self.settings.raise_after,
            self.settings.clear_after,
        )
        .ok()
    }
}

fn alert_message(category: AlertCategory, p: &Prediction) -> String {
    let driver = p
        .top_features
        .first()
        .map(|f| format!("; strongest sign: {}", f.feature))
        .unwrap_or_default();
    match category {
        AlertCategory::Operational => format!(
            "behaviour unlike the healthy baseline (anomaly score {:.2}){driver}",
            p.anomaly_score
        ),
        _ => format!(
            "failure within {:.0} h likely (probability {:.0} %, remaining useful life {:.0} h){driver}",
            p.horizon_h,
            p.failure_probability * 100.0,
            p.rul_hours
        ),
    }
}

/// Scores every vector: the kept ones (scored, or unscored without a model) in order, and the
/// rejected ones.
fn score_all(
    model: Option<&ActiveModel>,
    vectors: Vec<MachineFeatures>,
) -> (Vec<Scored>, Vec<Rejected>) {
    let mut scored = Vec::with_capacity(vectors.len());
    let mut rejected = Vec::new();
    for v in vectors {
        let prediction = match model {
            Some(m) => match predict(m, v.machine_type, &v.features) {
                Ok(p) => Some(p),
                Err(reason) => {
                    rejected.push(Rejected {
                        machine_id: v.machine_id.clone(),
                        reason,
                    });
                    continue;
                }
            },
            None => None,
        };
        scored.push(Scored {
            machine: MachineIdentity {
                tenant_id: v.tenant_id,
                machine_id: v.machine_id,
                machine_type: v.machine_type,
                site_id: v.site_id,
            },
            features: v.features,
            prediction,
            activity: v.activity,
        });
    }
    (scored, rejected)
}

/// Keeps one entry per machine, the newest window, with the activity of all of them: the
/// store writes a machine once per batch, and a batch that names a machine twice (merged
/// retries) must neither fail nor lose activity.
fn one_per_machine(scored: Vec<Scored>) -> Vec<Scored> {
    let mut index: HashMap<(TenantId, MachineId), usize> = HashMap::with_capacity(scored.len());
    let mut kept: Vec<Scored> = Vec::with_capacity(scored.len());
    for s in scored {
        let key = (s.machine.tenant_id.clone(), s.machine.machine_id.clone());
        match index.get(&key) {
            None => {
                index.insert(key, kept.len());
                kept.push(s);
            }
            Some(&i) => {
                let existing = &mut kept[i];
                let mut s = s;
                if s.features.window_end >= existing.features.window_end {
                    std::mem::swap(existing, &mut s);
                }
                existing.activity.append(&mut s.activity);
            }
        }
    }
    kept
}

/// One machine's prediction, or why the model cannot make it.
pub fn predict(
    model: &ActiveModel,
    machine_type: MachineType,
    features: &FeatureVector,
) -> Result<Prediction, String> {
    let Score {
        failure_probability,
        risk_score,
        rul_hours,
        anomaly_score,
        confidence,
        top_features,
    } = model
        .artifact
        .score(machine_type, features)
        .map_err(|e| e.to_string())?;
    Ok(Prediction {
        at: features.window_end,
        model_version: model.version().to_owned(),
        risk_score,
        failure_probability,
        horizon_h: model.artifact.horizon_h,
        rul_hours,
        anomaly_score,
        confidence,
        top_features,
    })
}
