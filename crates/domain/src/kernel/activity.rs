//! Activity: a rate metric (fuel in L/h, power in kW, throughput in t/h) integrated over time
//! into an amount (litres, kWh, tonnes), the quantity emission factors and energy reports are
//! applied to.
//!
//! Integration is on the stream, in constant memory, and safe against what real telemetry
//! does: gaps (the machine was off, the link was down), late and replayed samples. Amounts are
//! handed out as consecutive non-overlapping periods, so summing them never counts anything
//! twice.

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::catalogue::Unit;
use crate::features::Sample;

/// What integrating a rate over hours yields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ActivityUnit {
    #[serde(rename = "L")]
    Litres,
    #[serde(rename = "kWh")]
    KilowattHours,
    #[serde(rename = "t")]
    Tonnes,
}

impl ActivityUnit {
    pub fn symbol(self) -> &'static str {
        match self {
            ActivityUnit::Litres => "L",
            ActivityUnit::KilowattHours => "kWh",
            ActivityUnit::Tonnes => "t",
        }
    }
}

/// The unit of a rate metric's integral over hours, for the rates that feed activity
/// accounting; `None` for everything else. Volumetric water flow (m3/h) is a rate too, but no
/// emission or energy figure is derived from it, so it is not accounted. Energy already counted
/// by the device (kWh per message) is an amount, not a rate: integrating it would be wrong.
pub fn rate_unit_integral(unit: Unit) -> Option<ActivityUnit> {
    match unit {
        Unit::LitresPerHour => Some(ActivityUnit::Litres),
        Unit::Kilowatts => Some(ActivityUnit::KilowattHours),
        Unit::TonnesPerHour => Some(ActivityUnit::Tonnes),
        _ => None,
    }
}

/// An amount accumulated over `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Activity {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// The rate times hours; finite (saturates at `±f64::MAX`).
    pub amount: f64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ActivityError {
    #[error("the longest integrated gap must be positive, got {0}")]
    NonPositiveGap(TimeDelta),
}

/// Integrates one rate metric of one machine over time with the trapezoid rule between
/// consecutive samples in timestamp order.
///
/// - Two samples further apart than `max_gap` are not joined: the machine was off or the data
///   is missing, and guessing what happened in between would invent activity.
/// - A sample not newer than the last one integrated is ignored, so a replay or a late
///   duplicate never counts twice. The price is that a genuinely late sample is lost; with
///   the trapezoid rule dropping a sample can move the integral either way, but it is never
///   counted twice.
/// - [`take`](Self::take) hands out what accumulated since the previous take as a period
///   `[from, to)` that starts where the previous one ended, ending at the newest sample.
#[derive(Debug, Clone, PartialEq)]
pub struct RateIntegrator {
    max_gap: TimeDelta,
    last: Option<Sample>,
    /// Where the next period starts: the end of the previous one, or the first sample.
    period_start: Option<DateTime<Utc>>,
    amount: f64,
}

impl RateIntegrator {
    pub fn new(max_gap: TimeDelta) -> Result<Self, ActivityError> {
        if max_gap <= TimeDelta::zero() {
            return Err(ActivityError::NonPositiveGap(max_gap));
        }
        Ok(Self {
            max_gap,
            last: None,
            period_start: None,
            amount: 0.0,
        })
    }

    pub fn max_gap(&self) -> TimeDelta {
        self.max_gap
    }

    /// The newest sample integrated so far.
    pub fn last(&self) -> Option<Sample> {
        self.last
    }

    /// The amount accumulated since the previous take.
    pub fn pending(&self) -> f64 {
        self.amount
    }

