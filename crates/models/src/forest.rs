//! A random forest of regression trees (smartcore), used both for the remaining useful life
//! and, regressing the 0/1 event indicator, as a probability forest for "failure within the
//! horizon": the mean of the trees' leaf frequencies estimates the probability.

use serde::{Deserialize, Serialize};
use smartcore::ensemble::random_forest_regressor::{
    RandomForestRegressor, RandomForestRegressorParameters,
};
use smartcore::linalg::basic::matrix::DenseMatrix;

/// The size and shape of a forest.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ForestParams {
    pub trees: usize,
    pub max_depth: u16,
    pub min_samples_leaf: usize,
    /// Inputs tried at each split; `None`: a third of them, the usual choice for regression.
    pub split_candidates: Option<usize>,
    pub seed: u64,
}

impl Default for ForestParams {
    fn default() -> Self {
        Self {
            trees: 40,
            max_depth: 10,
            min_samples_leaf: 20,
            split_candidates: None,
            seed: 7,
        }
    }
}

type Regressor = RandomForestRegressor<f64, f64, DenseMatrix<f64>, Vec<f64>>;

#[derive(Debug, Serialize, Deserialize)]
pub struct Forest {
    inputs: usize,
    /// Mean decrease in impurity per input, normalised to sum to 1.
    importances: Vec<f64>,
    model: Regressor,
}

impl Forest {
    pub fn fit(rows: &[Vec<f64>], targets: &[f64], params: &ForestParams) -> Result<Self, String> {
        let inputs = rows.first().map_or(0, Vec::len);
        if rows.is_empty() || inputs == 0 || rows.len() != targets.len() {
            return Err(format!(
                "{} rows of {} inputs for {} targets",
                rows.len(),
                inputs,
                targets.len()
            ));
        }
        let x = matrix(rows)?;
        let parameters = RandomForestRegressorParameters::default()
            .with_n_trees(params.trees.max(1))
            .with_max_depth(params.max_depth.max(1))
            .with_min_samples_leaf(params.min_samples_leaf.max(1))
            .with_min_samples_split(2 * params.min_samples_leaf.max(1))
            .with_m(
                params
                    .split_candidates
                    .unwrap_or(inputs / 3)
                    .clamp(1, inputs),
            )
            .with_seed(params.seed);
        let model = Regressor::fit(&x, &targets.to_vec(), parameters).map_err(|e| e.to_string())?;
        let importances = model
            .compute_feature_importances()
            .map_err(|e| e.to_string())?;
        Ok(Self {
            inputs,
            importances,
            model,
        })
    }

    pub fn inputs(&self) -> usize {
        self.inputs
    }

    pub fn importances(&self) -> &[f64] {
        &self.importances
    }

    /// The prediction for one row of inputs.
    pub fn predict(&self, row: &[f64]) -> Result<f64, String> {
        Ok(self.predict_many(std::slice::from_ref(&row.to_vec()))?[0])
    }

    /// Predictions for many rows, in order (one matrix, so cheaper than row by row).
    pub fn predict_many(&self, rows: &[Vec<f64>]) -> Result<Vec<f64>, String> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(bad) = rows.iter().find(|r| r.len() != self.inputs) {
            return Err(format!(
                "the forest takes {} inputs, got {}",
                self.inputs,
                bad.len()
            ));
        }
        let predictions = self
            .model
            .predict(&matrix(rows)?)
            .map_err(|e| e.to_string())?;
        if predictions.len() != rows.len() {
            return Err(format!(
                "{} predictions for {} rows",
                predictions.len(),
                rows.len()
            ));
        }
        Ok(predictions)
    }
}

fn matrix(rows: &[Vec<f64>]) -> Result<DenseMatrix<f64>, String> {
    DenseMatrix::from_2d_vec(&rows.to_vec()).map_err(|e| e.to_string())
}
