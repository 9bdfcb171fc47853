//! Alerts: when a score raises one, how its severity follows the score without flapping, and
//! the lifecycle a person drives (open -> acknowledged -> resolved).
//!
//! Pure decisions: the caller owns storage and applies what [`AlertPolicy::decide`] returns.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// How urgent an alert is, in increasing order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
    Emergency,
}

/// What an alert is about. One unresolved alert exists per machine and category.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertCategory {
    /// Failure predicted within the horizon.
    Predictive,
    Esg,
    Energy,
    /// Behaviour unlike the machine type's healthy baseline.
    Operational,
    Safety,
}

/// A person's verdict on an alert, which is what the models' precision is measured by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// A true positive: the machine failed, or was found about to.
    Confirmed,
    /// A false positive: nothing was wrong.
    Rejected,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Confirmed => "confirmed",
            Verdict::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        [Verdict::Confirmed, Verdict::Rejected]
            .into_iter()
            .find(|v| v.as_str() == s)
    }
}

/// Where an alert is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertState {
    Open,
    Acknowledged,
    Resolved,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?}")]
pub struct UnknownVariant {
    kind: &'static str,
    value: String,
}

macro_rules! string_enum {
    ($t:ty, $kind:literal, { $($variant:ident => $s:literal),+ $(,)? }) => {
        impl $t {
            pub const ALL: &'static [$t] = &[$(<$t>::$variant),+];

            pub fn as_str(self) -> &'static str {
                match self {
                    $(<$t>::$variant => $s),+
                }
            }
        }

        impl FromStr for $t {
            type Err = UnknownVariant;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s {
                    $($s => Ok(<$t>::$variant),)+
                    other => Err(UnknownVariant { kind: $kind, value: other.to_owned() }),
                }
            }
        }

        impl fmt::Display for $t {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

string_enum!(Severity, "severity", {
    Info => "info", Warning => "warning", Critical => "critical", Emergency => "emergency",
});
string_enum!(AlertCategory, "alert category", {
    Predictive => "predictive", Esg => "esg", Energy => "energy",
    Operational => "operational", Safety => "safety",
});
string_enum!(AlertState, "alert state", {
    Open => "open", Acknowledged => "acknowledged", Resolved => "resolved",
});

/// A lifecycle step that is not allowed from the alert's current state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("an alert that is {from} cannot be {action}")]
pub struct TransitionError {
    pub from: AlertState,
    pub action: &'static str,
}

impl AlertState {
    /// Acknowledging says "someone is on it"; doing it twice is harmless, after resolution
    /// it is a mistake.
    pub fn acknowledge(self) -> Result<AlertState, TransitionError> {
        match self {
            AlertState::Open | AlertState::Acknowledged => Ok(AlertState::Acknowledged),
            AlertState::Resolved => Err(TransitionError {
                from: self,
                action: "acknowledged",
            }),
        }
    }

    pub fn resolve(self) -> Result<AlertState, TransitionError> {
        match self {
            AlertState::Open | AlertState::Acknowledged => Ok(AlertState::Resolved),
            AlertState::Resolved => Err(TransitionError {
                from: self,
                action: "resolved",
            }),
        }
    }

    pub fn is_unresolved(self) -> bool {
        self != AlertState::Resolved
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PolicyError {
    #[error("alert thresholds must be finite and strictly increasing with severity")]
    NotIncreasing,
    #[error("the hysteresis margin must be finite, non-negative and below the lowest threshold")]
    BadMargin,
}

/// The score at which each severity starts, how many consecutive scores it takes to raise or
/// to step down, and how far below a level the score must fall before the severity steps
/// down or the alert clears. Without the margin and the counts a score hovering around a
/// threshold would open and close an alert on every sample.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AlertPolicy {
    /// `(severity, threshold)` pairs, thresholds strictly increasing with severity.
    levels: Vec<(Severity, f64)>,
    margin: f64,
    raise_after: usize,
    clear_after: usize,
}

/// What to do with a machine's alert of one category after a new score.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AlertDecision {
    /// Nothing to change (no alert and none needed, or the open one stays as it is).
    Keep,
    /// No unresolved alert exists: open one.
    Raise(Severity),
    /// The unresolved alert's severity changes.
    Change(Severity),
    /// The condition is over: the unresolved alert is resolved by the system.
    Clear,
}

impl AlertPolicy {
    /// `raise_after` consecutive scores at or above a level raise an alert of the lowest
    /// severity they all reach; `clear_after` consecutive scores `margin` below the current
    /// level step it down or clear it. Both counts are at least 1.
    pub fn new(
        levels: Vec<(Severity, f64)>,
        margin: f64,
        raise_after: usize,
        clear_after: usize,
    ) -> Result<Self, PolicyError> {
        let increasing = levels
            .windows(2)
            .all(|w| w[0].0 < w[1].0 && w[0].1 < w[1].1);
        if levels.is_empty() || !increasing || levels.iter().any(|(_, t)| !t.is_finite()) {
            return Err(PolicyError::NotIncreasing);
        }
        if !(margin.is_finite() && margin >= 0.0 && margin < levels[0].1) {
            return Err(PolicyError::BadMargin);
        }
        Ok(Self {
            levels,
            margin,
            raise_after: raise_after.max(1),
            clear_after: clear_after.max(1),
        })
    }

    /// Warning from `threshold` (a model's calibrated alert threshold on the 0..=100 scale),
    /// critical half-way from there to 100, emergency at four fifths; cleared below
    /// `clear_ratio` × threshold.
    pub fn from_threshold(
        threshold: f64,
        clear_ratio: f64,
        raise_after: usize,
        clear_after: usize,
    ) -> Result<Self, PolicyError> {
        let span = 100.0 - threshold;
        Self::new(
            vec![
                (Severity::Warning, threshold),
                (Severity::Critical, threshold + 0.5 * span),
                (Severity::Emergency, threshold + 0.8 * span),
            ],
            threshold * (1.0 - clear_ratio),
            raise_after,
            clear_after,
        )
    }

    pub fn levels(&self) -> &[(Severity, f64)] {
        &self.levels
    }

    pub fn margin(&self) -> f64 {
        self.margin
    }

    /// How many of the latest scores [`decide`](Self::decide) looks at.
    pub fn memory(&self) -> usize {
        self.raise_after.max(self.clear_after)
    }

    /// The severity a score reaches with no alert open: the highest level at or below it.
    pub fn band(&self, score: f64) -> Option<Severity> {
        self.levels
            .iter()
            .rev()
            .find(|(_, t)| score >= *t)
            .map(|(s, _)| *s)
    }

    fn threshold(&self, severity: Severity) -> Option<f64> {
        self.levels
            .iter()
            .find(|(s, _)| *s == severity)
            .map(|(_, t)| *t)
    }

    /// Decides, for a machine whose unresolved alert (if any) has severity `current`, what
    /// the latest scores change; `recent` ends with the newest. Escalating an open alert is
    /// immediate. A newest score that is not finite changes nothing.
    pub fn decide(&self, current: Option<Severity>, recent: &[f64]) -> AlertDecision {
        let Some(&newest) = recent.last() else {
            return AlertDecision::Keep;
        };
        if !newest.is_finite() {
            return AlertDecision::Keep;
        }
        let Some(current) = current else {
            return match last_n(recent, self.raise_after) {
                // The severity every one of them reaches; NaN reaches none.
                Some(window) => window
                    .iter()
                    .map(|s| self.band(*s))
                    .min()
                    .flatten()
                    .map_or(AlertDecision::Keep, AlertDecision::Raise),
                None => AlertDecision::Keep,
            };
        };
        if let Some(reached) = self.band(newest).filter(|r| *r > current) {
            return AlertDecision::Change(reached);
        }
        let Some(window) = last_n(recent, self.clear_after) else {
            return AlertDecision::Keep;
        };
        // The highest of the window decides: every one of them must be clearly lower.
        let highest = window.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        if !highest.is_finite() {
            return AlertDecision::Keep;
        }
        // A severity outside the policy (set by an older configuration) steps down from the
        // lowest level's threshold.
        let current_threshold = self.threshold(current).unwrap_or(self.levels[0].1);
        if highest >= current_threshold - self.margin {
            return AlertDecision::Keep;
        }
        match self.band(highest + self.margin) {
            None => AlertDecision::Clear,
            Some(lower) if lower < current => AlertDecision::Change(lower),
            Some(_) => AlertDecision::Keep,
        }
    }
}

/// The last `n` scores, or `None` when there are fewer.
fn last_n(recent: &[f64], n: usize) -> Option<&[f64]> {
    recent.len().checked_sub(n).map(|start| &recent[start..])
}

impl Default for AlertPolicy {
    /// Scores run 0..=100: warning at 50, critical at 75, emergency at 90, each held until
    /// the score is 10 below its threshold; one score raises, one clears.
    fn default() -> Self {
        Self {
            levels: vec![
                (Severity::Warning, 50.0),
                (Severity::Critical, 75.0),
                (Severity::Emergency, 90.0),
            ],
            margin: 10.0,
            raise_after: 1,
            clear_after: 1,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn apply(policy: &AlertPolicy, scores: &[f64]) -> (Option<Severity>, usize, usize) {
        let mut current = None;
        let (mut raised, mut cleared) = (0, 0);
        for i in 0..scores.len() {
            match policy.decide(current, &scores[..=i]) {
                AlertDecision::Keep => {}
                AlertDecision::Raise(sev) => {
                    raised += 1;
                    current = Some(sev);
                }
                AlertDecision::Change(sev) => current = Some(sev),
                AlertDecision::Clear => {
                    cleared += 1;
                    current = None;
                }
            }
        }
        (current, raised, cleared)
    }

    #[test]
    fn a_score_crossing_a_threshold_raises_once_and_escalates_in_place() {
        let p = AlertPolicy::default();
        let (current, raised, cleared) = apply(&p, &[10.0, 55.0, 60.0, 80.0, 95.0, 92.0]);
        assert_eq!(current, Some(Severity::Emergency));
        assert_eq!((raised, cleared), (1, 0));
    }

    #[test]
    fn stepping_down_and_clearing_wait_for_the_margin() {
        let p = AlertPolicy::default();
        assert_eq!(
            p.decide(Some(Severity::Critical), &[70.0]),
            AlertDecision::Keep
        );
        assert_eq!(
            p.decide(Some(Severity::Critical), &[60.0]),
            AlertDecision::Change(Severity::Warning)
        );
        assert_eq!(
            p.decide(Some(Severity::Warning), &[45.0]),
            AlertDecision::Keep
        );
        assert_eq!(
            p.decide(Some(Severity::Warning), &[39.0]),
            AlertDecision::Clear
        );
        // Far below every level at once: clear, not step down one by one.
        assert_eq!(
            p.decide(Some(Severity::Emergency), &[5.0]),
            AlertDecision::Clear
        );
    }

    #[test]
    fn non_finite_scores_change_nothing() {
        let p = AlertPolicy::default();
        assert_eq!(p.decide(None, &[f64::NAN]), AlertDecision::Keep);
        assert_eq!(
            p.decide(Some(Severity::Warning), &[f64::NEG_INFINITY]),
            AlertDecision::Keep
        );
    }

    #[test]
    fn policies_must_be_ordered_with_a_sane_margin() {
        assert!(AlertPolicy::new(vec![], 1.0, 1, 1).is_err());
        assert!(AlertPolicy::new(
            vec![(Severity::Critical, 50.0), (Severity::Warning, 70.0)],
            1.0,
            1,
            1
        )
        .is_err());
        assert!(AlertPolicy::new(vec![(Severity::Warning, 50.0)], 60.0, 1, 1).is_err());
        assert!(AlertPolicy::new(vec![(Severity::Warning, 0.5)], 0.1, 1, 1).is_ok());
    }

    #[test]
    fn debouncing_needs_consecutive_scores_to_raise_and_to_clear() {
        let p = AlertPolicy::from_threshold(40.0, 0.7, 2, 3).unwrap();
        assert_eq!(p.decide(None, &[10.0, 45.0]), AlertDecision::Keep);
        assert_eq!(
            p.decide(None, &[45.0, 41.0]),
            AlertDecision::Raise(Severity::Warning)
        );
        // Raised at the lowest severity both reached.
        assert_eq!(
            p.decide(None, &[95.0, 45.0]),
            AlertDecision::Raise(Severity::Warning)
        );
        // Too few scores yet: wait.
        assert_eq!(p.decide(None, &[99.0]), AlertDecision::Keep);
        let w = Some(Severity::Warning);
        assert_eq!(p.decide(w, &[10.0, 10.0, 35.0]), AlertDecision::Keep);
        assert_eq!(p.decide(w, &[10.0, 10.0, 10.0]), AlertDecision::Clear);
        // Escalation does not wait.
        assert_eq!(
            p.decide(w, &[10.0, 10.0, 75.0]),
            AlertDecision::Change(Severity::Critical)
        );
    }

    #[test]
    fn lifecycle_moves_forward_only() {
        assert_eq!(AlertState::Open.acknowledge(), Ok(AlertState::Acknowledged));
        assert_eq!(AlertState::Acknowledged.resolve(), Ok(AlertState::Resolved));
        assert_eq!(AlertState::Open.resolve(), Ok(AlertState::Resolved));
        assert!(AlertState::Resolved.acknowledge().is_err());
        assert!(AlertState::Resolved.resolve().is_err());
    }

    #[test]
    fn names_round_trip() {
        for s in Severity::ALL {
            assert_eq!(s.as_str().parse::<Severity>(), Ok(*s));
        }
        for c in AlertCategory::ALL {
            assert_eq!(c.as_str().parse::<AlertCategory>(), Ok(*c));
        }
        for s in AlertState::ALL {
            assert_eq!(s.as_str().parse::<AlertState>(), Ok(*s));
        }
        assert!("loud".parse::<Severity>().is_err());
    }

    proptest! {
        /// A score wobbling within the margin around a threshold raises at most one alert
        /// and never clears it.
        #[test]
        fn no_flapping_within_the_margin(
            wobble in proptest::collection::vec(-9.99f64..9.99, 1..200),
        ) {
            let p = AlertPolicy::default();
            let scores: Vec<f64> = wobble.iter().map(|w| 50.0 + w.abs()).chain(
                wobble.iter().map(|w| 50.0 - w.abs())).collect();
            let (_, raised, cleared) = apply(&p, &scores);
            prop_assert!(raised <= 1);
            prop_assert_eq!(cleared, 0);
        }

        /// Whatever happened before, the severity after a score never exceeds what the score
        /// reaches, and an open alert never sits more than the margin above the score.
        #[test]
        fn severity_tracks_the_score(
            scores in proptest::collection::vec(0.0f64..100.0, 1..100),
        ) {
            let p = AlertPolicy::default();
            let mut current = None;
            for i in 0..scores.len() {
                let s = scores[i];
                current = match p.decide(current, &scores[..=i]) {
                    AlertDecision::Keep => current,
                    AlertDecision::Raise(sev) | AlertDecision::Change(sev) => Some(sev),
                    AlertDecision::Clear => None,
                };
                prop_assert!(current <= p.band(s + p.margin()));
                prop_assert!(current >= p.band(s));
            }
        }
    }
}
