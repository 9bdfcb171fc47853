//! Evaluation arithmetic: ranking quality, regression errors, the NASA prognostics score.
//!
//! Each function is total: empty or degenerate input gives `None` (or 0 for a sum) rather
//! than a NaN that would silently poison a report.

/// Area under the ROC curve of `scores` for the binary `labels`: the probability that a
/// random positive scores above a random negative, ties counting one half (Mann-Whitney U
/// with mid-ranks). Depends only on the order of the scores, so any strictly increasing
/// transform leaves it unchanged. `None` without both classes or with a NaN score.
pub fn roc_auc(scores: &[f64], labels: &[bool]) -> Option<f64> {
    if scores.len() != labels.len() || scores.iter().any(|s| s.is_nan()) {
        return None;
    }
    let positives = labels.iter().filter(|&&l| l).count();
    let negatives = labels.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let mut order: Vec<usize> = (0..scores.len()).collect();
    order.sort_by(|&a, &b| scores[a].total_cmp(&scores[b]));
    // Sum of the (1-based, tie-averaged) ranks of the positives.
    let mut positive_rank_sum = 0.0;
    let mut start = 0;
    while start < order.len() {
        let mut end = start + 1;
        while end < order.len() && scores[order[end]] == scores[order[start]] {
            end += 1;
        }
        let mid_rank = (start + 1 + end) as f64 / 2.0;
        let tied_positives = order[start..end].iter().filter(|&&i| labels[i]).count();
        positive_rank_sum += mid_rank * tied_positives as f64;
        start = end;
    }
    let p = positives as f64;
    let u = positive_rank_sum - p * (p + 1.0) / 2.0;
    Some(u / (p * negatives as f64))
}

/// Root mean squared error; `None` for empty or mismatched input.
pub fn rmse(predicted: &[f64], actual: &[f64]) -> Option<f64> {
    mean_of(predicted, actual, |d| d * d).map(f64::sqrt)
}

/// Mean absolute error; `None` for empty or mismatched input.
pub fn mae(predicted: &[f64], actual: &[f64]) -> Option<f64> {
    mean_of(predicted, actual, f64::abs)
}

fn mean_of(predicted: &[f64], actual: &[f64], f: impl Fn(f64) -> f64) -> Option<f64> {
    if predicted.is_empty() || predicted.len() != actual.len() {
        return None;
    }
    let total: f64 = predicted.iter().zip(actual).map(|(p, a)| f(p - a)).sum();
    Some(total / predicted.len() as f64)
}

/// The PHM08 scoring function of one prediction, `d = predicted − actual`: late predictions
/// (d > 0, the engine fails before we said) cost more than early ones, `e^(d/10) − 1`
/// against `e^(−d/13) − 1`.
pub fn nasa_score_one(predicted: f64, actual: f64) -> f64 {
    let d = predicted - actual;
    if d < 0.0 {
        (-d / 13.0).exp() - 1.0
    } else {
        (d / 10.0).exp() - 1.0
    }
}

/// The PHM08 score summed over units (lower is better, 0 is perfect).
pub fn nasa_score(predicted: &[f64], actual: &[f64]) -> f64 {
    predicted
        .iter()
        .zip(actual)
        .map(|(&p, &a)| nasa_score_one(p, a))
        .sum()
}

/// The median of the finite values; `None` when there is none.
pub fn median(values: &[f64]) -> Option<f64> {
    quantile(values, 0.5)
}

/// The `q` quantile (linear interpolation between order statistics) of the finite values.
pub fn quantile(values: &[f64], q: f64) -> Option<f64> {
    let mut sorted: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if sorted.is_empty() || !(0.0..=1.0).contains(&q) {
        return None;
    }
    sorted.sort_by(f64::total_cmp);
    let position = q * (sorted.len() - 1) as f64;
    let low = position.floor() as usize;
    let high = position.ceil() as usize;
    let fraction = position - low as f64;
    Some(sorted[low] + (sorted[high] - sorted[low]) * fraction)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn auc_of_a_perfect_a_reversed_and_a_tied_ranking() {
        let labels = [false, false, true, true];
        assert_eq!(roc_auc(&[0.1, 0.2, 0.8, 0.9], &labels), Some(1.0));
        assert_eq!(roc_auc(&[0.9, 0.8, 0.2, 0.1], &labels), Some(0.0));
        assert_eq!(roc_auc(&[0.5; 4], &labels), Some(0.5));
        assert_eq!(roc_auc(&[0.1, 0.2], &[true, true]), None);
        assert_eq!(roc_auc(&[f64::NAN, 0.2], &[true, false]), None);
    }

    #[test]
    fn nasa_score_punishes_late_predictions_more() {
        assert_eq!(nasa_score_one(50.0, 50.0), 0.0);
        assert!(nasa_score_one(60.0, 50.0) > nasa_score_one(40.0, 50.0));
        assert!((nasa_score_one(63.0, 50.0) - (1.3f64.exp() - 1.0)).abs() < 1e-12);
        assert!((nasa_score_one(37.0, 50.0) - (1.0f64.exp() - 1.0)).abs() < 1e-12);
    }

    #[test]
    fn errors_and_quantiles_of_small_examples() {
        assert_eq!(rmse(&[1.0, 3.0], &[1.0, 1.0]), Some(2f64.sqrt()));
        assert_eq!(mae(&[1.0, 3.0], &[2.0, 1.0]), Some(1.5));
        assert_eq!(rmse(&[], &[]), None);
        assert_eq!(median(&[3.0, 1.0, 2.0]), Some(2.0));
        assert_eq!(median(&[4.0, 1.0, 2.0, 3.0]), Some(2.5));
        assert_eq!(quantile(&[0.0, 10.0], 0.9), Some(9.0));
        assert_eq!(median(&[f64::NAN]), None);
    }
}
