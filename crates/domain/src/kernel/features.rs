//! Feature engineering for failure prediction: per machine and metric, statistics over a
//! sliding window of recent readings, and how far they sit from the machine's healthy
//! baseline.
//!
//! Everything is pure and at most linear in the window's size, so ingestion can compute
//! features on the stream. The failure-prediction model consumes them flattened in the stable
//! order of a [`FeatureSchema`].

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

use crate::ids::MetricName;

/// One value of a metric at a time.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Sample {
    pub ts: DateTime<Utc>,
    pub value: f64,
}

/// Statistics of a window of samples. Every field is finite when the samples are.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WindowStats {
    /// Number of samples, saturating at `u32::MAX`.
    pub count: u32,
    pub mean: f64,
    /// Population standard deviation: the window is the whole population being described.
    pub std: f64,
    pub min: f64,
    pub max: f64,
    /// Least-squares slope of value against time, in units per hour: a slow drift (a bearing
    /// warming up) shows here long before any threshold is crossed. 0 with fewer than two
    /// distinct timestamps; saturates at `±f64::MAX`.
    pub slope: f64,
    /// Root mean square: the energy of the signal, the usual measure of vibration severity.
    pub rms: f64,
    /// Excess kurtosis, m4 / m2² − 3: 0 for Gaussian noise, high when a few spikes dominate,
    /// as impacts from a damaged bearing do. Defined as 0 when the variance is 0 or with fewer
    /// than 4 samples, where it says nothing about the shape.
    pub kurtosis: f64,
    /// `max − min`, saturating at `f64::MAX` when the difference exceeds the f64 range.
    pub peak_to_peak: f64,
}

impl WindowStats {
    /// Statistics of the finite values among `samples`, in any order; `None` when there is none.
    ///
    /// Values are first divided by a power of two near their largest magnitude (exact), so
    /// squares and fourth powers can neither overflow nor underflow; the mean is refined by a
    /// second pass and moments are taken around it, and time is centred at its mean, so a
    /// small spread on a large offset keeps its precision.
    pub fn from_samples<'a, I>(samples: I) -> Option<Self>
    where
        I: IntoIterator<Item = &'a Sample>,
    {
        let mut finite = samples
            .into_iter()
            .filter(|s| s.value.is_finite())
            .peekable();
        let origin = finite.peek()?.ts;
        let points: Vec<(f64, f64)> = finite
            .map(|s| (hours_between(origin, s.ts), s.value))
            .collect();
        Some(Self::from_points(&points))
    }

    /// `points` are non-empty (hours since an origin, finite value) pairs.
    fn from_points(points: &[(f64, f64)]) -> Self {
        let count = u32::try_from(points.len()).unwrap_or(u32::MAX);
        let min = points.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
        let max = points.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
        if min == max {
            // Computed moments would be rounding noise; a constant has none.
            return Self {
                count,
                mean: min,
                std: 0.0,
                min,
                max,
                slope: 0.0,
                rms: min.abs(),
                kurtosis: 0.0,
                peak_to_peak: 0.0,
            };
        }

        let n = points.len() as f64;
        let largest = min.abs().max(max.abs());
        let scale = binary_scale(largest);
        let scaled = |v: f64| v / scale;

        let rough_mean = points.iter().map(|p| scaled(p.1)).sum::<f64>() / n;
        let mean = rough_mean + points.iter().map(|p| scaled(p.1) - rough_mean).sum::<f64>() / n;
        let mean_hours = points.iter().map(|p| p.0).sum::<f64>() / n;

        let (mut m2, mut m4, mut squares, mut stt, mut stv) = (0.0, 0.0, 0.0, 0.0, 0.0);
        for &(hours, value) in points {
            let v = scaled(value);
            let d = v - mean;
            let dt = hours - mean_hours;
            m2 += d * d;
            m4 += d * d * d * d;
            squares += v * v;
            stt += dt * dt;
            stv += dt * d;
        }
        m2 /= n;
        m4 /= n;

        let kurtosis = if points.len() < 4 || m2 <= 0.0 {
            0.0
        } else {
            let k = m4 / (m2 * m2) - 3.0;
            if k.is_finite() {
                k
            } else {
                0.0
            }
        };
        let slope = if stt > 0.0 {
            (stv / stt * scale).clamp(-f64::MAX, f64::MAX)
        } else {
            0.0
        };

        // The clamps are true bounds (Popoviciu's inequality for std); they only absorb the
        // last rounding, and keep results finite near the ends of the f64 range.
        Self {
            count,
            mean: (mean * scale).clamp(min, max),
            std: (m2.sqrt() * scale).min(max / 2.0 - min / 2.0),
            min,
            max,
            slope,
            rms: ((squares / n).sqrt() * scale).min(largest),
            kurtosis,
            peak_to_peak: (max - min).min(f64::MAX),
        }
    }
}

/// The largest power of two not above `largest` (or the smallest normal one for subnormal
/// input): dividing by it is exact and brings values into (−2, 2).
fn binary_scale(largest: f64) -> f64 {
    const EXPONENT_BITS: u64 = 0x7ff0_0000_0000_0000;
    if largest < f64::MIN_POSITIVE {
        f64::MIN_POSITIVE
    } else {
        f64::from_bits(largest.to_bits() & EXPONENT_BITS)
    }
}

