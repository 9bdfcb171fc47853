//! Judging an artifact on held-out runs: ranking quality, alerts as an operator would see
//! them, and the RUL error.

use aurum_domain::MachineType;
use serde::{Deserialize, Serialize};

use crate::alerting::{replay, summarise, AlertSettings, RunPoint};
use crate::artifact::ModelArtifact;
use crate::dataset::{Dataset, LabelledSample};
use crate::metrics::{mae, median, rmse, roc_auc};
use crate::model::TypeModels;
use crate::runs::{group_by_run, in_operation, inputs_of};

/// Figures of one machine type or of all together.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationFigures {
    pub runs: usize,
    /// Samples scored (the machine running, all metrics present).
    pub samples: usize,
    /// Samples with a breakdown within the horizon.
    pub positives: usize,
    /// ROC-AUC of the failure probability for "breakdown within the horizon".
    pub roc_auc: Option<f64>,
    /// ROC-AUC of the anomaly score for the same event: how much the unsupervised detector
    /// alone would tell.
    pub anomaly_roc_auc: Option<f64>,
    /// Alerts raised (hysteresis applied, one per episode).
    pub alerts: usize,
    /// Share of alerts raised within the horizon before a breakdown.
    pub alert_precision: Option<f64>,
    /// Share of runs with an alert up at some point within the horizon before the breakdown.
    pub alert_recall: Option<f64>,
    /// Per sample: share of samples at or above the threshold that are within the horizon.
    pub sample_precision: Option<f64>,
    /// Per sample: share of samples within the horizon at or above the threshold.
    pub sample_recall: Option<f64>,
    /// Median, over runs whose alert was still up at the last prediction before the
    /// breakdown, of the hours from that alert's raise to the breakdown.
    pub median_lead_time_h: Option<f64>,
    /// Alerts raised while the breakdown was further than the horizon, per machine-day of
    /// such operation.
    pub false_alarms_per_machine_day: Option<f64>,
    pub normal_machine_days: f64,
    /// RUL errors on samples whose true RUL is below the cap.
    pub rul_rmse_h: Option<f64>,
    pub rul_mae_h: Option<f64>,
    pub rul_samples: usize,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TypeEvaluation {
    pub machine_type: MachineType,
    pub alert_threshold: f64,
    pub figures: EvaluationFigures,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EvaluationReport {
    pub horizon_h: f64,
    pub rul_cap_h: f64,
    /// How alerts were replayed (the domain policy built from these and each threshold).
    pub policy: AlertSettings,
    pub overall: EvaluationFigures,
    pub by_type: Vec<TypeEvaluation>,
}

/// What the models said about one sample.
struct Scored<'a> {
    sample: &'a LabelledSample,
    probability: f64,
    anomaly: f64,
    rul: f64,
    threshold: f64,
}

/// Evaluates `model` on `data` (held-out runs: the caller must not pass training runs).
pub fn evaluate(
    model: &ModelArtifact,
    data: &Dataset,
    settings: &AlertSettings,
) -> EvaluationReport {
    let mut all = Vec::new();
    let mut by_type = Vec::new();
    for models in &model.types {
        let threshold = settings.threshold.unwrap_or(models.alert_threshold);
        let scored = score_samples(models, data, threshold, model.rul_cap_h);
        if scored.is_empty() {
            continue;
        }
        by_type.push(TypeEvaluation {
            machine_type: models.machine_type,
            alert_threshold: threshold,
            figures: figures(&scored, model.horizon_h, model.rul_cap_h, settings),
        });
        all.extend(scored);
    }
    EvaluationReport {
        horizon_h: model.horizon_h,
        rul_cap_h: model.rul_cap_h,
        policy: *settings,
        overall: figures(&all, model.horizon_h, model.rul_cap_h, settings),
        by_type,
    }
}