    /// Adds a rate sample; returns whether it was used. Non-finite rates are ignored, and so
    /// is a sample not newer than the last one used.
    pub fn push(&mut self, ts: DateTime<Utc>, rate: f64) -> bool {
        if !rate.is_finite() {
            return false;
        }
        match self.last {
            None => {
                self.period_start.get_or_insert(ts);
            }
            Some(prev) if ts <= prev.ts => return false,
            Some(prev) => {
                let gap = ts - prev.ts;
                if gap <= self.max_gap {
                    let hours = gap.as_seconds_f64() / 3_600.0;
                    // Halves first: the sum of two large rates must not overflow.
                    let area = (prev.value / 2.0 + rate / 2.0) * hours;
                    self.amount = (self.amount + area).clamp(-f64::MAX, f64::MAX);
                }
            }
        }
        self.last = Some(Sample { ts, value: rate });
        true
    }

    /// The amount accumulated since the previous take, over `[from, to)` where `from` is the
    /// previous period's end (or the first sample) and `to` the newest sample; then starts a
    /// new period at `to`. `None` when no time has passed since the previous take.
    pub fn take(&mut self) -> Option<Activity> {
        let from = self.period_start?;
        let to = self.last?.ts;
        if to <= from {
            return None;
        }
        let activity = Activity {
            from,
            to,
            amount: self.amount,
        };
        self.period_start = Some(to);
        self.amount = 0.0;
        Some(activity)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn at(seconds: i64) -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + TimeDelta::seconds(1_700_000_000 + seconds)
    }

    fn integrator(max_gap_s: i64) -> RateIntegrator {
        RateIntegrator::new(TimeDelta::seconds(max_gap_s)).unwrap()
    }

    fn close(a: f64, b: f64, tolerance: f64) -> bool {
        (a - b).abs() <= tolerance
    }

    /// Integrates `samples` in the given order and takes once.
    fn total(max_gap_s: i64, samples: &[(i64, f64)]) -> f64 {
        let mut i = integrator(max_gap_s);
        for &(s, r) in samples {
            i.push(at(s), r);
        }
        i.take().map_or(0.0, |a| a.amount)
    }

    #[test]
    fn rate_units_map_to_their_amounts() {
        assert_eq!(
            rate_unit_integral(Unit::LitresPerHour),
            Some(ActivityUnit::Litres)
        );
        assert_eq!(
            rate_unit_integral(Unit::Kilowatts),
            Some(ActivityUnit::KilowattHours)
        );
        assert_eq!(
            rate_unit_integral(Unit::TonnesPerHour),
            Some(ActivityUnit::Tonnes)
        );
        for not_a_rate in [
            Unit::KilowattHours,
            Unit::Tonnes,
            Unit::Celsius,
            Unit::Rpm,
            Unit::Percent,
        ] {
            assert_eq!(rate_unit_integral(not_a_rate), None, "{not_a_rate:?}");
        }
    }

    #[test]
    fn the_catalogue_has_a_rate_of_each_kind() {
        use crate::MachineType;
        let rates: Vec<_> = MachineType::ALL
            .iter()
            .flat_map(|t| t.catalogue())
            .filter_map(|m| rate_unit_integral(m.unit).map(|u| (m.name, u)))
            .collect();
        assert!(rates.contains(&("fuel_rate_lh", ActivityUnit::Litres)));
        assert!(rates.contains(&("power_kw", ActivityUnit::KilowattHours)));
        assert!(rates.iter().any(|&(_, u)| u == ActivityUnit::Tonnes));
    }

    #[test]
    fn a_ramp_is_integrated_exactly() {
        // 0 -> 100 kW over one hour: 50 kWh.
        let mut i = integrator(3_600);
        assert!(i.push(at(0), 0.0));
        assert!(i.push(at(3_600), 100.0));
        let a = i.take().unwrap();
        assert_eq!((a.from, a.to, a.amount), (at(0), at(3_600), 50.0));
        assert_eq!(i.take(), None);
    }

