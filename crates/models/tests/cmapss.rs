//! The C-MAPSS pipeline on synthetic engines written in the benchmark's file format.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use aurum_models::cmapss::{cmapss_run, CmapssOptions};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// An engine's 21 sensors at `cycle` of a life of `life` cycles: wear grows exponentially
/// towards the end of life; a few sensors are constant, as several are in FD001.
fn sensors(rng: &mut StdRng, cycle: u32, life: u32) -> Vec<f64> {
    let wear = (3.0 * f64::from(cycle) / f64::from(life)).exp_m1() / 3f64.exp_m1();
    (0..21)
        .map(|i| match i {
            0 | 4 | 9 => 100.0 + f64::from(i),
            _ => {
                let base = 500.0 + 10.0 * f64::from(i);
                let sign = if i % 2 == 0 { 1.0 } else { -1.0 };
                base + sign * 8.0 * wear + rng.random_range(-1.5..1.5)
            }
        })
        .collect()
}

fn line(unit: u32, cycle: u32, sensors: &[f64]) -> String {
    let values: Vec<String> = sensors.iter().map(|v| format!("{v:.4}")).collect();
    format!("{unit} {cycle} 0.0023 -0.0003 100.0 {}\n", values.join(" "))
}

/// (train, test, RUL) file contents.
fn synthetic_fleet(seed: u64) -> (String, String, String) {
    let mut rng = StdRng::seed_from_u64(seed);
    let (mut train, mut test, mut rul) = (String::new(), String::new(), String::new());
    for unit in 1..=40 {
        let life = rng.random_range(150..300);
        for cycle in 1..=life {
            train.push_str(&line(unit, cycle, &sensors(&mut rng, cycle, life)));
        }
    }
    for unit in 1..=20 {
        let life = rng.random_range(150..300);
        let cut = rng.random_range(40..life - 5);
        for cycle in 1..=cut {
            test.push_str(&line(unit, cycle, &sensors(&mut rng, cycle, life)));
        }
        rul.push_str(&format!("{}\n", life - cut));
    }
    (train, test, rul)
}

#[test]
fn a_synthetic_fleet_is_learned() {
    let (train, test, rul) = synthetic_fleet(8);
    let opts = CmapssOptions {
        forest: aurum_models::ForestParams {
            trees: 20,
            ..CmapssOptions::default().forest
        },
        ..CmapssOptions::default()
    };
    let report = cmapss_run(train.as_bytes(), test.as_bytes(), rul.as_bytes(), &opts).unwrap();
    assert_eq!(report.train_units, 40);
    assert_eq!(report.test_units, 20);
    assert_eq!(report.predictions.len(), 20);
    assert_eq!(report.predictions[0].0, 1);
    // Constant sensors and settings are dropped.
    assert!(!report.channels.contains(&"sensor_1".to_owned()));
    assert!(!report.channels.contains(&"setting_3".to_owned()));
    assert!(report.channels.contains(&"sensor_2".to_owned()));
    assert!(report
        .predictions
        .iter()
        .all(|(_, p)| (0.0..=125.0).contains(p)));
    // A constant guess of the mean true RUL is far worse than this on such data.
    assert!(report.rmse < 35.0, "rmse {}", report.rmse);
    assert!(report.nasa_score.is_finite() && report.nasa_score > 0.0);
}

#[test]
fn a_rul_file_of_the_wrong_length_is_refused() {
    let (train, test, _) = synthetic_fleet(9);
    let err = cmapss_run(
        train.as_bytes(),
        test.as_bytes(),
        "10\n20\n".as_bytes(),
        &CmapssOptions::default(),
    )
    .unwrap_err();
    assert!(
        err.to_string().contains("2 values for 20 test units"),
        "{err}"
    );
}