fn hours_between(from: DateTime<Utc>, to: DateTime<Utc>) -> f64 {
    (to - from).as_seconds_f64() / 3_600.0
}

/// How much history a [`MetricWindow`] keeps: samples no older than `max_age` before the
/// newest, and at most `max_samples` of them, which bounds memory and the cost of statistics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowSpec {
    max_age: TimeDelta,
    max_samples: usize,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WindowSpecError {
    #[error("a window must hold at least one sample")]
    NoSamples,
    #[error("a window's maximum age must be positive")]
    NonPositiveAge,
}

impl WindowSpec {
    /// An hour at one reading per second.
    pub const DEFAULT_MAX_AGE: TimeDelta = TimeDelta::hours(1);
    pub const DEFAULT_MAX_SAMPLES: usize = 3_600;

    pub fn new(max_age: TimeDelta, max_samples: usize) -> Result<Self, WindowSpecError> {
        if max_samples == 0 {
            return Err(WindowSpecError::NoSamples);
        }
        if max_age <= TimeDelta::zero() {
            return Err(WindowSpecError::NonPositiveAge);
        }
        Ok(Self {
            max_age,
            max_samples,
        })
    }

    pub fn max_age(self) -> TimeDelta {
        self.max_age
    }

    pub fn max_samples(self) -> usize {
        self.max_samples
    }
}

impl Default for WindowSpec {
    fn default() -> Self {
        Self {
            max_age: Self::DEFAULT_MAX_AGE,
            max_samples: Self::DEFAULT_MAX_SAMPLES,
        }
    }
}

/// The most recent samples of one metric of one machine, ordered by timestamp.
///
/// The window's clock is the latest time it has seen: the newest timestamp pushed, or a later
/// time given to [`advance_to`](Self::advance_to). Samples older than that clock minus
/// `max_age` are evicted, and refused when they arrive late, so a network delay within the
/// window still counts while a replay of old data cannot rewrite it. When more than
/// `max_samples` remain, the oldest by timestamp go first (equal timestamps: the first
/// arrived).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricWindow {
    spec: WindowSpec,
    samples: VecDeque<Sample>,
    clock: Option<DateTime<Utc>>,
}

impl MetricWindow {
    pub fn new(spec: WindowSpec) -> Self {
        Self {
            spec,
            samples: VecDeque::new(),
            clock: None,
        }
    }

    pub fn spec(&self) -> WindowSpec {
        self.spec
    }

    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    /// The samples, oldest first.
    pub fn samples(&self) -> impl Iterator<Item = &Sample> + '_ {
        self.samples.iter()
    }

    /// The oldest timestamp the window still accepts; `None` before anything was seen (or
    /// when the cutoff would precede the earliest representable time).
    pub fn cutoff(&self) -> Option<DateTime<Utc>> {
        self.clock
            .and_then(|clock| clock.checked_sub_signed(self.spec.max_age))
    }

    /// Adds a sample; returns whether it was kept. Non-finite values are ignored, and so is a
    /// sample older than [`cutoff`](Self::cutoff) or one that a full window would evict at once.
    pub fn push(&mut self, ts: DateTime<Utc>, value: f64) -> bool {
        if !value.is_finite() || self.cutoff().is_some_and(|cutoff| ts < cutoff) {
            return false;
        }
        let full = self.samples.len() >= self.spec.max_samples;
        if full && self.samples.front().is_some_and(|oldest| ts < oldest.ts) {
            return false;
        }
        let at = self.samples.partition_point(|s| s.ts <= ts);
        self.samples.insert(at, Sample { ts, value });
        self.advance_to(ts);
        while self.samples.len() > self.spec.max_samples {
            self.samples.pop_front();
        }
        true
    }

    /// Moves the window's clock forward to `now` (never back) and evicts what became too old,
    /// so a metric that stopped reporting does not keep feeding stale statistics.
    pub fn advance_to(&mut self, now: DateTime<Utc>) {
        self.clock = Some(self.clock.map_or(now, |clock| clock.max(now)));
        if let Some(cutoff) = self.cutoff() {
            while self.samples.front().is_some_and(|s| s.ts < cutoff) {
                self.samples.pop_front();
            }
        }
    }

    /// Statistics of the window; `None` when it is empty.
    pub fn stats(&self) -> Option<WindowStats> {
        WindowStats::from_samples(&self.samples)
    }
}

/// A metric's mean and spread during a machine's normal operation, against which current
/// behaviour is measured.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "BaselineFields")]
pub struct Baseline {
    mean: f64,
    std: f64,
    samples: u64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error(
    "a baseline needs a finite mean and a finite, non-negative std; got mean {mean}, std {std}"
)]
pub struct InvalidBaseline {
    pub mean: f64,
    pub std: f64,
}

#[derive(Deserialize)]
struct BaselineFields {
    mean: f64,
    std: f64,
    samples: u64,
}

impl TryFrom<BaselineFields> for Baseline {
    type Error = InvalidBaseline;
    fn try_from(f: BaselineFields) -> Result<Self, InvalidBaseline> {
        Self::new(f.mean, f.std, f.samples)
    }
}

