//! Training: per machine type, an anomaly baseline from healthy windows, a probability
//! forest for "failure within the horizon" and a RUL forest; the classifier's depth and the
//! alert threshold are chosen on validation runs held out of the training runs.

use aurum_domain::MachineType;
use chrono::Utc;
use serde::{Deserialize, Serialize};

use crate::alerting::{replay, summarise, AlertSettings, RunPoint};
use crate::anomaly::AnomalyDetector;
use crate::artifact::ModelArtifact;
use crate::dataset::{Dataset, LabelledSample, RunPhase};
use crate::error::ModelError;
use crate::forest::{Forest, ForestParams};
use crate::metrics::roc_auc;
use crate::model::{model_columns, TypeModels};
use crate::runs::{group_by_run, in_operation, inputs_of};
use crate::window::schema_for;

/// How to train.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainOptions {
    pub version: String,
    /// Predict a breakdown within this many hours.
    pub horizon_h: f64,
    /// RUL targets are clipped here: far from a failure, the data says only "not soon".
    pub rul_cap_h: f64,
    /// Share of each type's training runs held out to choose the depth and threshold.
    pub validation_fraction: f64,
    pub seed: u64,
    pub classifier: ForestParams,
    /// Classifier depths tried; the one with the best validation ROC-AUC is kept.
    pub depth_candidates: Vec<u16>,
    pub regressor: ForestParams,
    /// Quantile of healthy windows' anomaly scores the threshold is set at.
    pub anomaly_quantile: f64,
    /// Hysteresis the alert threshold is chosen with.
    pub policy: AlertSettings,
    /// The lowest threshold whose false alarms per machine-day on the validation runs stay
    /// at or below this is chosen: lower thresholds warn earlier.
    pub max_false_alarms_per_day: f64,
}

impl Default for TrainOptions {
    fn default() -> Self {
        Self {
            version: format!("{}", Utc::now().format("%Y-%m-%d")),
            horizon_h: 72.0,
            rul_cap_h: 168.0,
            validation_fraction: 0.25,
            seed: 17,
            classifier: ForestParams::default(),
            depth_candidates: vec![6, 10],
            regressor: ForestParams::default(),
            anomaly_quantile: 0.99,
            policy: AlertSettings::default(),
            // Half the 0.05 target: validation runs are few, so keep a margin.
            max_false_alarms_per_day: 0.025,
        }
    }
}

impl TrainOptions {
    fn check(&self) -> Result<(), ModelError> {
        let bad = |what: String| Err(ModelError::InvalidOption(what));
        if !(self.horizon_h.is_finite() && self.horizon_h > 0.0) {
            return bad(format!("horizon {} h must be positive", self.horizon_h));
        }
        if !(self.rul_cap_h.is_finite() && self.rul_cap_h >= self.horizon_h) {
            return bad(format!(
                "RUL cap {} h must be at least the horizon {} h",
                self.rul_cap_h, self.horizon_h
            ));
        }
        if !(self.validation_fraction > 0.0 && self.validation_fraction < 1.0) {
            return bad(format!(
                "validation fraction {} must be within (0, 1)",
                self.validation_fraction
            ));
        }
        if !(self.anomaly_quantile > 0.0 && self.anomaly_quantile < 1.0) {
            return bad(format!(
                "anomaly quantile {} must be within (0, 1)",
                self.anomaly_quantile
            ));
        }
        Ok(())
    }
}

/// Trains the models of every machine type present in `data`.
pub fn train(data: &Dataset, opts: &TrainOptions) -> Result<ModelArtifact, ModelError> {
    opts.check()?;
    let window = data.window;
    let mut types = Vec::new();
    for t in MachineType::ALL {
        let of_type = data.of_type(t);
        if of_type.samples.is_empty() {
            continue;
        }
        types.push(train_type(t, &of_type, opts)?);
    }
    if types.is_empty() {
        return Err(ModelError::InvalidOption(
            "the dataset has no samples".into(),
        ));
    }
    Ok(ModelArtifact {
        version: opts.version.clone(),
        trained_at: Utc::now(),
        horizon_h: opts.horizon_h,
        rul_cap_h: opts.rul_cap_h,
        window,
        evaluation: None,
        types,
    })
}

