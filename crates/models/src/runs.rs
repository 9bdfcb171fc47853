//! Samples grouped into runs, and turned into model inputs.

use std::collections::BTreeMap;

use crate::dataset::{LabelledSample, RunPhase};
use aurum_domain::FeatureSchema;

use crate::model::extract_inputs;

/// Whether a sample is one the models are trained and judged on: the machine is running.
/// During `failure` the machine is stopped and under repair; predicting its breakdown then
/// is moot, and its zeros would make the task look easier than it is.
pub fn in_operation(sample: &LabelledSample) -> bool {
    sample.phase != RunPhase::Failure
}

/// Indices of `samples`, grouped by run (sorted by run id), each run in time order.
pub fn group_by_run(samples: &[&LabelledSample]) -> Vec<Vec<usize>> {
    let mut runs: BTreeMap<&str, Vec<usize>> = BTreeMap::new();
    for (i, s) in samples.iter().enumerate() {
        runs.entry(s.run_id.as_str()).or_default().push(i);
    }
    runs.into_values()
        .map(|mut idx| {
            idx.sort_by_key(|&i| samples[i].features.window_end);
            idx
        })
        .collect()
}

/// The model inputs of the samples that have all of the schema's metrics, with the samples.
pub fn inputs_of<'a>(
    schema: &FeatureSchema,
    columns: &[usize],
    names: &[String],
    samples: impl IntoIterator<Item = &'a LabelledSample>,
) -> (Vec<&'a LabelledSample>, Vec<Vec<f64>>) {
    samples
        .into_iter()
        .filter_map(|s| {
            extract_inputs(schema, columns, names, &s.features)
                .ok()
                .map(|row| (s, row))
        })
        .unzip()
}