impl Baseline {
    /// Below a millionth of the mean, a spread is quantisation noise rather than operating
    /// variability; z-scores against it would be meaningless and huge.
    pub const RELATIVE_STD_FLOOR: f64 = 1e-6;
    /// The floor when the mean is 0 or nearly so, so the z-score never divides by zero.
    pub const ABSOLUTE_STD_FLOOR: f64 = 1e-9;

    /// `samples` records how many readings it was learned from.
    pub fn new(mean: f64, std: f64, samples: u64) -> Result<Self, InvalidBaseline> {
        if mean.is_finite() && std.is_finite() && std >= 0.0 {
            Ok(Self { mean, std, samples })
        } else {
            Err(InvalidBaseline { mean, std })
        }
    }

    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// Population standard deviation of the healthy readings.
    pub fn std(&self) -> f64 {
        self.std
    }

    pub fn samples(&self) -> u64 {
        self.samples
    }

    /// The z-score `(value − mean) / std` of a reading or of a window's mean, with `std`
    /// floored at `max(RELATIVE_STD_FLOOR·|mean|, ABSOLUTE_STD_FLOOR)`. Finite for a finite
    /// value: it saturates at `±f64::MAX`.
    pub fn deviation(&self, value_or_mean: f64) -> f64 {
        let std = self
            .std
            .max(Self::RELATIVE_STD_FLOOR * self.mean.abs())
            .max(Self::ABSOLUTE_STD_FLOOR);
        ((value_or_mean - self.mean) / std).clamp(-f64::MAX, f64::MAX)
    }
}

/// Learns a [`Baseline`] from a stream of healthy readings in constant memory (Welford's
/// algorithm, which keeps the variance accurate on large offsets).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BaselineBuilder {
    count: u64,
    mean: f64,
    sum_sq_dev: f64,
}

impl BaselineBuilder {
    /// Fewer readings give a spread too uncertain to judge deviations by.
    pub const MIN_SAMPLES: u64 = 30;

    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a reading; non-finite values are ignored (returns false).
    pub fn add(&mut self, value: f64) -> bool {
        if !value.is_finite() {
            return false;
        }
        self.count += 1;
        let delta = value - self.mean;
        self.mean += delta / self.count as f64;
        self.sum_sq_dev += delta * (value - self.mean);
        true
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// The baseline so far; `None` before [`MIN_SAMPLES`](Self::MIN_SAMPLES) readings, or if
    /// the accumulated moments overflowed (readings beyond about 1e154 in magnitude).
    pub fn build(&self) -> Option<Baseline> {
        if self.count < Self::MIN_SAMPLES {
            return None;
        }
        let std = (self.sum_sq_dev / self.count as f64).sqrt();
        Baseline::new(self.mean, std, self.count).ok()
    }
}

/// The healthy baselines of one machine, per metric.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct HealthyBaseline {
    pub metrics: BTreeMap<MetricName, Baseline>,
}

impl HealthyBaseline {
    /// The z-score of `value_or_mean` for `metric`; `None` when no baseline is known for it.
    pub fn deviation(&self, metric: &MetricName, value_or_mean: f64) -> Option<f64> {
        self.metrics
            .get(metric)
            .map(|baseline| baseline.deviation(value_or_mean))
    }
}

/// The features of one metric.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MetricFeatures {
    pub stats: WindowStats,
    /// Z-score of the window's mean against the healthy baseline, when one is known.
    pub baseline_deviation: Option<f64>,
}

impl MetricFeatures {
    pub fn new(stats: WindowStats, baseline: Option<&Baseline>) -> Self {
        let baseline_deviation = baseline.map(|b| b.deviation(stats.mean));
        Self {
            stats,
            baseline_deviation,
        }
    }
}

/// The features of one machine at `window_end`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeatureVector {
    pub window_end: DateTime<Utc>,
    pub metrics: BTreeMap<MetricName, MetricFeatures>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FeatureError {
    #[error("the schema requires metric {0}, but the feature vector has no statistics for it")]
    MissingMetric(MetricName),
    #[error("the schema requires a baseline deviation for metric {0}, but none is known")]
    MissingBaseline(MetricName),
}

impl FeatureVector {
    /// Features of a machine's windows; empty windows are left out. Advance the windows to
    /// `window_end` first so that metrics which stopped reporting are not described by
    /// stale samples.
    pub fn from_windows<'a, I>(
        window_end: DateTime<Utc>,
        windows: I,
        baseline: &HealthyBaseline,
    ) -> Self
    where
        I: IntoIterator<Item = (&'a MetricName, &'a MetricWindow)>,
    {
        let metrics = windows
            .into_iter()
            .filter_map(|(metric, window)| {
                let stats = window.stats()?;
                let features = MetricFeatures::new(stats, baseline.metrics.get(metric));
                Some((metric.clone(), features))
            })
            .collect();
        Self {
            window_end,
            metrics,
        }
    }

    /// The values in `schema`'s order (see [`FeatureSchema::names`]). Metrics absent from the
    /// schema are ignored; a metric of the schema that is missing is an error, never a
    /// made-up value, so the model is not fed a silent gap.
    pub fn flatten(&self, schema: &FeatureSchema) -> Result<Vec<f64>, FeatureError> {
        let mut values = Vec::with_capacity(schema.len());
        for metric in &schema.metrics {
            let features = self
                .metrics
                .get(metric)
                .ok_or_else(|| FeatureError::MissingMetric(metric.clone()))?;
            values.extend(stat_values(&features.stats));
            if schema.with_baseline {
                let z = features
                    .baseline_deviation
                    .ok_or_else(|| FeatureError::MissingBaseline(metric.clone()))?;
                values.push(z);
            }
        }
        Ok(values)
    }
}