/// Model inputs and targets of the running samples of one type.
struct Prepared<'a> {
    samples: Vec<&'a LabelledSample>,
    rows: Vec<Vec<f64>>,
}

impl Prepared<'_> {
    fn event_targets(&self, horizon_h: f64) -> Vec<f64> {
        self.samples
            .iter()
            .map(|s| f64::from(u8::from(s.time_to_failure_h <= horizon_h)))
            .collect()
    }
}

fn prepare<'a>(
    data: &'a Dataset,
    schema: &aurum_domain::FeatureSchema,
    columns: &[usize],
    names: &[String],
) -> Prepared<'a> {
    let (samples, rows) = inputs_of(
        schema,
        columns,
        names,
        data.samples.iter().filter(|s| in_operation(s)),
    );
    Prepared { samples, rows }
}

fn train_type(
    t: MachineType,
    data: &Dataset,
    opts: &TrainOptions,
) -> Result<TypeModels, ModelError> {
    let not_enough = |reason: String| ModelError::NotEnoughData {
        machine_type: t,
        reason,
    };
    let failed = |model: &'static str| {
        move |message: String| ModelError::Training {
            machine_type: t,
            model,
            message,
        }
    };
    let schema = schema_for(t);
    let (columns, names) = model_columns(&schema);
    let all = prepare(data, &schema, &columns, &names);
    let targets = all.event_targets(opts.horizon_h);
    let positives = targets.iter().filter(|&&y| y > 0.5).count();
    if positives == 0 || positives == targets.len() {
        return Err(not_enough(format!(
            "{} samples of which {positives} fail within {} h: both outcomes are needed",
            targets.len(),
            opts.horizon_h
        )));
    }
    let runs = data.run_ids().len();
    if runs < 2 {
        return Err(not_enough(format!(
            "{runs} run(s): at least two are needed to hold one out for validation"
        )));
    }

    // Choose on validation runs, never on the data judged later.
    let (fit_part, validation_part) = data.split_by_run(opts.validation_fraction, opts.seed);
    let fit = prepare(&fit_part, &schema, &columns, &names);
    let validation = prepare(&validation_part, &schema, &columns, &names);
    let (depth, validation_probabilities) =
        choose_depth(&fit, &validation, opts).map_err(failed("failure classifier"))?;
    let alert_threshold = choose_threshold(&validation, &validation_probabilities, opts);

    let classifier_params = ForestParams {
        max_depth: depth,
        ..opts.classifier
    };
    let failure = Forest::fit(&all.rows, &targets, &classifier_params)
        .map_err(failed("failure classifier"))?;
    let rul_targets: Vec<f64> = all
        .samples
        .iter()
        .map(|s| s.time_to_failure_h.min(opts.rul_cap_h))
        .collect();
    let rul =
        Forest::fit(&all.rows, &rul_targets, &opts.regressor).map_err(failed("RUL regressor"))?;

    let window_h = data.window.max_age_s as f64 / 3_600.0;
    let healthy: Vec<Vec<f64>> = all
        .samples
        .iter()
        .zip(&all.rows)
        // Early in a run the window still holds the previous breakdown and repair.
        .filter(|(s, _)| s.phase == RunPhase::Normal && s.hours_since_run_start >= window_h)
        .map(|(_, row)| row.clone())
        .collect();
    let anomaly = AnomalyDetector::fit(&healthy, opts.anomaly_quantile).ok_or_else(|| {
        not_enough("no healthy (normal phase) windows for the anomaly baseline".into())
    })?;

    let width = columns.len();
    let mut input_min = vec![f64::INFINITY; width];
    let mut input_max = vec![f64::NEG_INFINITY; width];
    for row in &all.rows {
        for (j, &v) in row.iter().enumerate() {
            input_min[j] = input_min[j].min(v);
            input_max[j] = input_max[j].max(v);
        }
    }

    Ok(TypeModels {
        machine_type: t,
        schema,
        inputs: names,
        columns,
        anomaly,
        failure,
        rul,
        input_min,
        input_max,
        alert_threshold,
        training_runs: runs,
        training_samples: all.rows.len(),
    })
}

