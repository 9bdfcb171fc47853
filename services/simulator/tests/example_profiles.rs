//! The example profiles shipped with the simulator are profiles the platform accepts.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use aurum_domain::{EsgActivity, ProfileDraft};

fn example(name: &str) -> ProfileDraft {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples/profiles")
        .join(format!("{name}.json"));
    let text = std::fs::read_to_string(&path).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

#[test]
fn the_example_profiles_parse_with_their_esg_activities() {
    for (name, activities) in [
        ("centrifugal_pump", vec![EsgActivity::Electricity]),
        (
            "belt_conveyor",
            vec![EsgActivity::Production, EsgActivity::Electricity],
        ),
    ] {
        let spec = example(name)
            .parse()
            .unwrap_or_else(|errors| panic!("{name}: {errors:?}"));
        let found: Vec<EsgActivity> = spec.metrics.iter().filter_map(|m| m.activity).collect();
        assert_eq!(found, activities, "{name}");
    }
}
