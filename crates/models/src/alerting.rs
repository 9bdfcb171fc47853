//! Offline replay of the service's alerting: a run's failure probabilities go through the
//! domain's [`AlertPolicy`] exactly as the prediction service feeds its risk scores, so the
//! event-level figures of evaluation and threshold selection measure what operators will see.

use aurum_domain::prediction::{AlertDecision, AlertPolicy, PolicyError, Severity};
use serde::{Deserialize, Serialize};

/// How the alert policy is built from a machine type's threshold.
///
/// Raised after `raise_after` consecutive samples with probability ≥ the threshold; once
/// raised, cleared after `clear_after` consecutive samples below `clear_ratio` × threshold
/// (see [`AlertPolicy::from_threshold`]). The threshold itself is learned per machine type on
/// validation runs during training (see [`crate::TrainOptions::max_false_alarms_per_day`]);
/// `threshold` overrides it.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct AlertSettings {
    pub raise_after: usize,
    pub clear_after: usize,
    pub clear_ratio: f64,
    pub threshold: Option<f64>,
}

impl Default for AlertSettings {
    /// With one sample an hour: two hours above the threshold raise, six hours well below
    /// (70 % of it) clear.
    fn default() -> Self {
        Self {
            raise_after: 2,
            clear_after: 6,
            clear_ratio: 0.7,
            threshold: None,
        }
    }
}

impl AlertSettings {
    /// The policy the prediction service applies to a type whose alert threshold is
    /// `threshold` (a probability): on the 0..=100 risk scale.
    pub fn policy(&self, threshold: f64) -> Result<AlertPolicy, PolicyError> {
        AlertPolicy::from_threshold(
            threshold * 100.0,
            self.clear_ratio,
            self.raise_after,
            self.clear_after,
        )
    }
}

/// One prediction of a run, in time order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RunPoint {
    pub hours: f64,
    pub time_to_failure_h: f64,
    pub probability: f64,
}

/// What the alerts did over one run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct RunAlerts {
    /// Time to failure when each alert was raised.
    pub raised_at_ttf: Vec<f64>,
    /// Time to failure at the raise of the alert still up at the run's last prediction.
    pub standing_alert_ttf: Option<f64>,
    /// Whether an alert was up at some prediction within the horizon.
    pub alerted_within_horizon: bool,
    /// Whether the run has predictions within the horizon at all.
    pub reaches_horizon: bool,
    /// Hours of operation with the failure further than the horizon.
    pub normal_hours: f64,
}

/// Replays `points` (one run, in time order) through `policy`, as the service would have
/// decided after each score; `None` (a threshold no policy can be built from) raises nothing,
/// as in the service.
pub fn replay(points: &[RunPoint], policy: Option<&AlertPolicy>, horizon_h: f64) -> RunAlerts {
    // The service's risk scale.
    let scores: Vec<f64> = points.iter().map(|p| p.probability * 100.0).collect();
    let mut out = RunAlerts::default();
    let mut current: Option<Severity> = None;
    let mut current_raise: Option<f64> = None;
    // The policy looks at no more than its memory of scores.
    let memory = policy.map_or(1, AlertPolicy::memory);
    for (i, p) in points.iter().enumerate() {
        let recent = &scores[(i + 1).saturating_sub(memory)..=i];
        match policy.map_or(AlertDecision::Keep, |policy| policy.decide(current, recent)) {
            AlertDecision::Keep => {}
            AlertDecision::Raise(severity) => {
                current = Some(severity);
                out.raised_at_ttf.push(p.time_to_failure_h);
                current_raise = Some(p.time_to_failure_h);
            }
            AlertDecision::Change(severity) => current = Some(severity),
            AlertDecision::Clear => {
                current = None;
                current_raise = None;
            }
        }
        let within = p.time_to_failure_h <= horizon_h;
        out.reaches_horizon |= within;
        out.alerted_within_horizon |= within && current.is_some();
        if !within {
            // The interval up to the next prediction (or a typical one for the last).
            let next = points.get(i + 1).map(|n| n.hours);
            let previous = i.checked_sub(1).map(|j| points[j].hours);
            let step = match (next, previous) {
                (Some(n), _) => n - p.hours,
                (None, Some(prev)) => p.hours - prev,
                (None, None) => 0.0,
            };
            out.normal_hours += step.max(0.0);
        }
    }
    out.standing_alert_ttf = current_raise;
    out
}