/// Fits a classifier per candidate depth on `fit` and keeps the depth with the best ROC-AUC
/// on `validation` (the first on ties), with its validation probabilities.
fn choose_depth(
    fit: &Prepared<'_>,
    validation: &Prepared<'_>,
    opts: &TrainOptions,
) -> Result<(u16, Vec<f64>), String> {
    let fit_targets = fit.event_targets(opts.horizon_h);
    let labels: Vec<bool> = validation
        .event_targets(opts.horizon_h)
        .iter()
        .map(|&y| y > 0.5)
        .collect();
    let mut candidates = opts.depth_candidates.clone();
    if candidates.is_empty() {
        candidates.push(opts.classifier.max_depth);
    }
    let mut best: Option<(f64, u16, Vec<f64>)> = None;
    for depth in candidates {
        let params = ForestParams {
            max_depth: depth,
            ..opts.classifier
        };
        let forest = Forest::fit(&fit.rows, &fit_targets, &params)?;
        let probabilities = forest.predict_many(&validation.rows)?;
        let auc = roc_auc(&probabilities, &labels).unwrap_or(0.5);
        if best.as_ref().is_none_or(|(b, _, _)| auc > *b) {
            best = Some((auc, depth, probabilities));
        }
    }
    best.map(|(_, depth, p)| (depth, p))
        .ok_or_else(|| "no classifier depth to try".to_owned())
}

/// Among thresholds (a 0.01 grid) whose validation false alarms per machine-day stay within
/// the budget, the one detecting the most failing runs, then with the most precise alerts,
/// then the lowest (earliest warning); the one with the fewest false alarms when none does.
fn choose_threshold(validation: &Prepared<'_>, probabilities: &[f64], opts: &TrainOptions) -> f64 {
    let runs: Vec<Vec<RunPoint>> = group_by_run(&validation.samples)
        .iter()
        .map(|idx| {
            let start = idx
                .first()
                .map(|&i| validation.samples[i].features.window_end);
            idx.iter()
                .map(|&i| {
                    let s = validation.samples[i];
                    RunPoint {
                        hours: start.map_or(0.0, |t0| {
                            (s.features.window_end - t0).as_seconds_f64() / 3_600.0
                        }),
                        time_to_failure_h: s.time_to_failure_h,
                        probability: probabilities.get(i).copied().unwrap_or(0.0),
                    }
                })
                .collect()
        })
        .collect();
    // (recall, precision) of the best threshold within budget, and the fewest false alarms.
    let mut best: Option<((f64, f64), f64)> = None;
    let mut fewest: Option<(f64, f64)> = None;
    for step in 5..=95 {
        let threshold = f64::from(step) / 100.0;
        let policy = opts.policy.policy(threshold).ok();
        let replays: Vec<_> = runs
            .iter()
            .map(|run| replay(run, policy.as_ref(), opts.horizon_h))
            .collect();
        let (figures, _) = summarise(&replays, opts.horizon_h);
        let rate = figures.false_alarms_per_day().unwrap_or(0.0);
        if rate <= opts.max_false_alarms_per_day {
            let key = (
                figures.recall().unwrap_or(0.0),
                figures.precision().unwrap_or(0.0),
            );
            // Strictly better only: ties keep the lower, earlier-warning threshold.
            if best.is_none_or(|(b, _)| key > b) {
                best = Some((key, threshold));
            }
        }
        if fewest.is_none_or(|(r, _)| rate < r) {
            fewest = Some((rate, threshold));
        }
    }
    best.map(|(_, t)| t)
        .or(fewest.map(|(_, t)| t))
        .unwrap_or(0.5)
}