/// Per-metric feature names, in the order of [`stat_values`].
const STAT_NAMES: [&str; 9] = [
    "count",
    "mean",
    "std",
    "min",
    "max",
    "slope",
    "rms",
    "kurtosis",
    "peak_to_peak",
];
const BASELINE_NAME: &str = "baseline_z";

fn stat_values(s: &WindowStats) -> [f64; 9] {
    [
        f64::from(s.count),
        s.mean,
        s.std,
        s.min,
        s.max,
        s.slope,
        s.rms,
        s.kurtosis,
        s.peak_to_peak,
    ]
}

/// The inputs a model was trained on: which metrics, and whether their baseline z-score is
/// included. Metrics are kept sorted and unique, so the flattened order depends only on the
/// set of metrics: `metric.count`, `metric.mean`, ..., `metric.peak_to_peak`, then
/// `metric.baseline_z` when included, for each metric in turn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeatureSchema {
    metrics: BTreeSet<MetricName>,
    with_baseline: bool,
}

impl FeatureSchema {
    pub fn with_baseline(metrics: impl IntoIterator<Item = MetricName>) -> Self {
        Self {
            metrics: metrics.into_iter().collect(),
            with_baseline: true,
        }
    }

    pub fn without_baseline(metrics: impl IntoIterator<Item = MetricName>) -> Self {
        Self {
            metrics: metrics.into_iter().collect(),
            with_baseline: false,
        }
    }