/// Event-level figures over many runs.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct AlertFigures {
    pub alerts: usize,
    pub true_alerts: usize,
    pub false_alerts: usize,
    pub runs_reaching_horizon: usize,
    pub runs_detected: usize,
    pub normal_days: f64,
    pub lead_times_h: usize,
}

/// Sums per-run replays; returns the figures and the lead times of the detected runs.
pub fn summarise(runs: &[RunAlerts], horizon_h: f64) -> (AlertFigures, Vec<f64>) {
    let mut f = AlertFigures::default();
    let mut leads = Vec::new();
    for run in runs {
        f.alerts += run.raised_at_ttf.len();
        let true_now = run
            .raised_at_ttf
            .iter()
            .filter(|&&ttf| ttf <= horizon_h)
            .count();
        f.true_alerts += true_now;
        f.false_alerts += run.raised_at_ttf.len() - true_now;
        f.normal_days += run.normal_hours / 24.0;
        if run.reaches_horizon {
            f.runs_reaching_horizon += 1;
            if run.alerted_within_horizon {
                f.runs_detected += 1;
            }
        }
        if let Some(lead) = run.standing_alert_ttf {
            leads.push(lead);
        }
    }
    f.lead_times_h = leads.len();
    (f, leads)
}

impl AlertFigures {
    pub fn precision(&self) -> Option<f64> {
        (self.alerts > 0).then(|| self.true_alerts as f64 / self.alerts as f64)
    }

    pub fn recall(&self) -> Option<f64> {
        (self.runs_reaching_horizon > 0)
            .then(|| self.runs_detected as f64 / self.runs_reaching_horizon as f64)
    }

    pub fn false_alarms_per_day(&self) -> Option<f64> {
        (self.normal_days > 0.0).then(|| self.false_alerts as f64 / self.normal_days)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(probabilities: &[f64]) -> Vec<RunPoint> {
        let n = probabilities.len();
        probabilities
            .iter()
            .enumerate()
            .map(|(i, &probability)| RunPoint {
                hours: i as f64,
                time_to_failure_h: (n - i) as f64,
                probability,
            })
            .collect()
    }

    #[test]
    fn one_spike_does_not_raise_and_a_dip_does_not_clear() {
        let policy = AlertSettings::default().policy(0.5).unwrap();
        let mut p = vec![0.1; 20];
        p[3] = 0.9; // a lone spike
        for v in &mut p[10..] {
            *v = 0.8;
        }
        p[15] = 0.2; // one quiet window inside the episode
        let alerts = replay(&run(&p), Some(&policy), 12.0);
        assert_eq!(alerts.raised_at_ttf, vec![9.0]);
        assert_eq!(alerts.standing_alert_ttf, Some(9.0));
        assert!(alerts.alerted_within_horizon);
        assert_eq!(alerts.normal_hours, 8.0);
    }

    #[test]
    fn an_early_alert_that_clears_is_a_false_alarm_and_no_lead() {
        let policy = AlertSettings::default().policy(0.5).unwrap();
        let mut p = vec![0.9; 3];
        p.extend(vec![0.0; 17]);
        let alerts = replay(&run(&p), Some(&policy), 5.0);
        let (figures, leads) = summarise(&[alerts], 5.0);
        assert_eq!(figures.false_alerts, 1);
        assert_eq!(figures.recall(), Some(0.0));
        assert!(leads.is_empty());
    }

    #[test]
    fn an_escalated_alert_steps_down_before_it_clears_and_is_raised_once() {
        let policy = AlertSettings::default().policy(0.5).unwrap();
        let mut p = vec![0.95; 2]; // raised at once as an emergency
        p.extend(vec![0.45; 6]); // below every higher level, not below 70 % of 0.5
        p.extend(vec![0.3; 6]); // well below: cleared
        let alerts = replay(&run(&p), Some(&policy), 1.0);
        assert_eq!(alerts.raised_at_ttf, vec![13.0]);
        assert_eq!(alerts.standing_alert_ttf, None);
    }

    #[test]
    fn without_a_policy_nothing_is_raised() {
        let alerts = replay(&run(&[0.99; 10]), None, 3.0);
        assert!(alerts.raised_at_ttf.is_empty());
        assert!(!alerts.alerted_within_horizon);
        assert!(alerts.reaches_horizon);
    }

    #[test]
    fn thresholds_no_policy_fits_are_refused() {
        let settings = AlertSettings::default();
        assert!(settings.policy(1.0).is_err());
        assert!(settings.policy(0.0).is_err());
        assert!(settings.policy(0.42).is_ok());
    }
}