fn score_samples<'a>(
    models: &TypeModels,
    data: &'a Dataset,
    threshold: f64,
    rul_cap_h: f64,
) -> Vec<Scored<'a>> {
    let (samples, rows) = inputs_of(
        &models.schema,
        &models.columns,
        &models.inputs,
        data.samples
            .iter()
            .filter(|s| s.machine_type == models.machine_type && in_operation(s)),
    );
    // Whole-matrix predictions: far faster than one call per row.
    let (Ok(probabilities), Ok(ruls)) = (
        models.failure.predict_many(&rows),
        models.rul.predict_many(&rows),
    ) else {
        return Vec::new();
    };
    samples
        .into_iter()
        .zip(rows.iter().zip(probabilities.into_iter().zip(ruls)))
        .map(|(sample, (row, (p, rul)))| Scored {
            sample,
            probability: p.clamp(0.0, 1.0),
            anomaly: models.anomaly().score(row),
            rul: rul.clamp(0.0, rul_cap_h),
            threshold,
        })
        .collect()
}

fn ratio(numerator: usize, denominator: usize) -> Option<f64> {
    (denominator > 0).then(|| numerator as f64 / denominator as f64)
}

fn figures(
    scored: &[Scored<'_>],
    horizon_h: f64,
    rul_cap_h: f64,
    settings: &AlertSettings,
) -> EvaluationFigures {
    let labels: Vec<bool> = scored
        .iter()
        .map(|s| s.sample.time_to_failure_h <= horizon_h)
        .collect();
    let probabilities: Vec<f64> = scored.iter().map(|s| s.probability).collect();
    let anomalies: Vec<f64> = scored.iter().map(|s| s.anomaly).collect();
    let positives = labels.iter().filter(|&&l| l).count();
    let flagged = scored
        .iter()
        .filter(|s| s.probability >= s.threshold)
        .count();
    let true_flagged = scored
        .iter()
        .zip(&labels)
        .filter(|(s, &l)| l && s.probability >= s.threshold)
        .count();

    let samples: Vec<&LabelledSample> = scored.iter().map(|s| s.sample).collect();
    let runs = group_by_run(&samples);
    let replays: Vec<_> = runs
        .iter()
        .map(|idx| {
            let start = idx.first().map(|&i| samples[i].features.window_end);
            let points: Vec<RunPoint> = idx
                .iter()
                .map(|&i| RunPoint {
                    hours: start.map_or(0.0, |t0| {
                        (samples[i].features.window_end - t0).as_seconds_f64() / 3_600.0
                    }),
                    time_to_failure_h: samples[i].time_to_failure_h,
                    probability: scored[i].probability,
                })
                .collect();
            // A run is of one machine type, hence of one threshold.
            let threshold = idx.first().map_or(0.5, |&i| scored[i].threshold);
            let policy = settings.policy(threshold).ok();
            replay(&points, policy.as_ref(), horizon_h)
        })
        .collect();
    let (alerts, leads) = summarise(&replays, horizon_h);

    let (rul_predicted, rul_actual): (Vec<f64>, Vec<f64>) = scored
        .iter()
        .filter(|s| s.sample.time_to_failure_h < rul_cap_h)
        .map(|s| (s.rul, s.sample.time_to_failure_h))
        .unzip();

    EvaluationFigures {
        runs: runs.len(),
        samples: scored.len(),
        positives,
        roc_auc: roc_auc(&probabilities, &labels),
        anomaly_roc_auc: roc_auc(&anomalies, &labels),
        alerts: alerts.alerts,
        alert_precision: alerts.precision(),
        alert_recall: alerts.recall(),
        sample_precision: ratio(true_flagged, flagged),
        sample_recall: ratio(true_flagged, positives),
        median_lead_time_h: median(&leads),
        false_alarms_per_machine_day: alerts.false_alarms_per_day(),
        normal_machine_days: alerts.normal_days,
        rul_rmse_h: rmse(&rul_predicted, &rul_actual),
        rul_mae_h: mae(&rul_predicted, &rul_actual),
        rul_samples: rul_actual.len(),
    }
}
