//! Properties of the evaluation arithmetic and of the parsers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurum_models::cmapss::{parse_rows, parse_rul, CHANNELS};
use aurum_models::metrics::{mae, nasa_score, nasa_score_one, rmse, roc_auc};
use aurum_models::{training_window, Dataset, ModelError};
use proptest::prelude::*;

fn scores_and_labels() -> impl Strategy<Value = (Vec<f64>, Vec<bool>)> {
    prop::collection::vec((-1e3..1e3f64, any::<bool>()), 2..80)
        .prop_filter("both classes", |v| {
            v.iter().any(|p| p.1) && v.iter().any(|p| !p.1)
        })
        .prop_map(|v| v.into_iter().unzip())
}

proptest! {
    #[test]
    fn a_perfect_ranking_has_auc_one_and_its_reverse_zero(
        negatives in prop::collection::vec(0.0..1.0f64, 1..40),
        positives in prop::collection::vec(2.0..3.0f64, 1..40),
    ) {
        let labels: Vec<bool> = negatives.iter().map(|_| false).chain(positives.iter().map(|_| true)).collect();
        let scores: Vec<f64> = negatives.iter().chain(&positives).copied().collect();
        prop_assert_eq!(roc_auc(&scores, &labels), Some(1.0));
        let reversed: Vec<f64> = scores.iter().map(|s| -s).collect();
        prop_assert_eq!(roc_auc(&reversed, &labels), Some(0.0));
    }

    #[test]
    fn auc_is_invariant_to_increasing_transforms((scores, labels) in scores_and_labels()) {
        let auc = roc_auc(&scores, &labels).unwrap();
        prop_assert!((0.0..=1.0).contains(&auc));
        let squashed: Vec<f64> = scores.iter().map(|s| 1.0 / (1.0 + (-s / 100.0).exp())).collect();
        let shifted: Vec<f64> = scores.iter().map(|s| 3.0 * s + 7.0).collect();
        prop_assert!((roc_auc(&squashed, &labels).unwrap() - auc).abs() < 1e-12);
        prop_assert!((roc_auc(&shifted, &labels).unwrap() - auc).abs() < 1e-12);
        // Swapping the classes mirrors the curve.
        let flipped: Vec<bool> = labels.iter().map(|l| !l).collect();
        prop_assert!((roc_auc(&scores, &flipped).unwrap() - (1.0 - auc)).abs() < 1e-12);
    }

    #[test]
    fn nasa_score_is_zero_only_on_target_and_late_costs_more(
        actual in 0.0..200.0f64,
        error in 0.1..60.0f64,
    ) {
        prop_assert_eq!(nasa_score_one(actual, actual), 0.0);
        let late = nasa_score_one(actual + error, actual);
        let early = nasa_score_one(actual - error, actual);
        prop_assert!(late > early && early > 0.0);
        prop_assert!((nasa_score(&[actual + error, actual - error], &[actual, actual]) - (late + early)).abs() < 1e-9);
    }

    #[test]
    fn rmse_bounds_mae_and_both_vanish_on_exact_predictions(
        pairs in prop::collection::vec((-1e3..1e3f64, -1e3..1e3f64), 1..50),
    ) {
        let (p, a): (Vec<f64>, Vec<f64>) = pairs.into_iter().unzip();
        let (r, m) = (rmse(&p, &a).unwrap(), mae(&p, &a).unwrap());
        prop_assert!(m >= 0.0 && r >= m - 1e-9);
        prop_assert_eq!(rmse(&a, &a), Some(0.0));
        prop_assert_eq!(mae(&a, &a), Some(0.0));
    }

    #[test]
    fn cmapss_rows_parse_back_what_was_written(
        rows in prop::collection::vec((1u32..500, 1u32..400, prop::collection::vec(-1e4..1e4f64, CHANNELS)), 1..20),
    ) {
        let text: String = rows
            .iter()
            .map(|(u, c, values)| {
                let values: Vec<String> = values.iter().map(|v| format!("{v}")).collect();
                format!("{u} {c} {} \n", values.join(" "))
            })
            .collect();
        let parsed = parse_rows(text.as_bytes(), "train").unwrap();
        prop_assert_eq!(parsed.len(), rows.len());
        for (p, (u, c, values)) in parsed.iter().zip(&rows) {
            prop_assert_eq!(p.unit, *u);
            prop_assert_eq!(p.cycle, *c);
            prop_assert_eq!(&p.channels[..], &values[..]);
        }
    }

    #[test]
    fn the_cmapss_parser_never_panics(text in "[0-9 .e\\-\n]{0,300}") {
        let _ = parse_rows(text.as_bytes(), "test");
        let _ = parse_rul(text.as_bytes());
    }

    #[test]
    fn the_csv_reader_never_panics(body in "[a-z0-9,.:\\-\n]{0,400}") {
        let header = "run_id,machine_id,machine_type,seq,ts,phase,time_to_failure_h,rpm\n";
        let _ = Dataset::from_sim_csv(format!("{header}{body}").as_bytes(), training_window(), 3);
    }
}

#[test]
fn cmapss_errors_name_the_file_and_line() {
    let err = parse_rows("1 1 0 0 0\n".as_bytes(), "train").unwrap_err();
    assert!(
        matches!(
            err,
            ModelError::Cmapss {
                file: "train",
                line: 1,
                ..
            }
        ),
        "{err}"
    );
    let err = parse_rul("12\nabc\n".as_bytes()).unwrap_err();
    assert!(err.to_string().contains("line 2"), "{err}");
}

#[test]
fn csv_errors_name_the_line() {
    let csv = "run_id,machine_id,machine_type,seq,ts,phase,time_to_failure_h,rpm\n\
               r0,M1,haul_truck,1,2026-01-01T00:00:00Z,normal,10.0,1500\n\
               r0,M1,haul_truck,2,2026-01-01T00:01:00Z,normal,9.9,fast\n";
    let err = Dataset::from_sim_csv(csv.as_bytes(), training_window(), 1).unwrap_err();
    assert!(matches!(err, ModelError::Csv { line: 3, .. }), "{err}");
    assert!(err.to_string().contains("fast"));

    let unknown = "run_id,machine_id,machine_type,seq,ts,phase,time_to_failure_h,rpm\n\
                   r0,M1,submarine,1,2026-01-01T00:00:00Z,normal,10.0,1500\n";
    let err = Dataset::from_sim_csv(unknown.as_bytes(), training_window(), 1).unwrap_err();
    assert!(err.to_string().contains("submarine"), "{err}");

    let back_in_time = "run_id,machine_id,machine_type,seq,ts,phase,time_to_failure_h,rpm\n\
                        r0,M1,haul_truck,1,2026-01-01T00:05:00Z,normal,10.0,1500\n\
                        r0,M1,haul_truck,2,2026-01-01T00:01:00Z,normal,9.9,1500\n";
    let err = Dataset::from_sim_csv(back_in_time.as_bytes(), training_window(), 1).unwrap_err();
    assert!(err.to_string().contains("back in time"), "{err}");

    let no_labels = "machine_id,rpm\nM1,1500\n";
    assert!(matches!(
        Dataset::from_sim_csv(no_labels.as_bytes(), training_window(), 1).unwrap_err(),
        ModelError::Header(_)
    ));
}