    #[test]
    fn gaps_longer_than_max_gap_are_not_integrated() {
        let mut i = integrator(60);
        i.push(at(0), 100.0);
        i.push(at(36), 100.0); // 1 L
        i.push(at(36 + 3_600), 100.0); // off for an hour: nothing
        i.push(at(72 + 3_600), 100.0); // 1 L
        let a = i.take().unwrap();
        assert!(close(a.amount, 2.0, 1e-12), "{}", a.amount);
        assert_eq!((a.from, a.to), (at(0), at(72 + 3_600)));
    }

    #[test]
    fn late_duplicate_and_non_finite_samples_are_ignored() {
        let mut i = integrator(600);
        assert!(i.push(at(100), 10.0));
        assert!(!i.push(at(100), 10.0));
        assert!(!i.push(at(50), 10.0));
        assert!(!i.push(at(200), f64::NAN));
        assert!(!i.push(at(200), f64::INFINITY));
        assert!(i.push(at(460), 10.0));
        assert!(close(i.take().unwrap().amount, 1.0, 1e-12));
    }

    #[test]
    fn periods_are_contiguous_and_empty_takes_are_none() {
        let mut i = integrator(600);
        assert_eq!(i.take(), None);
        i.push(at(0), 1.0);
        assert_eq!(i.take(), None, "a single sample spans no time");
        i.push(at(60), 1.0);
        let first = i.take().unwrap();
        assert_eq!(i.take(), None);
        i.push(at(120), 1.0);
        let second = i.take().unwrap();
        assert_eq!(first.to, second.from);
        assert_eq!((first.from, second.to), (at(0), at(120)));
    }

    #[test]
    fn huge_rates_saturate_instead_of_overflowing() {
        let mut i = integrator(100_000);
        i.push(at(0), f64::MAX);
        i.push(at(90_000), f64::MAX);
        i.push(at(180_000), f64::MAX);
        assert_eq!(i.take().unwrap().amount, f64::MAX);
    }

    #[test]
    fn max_gap_must_be_positive() {
        assert!(RateIntegrator::new(TimeDelta::zero()).is_err());
        assert!(RateIntegrator::new(TimeDelta::seconds(-1)).is_err());
    }

    /// Strictly increasing seconds with steps up to `max_step`, with rates from `rates`.
    fn stream(
        rates: impl Strategy<Value = f64>,
        max_step: i64,
        len: std::ops::Range<usize>,
    ) -> impl Strategy<Value = Vec<(i64, f64)>> {
        prop::collection::vec((1..=max_step, rates), len).prop_map(|steps| {
            let mut s = 0;
            steps
                .into_iter()
                .map(|(step, rate)| {
                    s += step;
                    (s, rate)
                })
                .collect()
        })
    }