    pub fn metrics(&self) -> impl Iterator<Item = &MetricName> + '_ {
        self.metrics.iter()
    }

    pub fn includes_baseline(&self) -> bool {
        self.with_baseline
    }

    pub fn features_per_metric(&self) -> usize {
        STAT_NAMES.len() + usize::from(self.with_baseline)
    }

    /// The number of flattened features.
    pub fn len(&self) -> usize {
        self.metrics.len() * self.features_per_metric()
    }

    pub fn is_empty(&self) -> bool {
        self.metrics.is_empty()
    }

    /// The flattened feature names, in the order of [`FeatureVector::flatten`].
    pub fn names(&self) -> Vec<String> {
        let baseline = self.with_baseline.then_some(BASELINE_NAME);
        self.metrics
            .iter()
            .flat_map(|metric| {
                STAT_NAMES
                    .iter()
                    .copied()
                    .chain(baseline)
                    .map(move |feature| format!("{metric}.{feature}"))
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn t0() -> DateTime<Utc> {
        DateTime::<Utc>::UNIX_EPOCH + TimeDelta::days(20_000)
    }

    fn at(seconds: i64) -> DateTime<Utc> {
        t0() + TimeDelta::seconds(seconds)
    }

    /// One sample per second from `t0`.
    fn series(values: &[f64]) -> Vec<Sample> {
        values
            .iter()
            .zip(0..)
            .map(|(&value, i)| Sample { ts: at(i), value })
            .collect()
    }

    fn stats_of(values: &[f64]) -> WindowStats {
        WindowStats::from_samples(&series(values)).expect("non-empty")
    }

    fn metric(name: &str) -> MetricName {
        MetricName::parse(name).unwrap()
    }

    fn close(a: f64, b: f64, tolerance: f64) -> bool {
        (a - b).abs() <= tolerance
    }

    fn finite_f64() -> impl Strategy<Value = f64> {
        use proptest::num::f64::{NEGATIVE, NORMAL, POSITIVE, SUBNORMAL, ZERO};
        POSITIVE | NEGATIVE | NORMAL | SUBNORMAL | ZERO
    }

    // --- window statistics -------------------------------------------------------------

    #[test]
    fn constant_series_has_no_spread_slope_or_kurtosis() {
        for c in [0.0, -3.7, 0.1, 1e6 + 0.1, -f64::MAX] {
            let s = stats_of(&[c; 50]);
            assert_eq!(s.count, 50);
            assert_eq!((s.mean, s.min, s.max), (c, c, c));
            assert_eq!(s.std, 0.0);
            assert_eq!(s.kurtosis, 0.0);
            assert_eq!(s.slope, 0.0);
            assert_eq!(s.rms, c.abs());
            assert_eq!(s.peak_to_peak, 0.0);
        }
    }

    #[test]
    fn slope_of_a_perfect_line_is_recovered_in_units_per_hour() {
        let (a, b) = (812.5, -3.25);
        let seconds = [0, 7, 60, 61, 900, 1_800, 3_599, 7_200, 7_201, 10_000];
        let samples: Vec<Sample> = seconds
            .iter()
            .map(|&s| Sample {
                ts: at(s),
                value: a + b * (s as f64 / 3_600.0),
            })
            .collect();
        let slope = WindowStats::from_samples(&samples).unwrap().slope;
        assert!(close(slope, b, 1e-9 * b.abs()), "{slope}");
    }

    #[test]
    fn slope_is_zero_without_two_distinct_timestamps() {
        let one = [Sample {
            ts: t0(),
            value: 5.0,
        }];
        assert_eq!(WindowStats::from_samples(&one).unwrap().slope, 0.0);
        let same_time: Vec<Sample> = [1.0, 9.0, -4.0]
            .iter()
            .map(|&value| Sample { ts: t0(), value })
            .collect();
        assert_eq!(WindowStats::from_samples(&same_time).unwrap().slope, 0.0);
    }

    #[test]
    fn kurtosis_is_zero_below_four_samples_and_known_for_two_symmetric_values() {
        assert_eq!(stats_of(&[1.0, 5.0, -2.0]).kurtosis, 0.0);
        // ±1 with equal weight: m2 = m4 = 1, so excess kurtosis is 1 − 3.
        let s = stats_of(&[-1.0, 1.0, -1.0, 1.0]);
        assert!(close(s.kurtosis, -2.0, 1e-12), "{}", s.kurtosis);
        assert!(close(s.std, 1.0, 1e-12));
        assert!(close(s.rms, 1.0, 1e-12));
    }

    #[test]
    fn a_rare_spike_raises_kurtosis() {
        let mut values = [1.0; 100];
        values[50] = 10.0;
        assert!(stats_of(&values).kurtosis > 50.0);
    }

    #[test]
    fn spread_survives_a_large_offset() {
        // E[x²] − E[x]² would cancel every digit here.
        let s = stats_of(&[1e12 - 0.5, 1e12 + 0.5, 1e12 - 0.5, 1e12 + 0.5]);
        assert_eq!(s.mean, 1e12);
        assert!(close(s.std, 0.5, 1e-12), "{}", s.std);
        assert!(close(s.kurtosis, -2.0, 1e-9), "{}", s.kurtosis);
    }

    #[test]
    fn stats_stay_finite_at_the_ends_of_the_f64_range() {
        let s = stats_of(&[f64::MAX, -f64::MAX, f64::MAX, 5e-324, -f64::MAX]);
        for v in stat_values(&s) {
            assert!(v.is_finite(), "{s:?}");
        }
        assert_eq!(s.peak_to_peak, f64::MAX);
    }

    #[test]
    fn non_finite_samples_do_not_count() {
        assert_eq!(WindowStats::from_samples(&series(&[f64::NAN])), None);
        let s = stats_of(&[1.0, f64::INFINITY, 3.0, f64::NAN]);
        assert_eq!((s.count, s.mean), (2, 2.0));
    }

    // --- window --------------------------------------------------------------------------

    fn window(max_age_seconds: i64, max_samples: usize) -> MetricWindow {
        MetricWindow::new(
            WindowSpec::new(TimeDelta::seconds(max_age_seconds), max_samples).unwrap(),
        )
    }

    fn contents(w: &MetricWindow) -> Vec<(DateTime<Utc>, f64)> {
        w.samples().map(|s| (s.ts, s.value)).collect()
    }

    #[test]
    fn window_spec_refuses_empty_windows_and_non_positive_ages() {
        assert_eq!(
            WindowSpec::new(TimeDelta::hours(1), 0),
            Err(WindowSpecError::NoSamples)
        );
        assert_eq!(
            WindowSpec::new(TimeDelta::zero(), 10),
            Err(WindowSpecError::NonPositiveAge)
        );
        assert_eq!(
            WindowSpec::new(TimeDelta::seconds(-1), 10),
            Err(WindowSpecError::NonPositiveAge)
        );
        let default = WindowSpec::default();
        assert_eq!(
            WindowSpec::new(default.max_age(), default.max_samples()),
            Ok(default)
        );
    }

    #[test]
    fn empty_window_has_no_stats() {
        assert_eq!(window(60, 10).stats(), None);
    }

    #[test]
    fn window_ignores_non_finite_values() {
        let mut w = window(60, 10);
        assert!(!w.push(at(0), f64::NAN));
        assert!(!w.push(at(1), f64::INFINITY));
        assert!(!w.push(at(2), f64::NEG_INFINITY));
        assert!(w.is_empty());
        assert_eq!(w.cutoff(), None, "ignored values do not move the clock");
        assert!(w.push(at(3), 1.5));
        assert_eq!(contents(&w), vec![(at(3), 1.5)]);
    }

    #[test]
    fn window_evicts_by_age_and_by_count() {
        let mut w = window(60, 3);
        for s in 0..3 {
            assert!(w.push(at(s), s as f64));
        }
        assert!(w.push(at(3), 3.0));
        assert_eq!(contents(&w), vec![(at(1), 1.0), (at(2), 2.0), (at(3), 3.0)]);
        assert!(w.push(at(62), 62.0));
        assert_eq!(
            contents(&w),
            vec![(at(2), 2.0), (at(3), 3.0), (at(62), 62.0)]
        );
        assert!(w.push(at(200), 200.0));
        assert_eq!(contents(&w), vec![(at(200), 200.0)]);
    }

    #[test]
    fn late_samples_within_max_age_are_kept_in_order_and_older_ones_refused() {
        let mut w = window(60, 10);
        assert!(w.push(at(100), 1.0));
        assert!(w.push(at(70), 2.0));
        assert!(w.push(at(40), 3.0), "exactly max_age old is still in");
        assert!(!w.push(at(39), 4.0));
        assert_eq!(
            contents(&w),
            vec![(at(40), 3.0), (at(70), 2.0), (at(100), 1.0)]
        );
    }

    #[test]
    fn a_full_window_refuses_a_late_sample_it_would_evict_at_once() {
        let mut w = window(60, 2);
        assert!(w.push(at(10), 1.0));
        assert!(w.push(at(20), 2.0));
        assert!(!w.push(at(5), 3.0));
        assert!(w.push(at(15), 4.0));
        assert_eq!(contents(&w), vec![(at(15), 4.0), (at(20), 2.0)]);
    }

    #[test]
    fn advancing_the_clock_expires_a_silent_metric() {
        let mut w = window(60, 10);
        w.push(at(0), 1.0);
        w.push(at(30), 2.0);
        w.advance_to(at(75));
        assert_eq!(contents(&w), vec![(at(30), 2.0)]);
        w.advance_to(at(10));
        assert_eq!(w.cutoff(), Some(at(15)), "the clock never goes back");
        w.advance_to(at(1_000));
        assert!(w.is_empty());
        assert!(!w.push(at(900), 3.0));
    }

    // --- baseline --------------------------------------------------------------------------

    fn learned(values: impl IntoIterator<Item = f64>) -> Option<Baseline> {
        let mut builder = BaselineBuilder::new();
        for v in values {
            builder.add(v);
        }
        builder.build()
    }

    #[test]
    fn baseline_needs_enough_finite_samples() {
        let mut builder = BaselineBuilder::new();
        for i in 0..BaselineBuilder::MIN_SAMPLES - 1 {
            assert!(builder.add(i as f64));
        }
        assert!(!builder.add(f64::NAN));
        assert_eq!(builder.build(), None);
        builder.add(1.0);
        assert_eq!(builder.build().map(|b| b.samples()), Some(30));
    }

    #[test]
    fn z_score_of_the_mean_is_zero_and_of_one_std_above_is_one() {
        let b = learned((0..100).map(|i| 50.0 + (i % 10) as f64)).unwrap();
        assert!(close(b.mean(), 54.5, 1e-12));
        assert!(b.std() > 1.0);
        assert_eq!(b.deviation(b.mean()), 0.0);
        assert!(close(b.deviation(b.mean() + b.std()), 1.0, 1e-12));
        assert!(close(b.deviation(b.mean() - 2.0 * b.std()), -2.0, 1e-12));
    }

    #[test]
    fn a_constant_baseline_never_divides_by_zero() {
        let zero = learned([0.0; 40]).unwrap();
        assert_eq!(zero.std(), 0.0);
        assert_eq!(zero.deviation(0.0), 0.0);
        assert!(close(zero.deviation(1e-9), 1.0, 1e-12));
        let hot = learned([80.0; 40]).unwrap();
        assert!(close(hot.deviation(80.0 + 80.0 * 1e-6), 1.0, 1e-6));
        assert_eq!(hot.deviation(f64::MAX), f64::MAX);
    }

    #[test]
    fn baseline_refuses_non_finite_or_negative_spread() {
        assert!(Baseline::new(1.0, 0.0, 30).is_ok());
        assert!(Baseline::new(f64::NAN, 1.0, 30).is_err());
        assert!(Baseline::new(1.0, f64::INFINITY, 30).is_err());
        assert!(Baseline::new(1.0, -0.1, 30).is_err());
    }

    // --- feature vectors ---------------------------------------------------------------------

    fn machine_windows() -> BTreeMap<MetricName, MetricWindow> {
        let mut windows = BTreeMap::new();
        for (name, base) in [("vibration", 2.0), ("temperature", 70.0), ("rpm", 1_500.0)] {
            let mut w = window(3_600, 100);
            for s in 0..40 {
                w.push(at(s * 10), base + (s % 4) as f64);
            }
            windows.insert(metric(name), w);
        }
        windows.insert(metric("oil_pressure"), window(3_600, 100));
        windows
    }

    fn machine_baseline() -> HealthyBaseline {
        let mut baseline = HealthyBaseline::default();
        for (name, base) in [("vibration", 2.0), ("temperature", 65.0)] {
            let b = learned((0..48).map(|i| base + (i % 4) as f64)).unwrap();
            baseline.metrics.insert(metric(name), b);
        }
        baseline
    }

    #[test]
    fn feature_vector_skips_empty_windows_and_uses_known_baselines() {
        let windows = machine_windows();
        let fv = FeatureVector::from_windows(at(400), &windows, &machine_baseline());
        let names: Vec<&str> = fv.metrics.keys().map(MetricName::as_str).collect();
        assert_eq!(names, ["rpm", "temperature", "vibration"]);
        let z = |m: &str| fv.metrics[&metric(m)].baseline_deviation;
        assert!(close(z("vibration").unwrap(), 0.0, 1e-9));
        assert!(z("temperature").unwrap() > 4.0);
        assert_eq!(z("rpm"), None);
    }

    #[test]
    fn flatten_follows_the_schema_names() {
        let windows = machine_windows();
        let fv = FeatureVector::from_windows(at(400), &windows, &machine_baseline());
        let schema = FeatureSchema::with_baseline([metric("vibration"), metric("temperature")]);
        let names = schema.names();
        let values = fv.flatten(&schema).unwrap();
        assert_eq!(names.len(), schema.len());
        assert_eq!(values.len(), schema.len());
        assert_eq!(names[0], "temperature.count");
        assert_eq!(names[9], "temperature.baseline_z");
        assert_eq!(names[10], "vibration.count");
        let value_of = |name: &str| values[names.iter().position(|n| n == name).unwrap()];
        let vibration = &fv.metrics[&metric("vibration")];
        assert_eq!(value_of("vibration.count"), 40.0);
        assert_eq!(value_of("vibration.mean"), vibration.stats.mean);
        assert_eq!(value_of("vibration.std"), vibration.stats.std);
        assert_eq!(value_of("vibration.slope"), vibration.stats.slope);
        assert_eq!(value_of("vibration.rms"), vibration.stats.rms);
        assert_eq!(value_of("vibration.kurtosis"), vibration.stats.kurtosis);
        assert_eq!(value_of("vibration.peak_to_peak"), 3.0);
        assert_eq!(
            Some(value_of("vibration.baseline_z")),
            vibration.baseline_deviation
        );
    }

    #[test]
    fn flatten_fails_on_a_missing_metric_or_baseline() {
        let windows = machine_windows();
        let fv = FeatureVector::from_windows(at(400), &windows, &machine_baseline());
        let with_oil = FeatureSchema::without_baseline([metric("rpm"), metric("oil_pressure")]);
        assert_eq!(
            fv.flatten(&with_oil),
            Err(FeatureError::MissingMetric(metric("oil_pressure")))
        );
        let rpm_z = FeatureSchema::with_baseline([metric("rpm")]);
        assert_eq!(
            fv.flatten(&rpm_z),
            Err(FeatureError::MissingBaseline(metric("rpm")))
        );
        let rpm = FeatureSchema::without_baseline([metric("rpm")]);
        assert_eq!(fv.flatten(&rpm).map(|v| v.len()), Ok(9));
    }

    #[test]
    fn schema_order_depends_only_on_the_set_of_metrics() {
        let a = FeatureSchema::with_baseline([metric("rpm"), metric("vibration"), metric("rpm")]);
        let b = FeatureSchema::with_baseline([metric("vibration"), metric("rpm")]);
        assert_eq!(a, b);
        assert_eq!(a.names(), b.names());
        assert_eq!(a.len(), 20);
    }

    // --- properties ----------------------------------------------------------------------------

    /// Samples at arbitrary (possibly repeated, unordered) seconds within a week.
    fn samples_with(
        values: impl Strategy<Value = f64>,
        len: std::ops::Range<usize>,
    ) -> impl Strategy<Value = Vec<Sample>> {
        prop::collection::vec((0i64..604_800, values), len).prop_map(|points| {
            points
                .into_iter()
                .map(|(s, value)| Sample { ts: at(s), value })
                .collect()
        })
    }

    fn window_value() -> impl Strategy<Value = f64> {
        prop_oneof![
            8 => -1e3..1e3f64,
            1 => Just(f64::NAN),
            1 => Just(f64::INFINITY),
        ]
    }

    proptest! {
        #[test]
        fn location_and_energy_match_naive_recomputation(samples in samples_with(-1e9..1e9f64, 1..200)) {
            let s = WindowStats::from_samples(&samples).unwrap();
            let values: Vec<f64> = samples.iter().map(|s| s.value).collect();
            let n = values.len() as f64;
            let largest = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let min = values.iter().copied().fold(f64::INFINITY, f64::min);
            let max = values.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mean = values.iter().sum::<f64>() / n;
            let rms = (values.iter().map(|v| v * v).sum::<f64>() / n).sqrt();
            prop_assert_eq!(s.count as usize, values.len());
            prop_assert_eq!(s.min, min);
            prop_assert_eq!(s.max, max);
            prop_assert_eq!(s.peak_to_peak, max - min);
            prop_assert!(close(s.mean, mean, 1e-12 * largest), "{} vs {}", s.mean, mean);
            prop_assert!(close(s.rms, rms, 1e-12 * rms), "{} vs {}", s.rms, rms);
        }

        #[test]
        fn stats_are_finite_and_consistent_for_any_finite_input(samples in samples_with(finite_f64(), 1..60)) {
            let s = WindowStats::from_samples(&samples).unwrap();
            for v in stat_values(&s) {
                prop_assert!(v.is_finite(), "{:?}", s);
            }
            prop_assert!(s.min <= s.mean && s.mean <= s.max);
            prop_assert!(s.std >= 0.0 && s.rms >= 0.0 && s.peak_to_peak >= 0.0);
            prop_assert!(s.kurtosis >= -2.0 - 1e-9, "{}", s.kurtosis);
        }

        #[test]
        fn std_is_invariant_under_a_large_offset(samples in samples_with(-100.0..100.0f64, 2..100)) {
            let shifted: Vec<Sample> = samples
                .iter()
                .map(|s| Sample { ts: s.ts, value: s.value + 1e6 })
                .collect();
            let plain = WindowStats::from_samples(&samples).unwrap();
            let offset = WindowStats::from_samples(&shifted).unwrap();
            prop_assert!(close(offset.std, plain.std, 1e-9 * plain.std.max(1.0)), "{} vs {}", offset.std, plain.std);
            prop_assert!(close(offset.slope, plain.slope, 1e-5 * plain.slope.abs().max(1.0)));
        }

        #[test]
        fn scaling_scales_location_and_spread_but_not_shape(
            ints in prop::collection::vec(-10_000i32..10_000, 1..60),
            k in prop_oneof![-1e3..-1e-3f64, 1e-3..1e3f64],
        ) {
            let values: Vec<f64> = ints.iter().map(|&i| f64::from(i) / 10.0).collect();
            let scaled: Vec<f64> = values.iter().map(|v| v * k).collect();
            let (s, ks) = (stats_of(&values), stats_of(&scaled));
            let largest = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            let tolerance = 1e-12 * largest * k.abs();
            prop_assert!(close(ks.mean, k * s.mean, tolerance), "{} vs {}", ks.mean, k * s.mean);
            prop_assert!(close(ks.std, k.abs() * s.std, tolerance), "{} vs {}", ks.std, k.abs() * s.std);
            prop_assert!(close(ks.peak_to_peak, k.abs() * s.peak_to_peak, tolerance));
            prop_assert!(close(ks.kurtosis, s.kurtosis, 1e-9 * (1.0 + s.kurtosis.abs())), "{} vs {}", ks.kurtosis, s.kurtosis);
        }

        #[test]
        fn slope_of_any_line_is_recovered(
            a in -1e3..1e3f64,
            b in prop_oneof![-100.0..-1.0f64, 1.0..100.0f64],
            mut seconds in prop::collection::vec(0i64..604_800, 2..50),
        ) {
            seconds.push(seconds[0] + 3_600);
            let samples: Vec<Sample> = seconds
                .iter()
                .map(|&s| Sample { ts: at(s), value: a + b * (s as f64 / 3_600.0) })
                .collect();
            let slope = WindowStats::from_samples(&samples).unwrap().slope;
            prop_assert!(close(slope, b, 1e-9 * b.abs()), "{} vs {}", slope, b);
        }

        /// Reference model: the window holds, of every finite sample pushed so far, those no
        /// older than the latest timestamp minus max_age, the newest max_samples of them by
        /// (timestamp, arrival).
        #[test]
        fn window_keeps_the_newest_samples_within_age_and_count(
            max_age in 1i64..200,
            max_samples in 1usize..12,
            pushes in prop::collection::vec((0i64..600, window_value()), 0..80),
        ) {
            let mut w = window(max_age, max_samples);
            let mut pushed: Vec<(DateTime<Utc>, usize, f64)> = Vec::new();
            for (arrival, &(s, value)) in pushes.iter().enumerate() {
                let kept = w.push(at(s), value);
                if value.is_finite() {
                    pushed.push((at(s), arrival, value));
                }
                let Some(latest) = pushed.iter().map(|p| p.0).max() else {
                    prop_assert!(!kept && w.is_empty());
                    continue;
                };
                let cutoff = latest - TimeDelta::seconds(max_age);
                let mut expected: Vec<_> = pushed.iter().filter(|p| p.0 >= cutoff).copied().collect();
                expected.sort_by_key(|p| (p.0, p.1));
                let expected = &expected[expected.len().saturating_sub(max_samples)..];
                let expected_values: Vec<_> = expected.iter().map(|p| (p.0, p.2)).collect();
                prop_assert_eq!(contents(&w), expected_values);
                prop_assert_eq!(kept, expected.iter().any(|p| p.1 == arrival));

                prop_assert!(w.len() <= max_samples);
                let newest = w.samples().map(|s| s.ts).max().unwrap_or(latest);
                prop_assert!(w.samples().all(|s| s.ts >= newest - TimeDelta::seconds(max_age)));
            }
        }

        #[test]
        fn baseline_matches_two_pass_statistics(values in prop::collection::vec(-1e6..1e6f64, 30..200)) {
            let b = learned(values.iter().copied()).unwrap();
            let n = values.len() as f64;
            let mean = values.iter().sum::<f64>() / n;
            let std = (values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
            let largest = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
            prop_assert!(close(b.mean(), mean, 1e-12 * largest));
            prop_assert!(close(b.std(), std, 1e-9 * std.max(1.0)));
            prop_assert_eq!(b.samples(), values.len() as u64);
        }

        #[test]
        fn deviation_is_finite_for_finite_values(
            mean in finite_f64(),
            std in finite_f64().prop_map(f64::abs),
            value in finite_f64(),
        ) {
            let b = Baseline::new(mean, std, 30).unwrap();
            prop_assert!(b.deviation(value).is_finite());
            prop_assert_eq!(b.deviation(mean), 0.0);
        }
    }
}