    proptest! {
        #[test]
        fn constant_rate_over_t_hours_gives_rate_times_t(
            rate in 0.0..1e4f64,
            samples in stream(Just(0.0), 300, 2..400),
        ) {
            let samples: Vec<(i64, f64)> = samples.into_iter().map(|(s, _)| (s, rate)).collect();
            let hours = (samples[samples.len() - 1].0 - samples[0].0) as f64 / 3_600.0;
            let amount = total(300, &samples);
            prop_assert!(close(amount, rate * hours, 1e-9 * (rate * hours).max(1.0)),
                "{} vs {}", amount, rate * hours);
        }

        #[test]
        fn summing_taken_periods_equals_integrating_at_once(
            samples in stream(0.0..600.0f64, 900, 1..200),
            takes in prop::collection::vec(any::<bool>(), 200),
        ) {
            let mut split = integrator(600);
            let mut periods = Vec::new();
            for (k, &(s, r)) in samples.iter().enumerate() {
                split.push(at(s), r);
                if takes[k] {
                    periods.extend(split.take());
                }
            }
            periods.extend(split.take());
            let whole = total(600, &samples);
            let sum: f64 = periods.iter().map(|p| p.amount).sum();
            prop_assert!(close(sum, whole, 1e-9 * whole.max(1.0)), "{} vs {}", sum, whole);
            for pair in periods.windows(2) {
                prop_assert_eq!(pair[0].to, pair[1].from);
            }
            for p in &periods {
                prop_assert!(p.from < p.to);
            }
            if let (Some(first), Some(last)) = (periods.first(), periods.last()) {
                prop_assert_eq!(first.from, at(samples[0].0));
                prop_assert_eq!(last.to, at(samples[samples.len() - 1].0));
            }
        }

        #[test]
        fn amount_is_never_negative_for_non_negative_rates(
            samples in prop::collection::vec((0i64..100_000, prop_oneof![
                8 => 0.0..1e6f64,
                1 => Just(f64::MAX),
                1 => Just(f64::NAN),
            ]), 0..100),
            max_gap in 1i64..5_000,
        ) {
            let mut i = integrator(max_gap);
            for &(s, r) in &samples {
                i.push(at(s), r);
                prop_assert!(i.pending() >= 0.0);
                if let Some(a) = i.take() {
                    prop_assert!(a.amount >= 0.0 && a.amount.is_finite());
                }
            }
        }

        /// Any replay of samples already seen, in any order and interleaved with the stream,
        /// leaves the total exactly as it was.
        #[test]
        fn replays_never_change_the_total(
            samples in stream(0.0..600.0f64, 900, 1..100),
            replays in prop::collection::vec((any::<prop::sample::Index>(), any::<prop::sample::Index>()), 0..100),
        ) {
            let mut i = integrator(600);
            let mut replays: Vec<(usize, prop::sample::Index)> = replays
                .into_iter()
                .map(|(when, which)| (when.index(samples.len()), which))
                .collect();
            replays.sort_by_key(|r| r.0);
            let mut replays = replays.into_iter().peekable();
            // Interleave: after sample k, replay those whose slot falls at k, each one picked
            // among the samples already pushed.
            for (k, &(s, r)) in samples.iter().enumerate() {
                i.push(at(s), r);
                while let Some((when, which)) = replays.peek() {
                    if *when > k {
                        break;
                    }
                    let (rs, rr) = samples[which.index(k + 1)];
                    prop_assert!(!i.push(at(rs), rr));
                    replays.next();
                }
            }
            let replayed = i.take().map_or(0.0, |a| a.amount);
            prop_assert_eq!(replayed, total(600, &samples));
        }

        /// Out-of-order delivery drops the late samples. At a constant rate that can only
        /// lose time, never add any; whatever the rates, the total stays within the largest
        /// rate times the time the ordered stream covers.
        #[test]
        fn reordering_never_increases_the_total(
            samples in stream(0.0..600.0f64, 900, 1..100),
            order in any::<u64>(),
            constant in 0.0..600.0f64,
        ) {
            let mut shuffled = samples.clone();
            // A deterministic shuffle from the generated seed (Fisher-Yates).
            let mut x = order;
            for k in (1..shuffled.len()).rev() {
                x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                shuffled.swap(k, (x >> 33) as usize % (k + 1));
            }
            let flat = |v: &[(i64, f64)]| v.iter().map(|&(s, _)| (s, constant)).collect::<Vec<_>>();
            let ordered_flat = total(600, &flat(&samples));
            let shuffled_flat = total(600, &flat(&shuffled));
            prop_assert!(shuffled_flat <= ordered_flat * (1.0 + 1e-12), "{} > {}", shuffled_flat, ordered_flat);

            let max_rate = samples.iter().map(|s| s.1).fold(0.0, f64::max);
            let covered_hours: f64 = samples
                .windows(2)
                .filter(|w| w[1].0 - w[0].0 <= 600)
                .map(|w| (w[1].0 - w[0].0) as f64 / 3_600.0)
                .sum();
            let bound = max_rate * covered_hours;
            prop_assert!(total(600, &shuffled) <= bound * (1.0 + 1e-12) + 1e-12);
        }
    }
}
