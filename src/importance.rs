//! Permutation feature importance (Breiman, 2001; scikit-learn's `permutation_importance`):
//! how much a predictor's score drops when one raw column's values are shuffled among the
//! rows, which breaks the column's link with the target and leaves everything else as it
//! was. It needs no knowledge of the model, so it works for every family and for ensembles;
//! measured on rows the model did not train on, it says what the model relies on to
//! generalize.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::Serialize;

use lepton_core::Direction;
use lepton_data::Table;

use crate::error::Result;
use crate::metric::Metric;
use crate::predictor::Predictor;

/// The repeats [`Predictor::permutation_importance`] is usually given (scikit-learn's
/// default is 5).
pub const IMPORTANCE_REPEATS: usize = 5;

/// The most rows of shuffled copies predicted in one call.
const STACKED_ROWS: usize = 20_000;

/// One raw column's permutation importance.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FeatureImportance {
    /// The input column.
    pub column: String,
    /// The mean drop of the score over the repeats, positive when shuffling the column makes
    /// the model worse (in the metric's units, whichever its direction).
    pub mean: f64,
    /// The standard deviation of the drop over the repeats.
    pub sd: f64,
}

impl Predictor {
    /// The permutation importance of each input column on `table` (rows with the target,
    /// which the model did not train on), in `metric`, over `repeats` shuffles drawn with
    /// `seed`; most important first. Columns the preprocessor dropped score 0.
    pub fn permutation_importance(
        &self,
        table: &Table,
        metric: Metric,
        repeats: usize,
        seed: u64,
    ) -> Result<Vec<FeatureImportance>> {
        let task = &self.input_schema().task;
        if !metric.fits(task) {
            return Err(lepton_core::Error::InvalidInput(format!(
                "{metric} does not score a {task:?}"
            ))
            .into());
        }
        let (targets, predictions) = self.predict_labelled(table)?;
        let baseline = metric
            .score(task, &targets, &predictions)?
            .ok_or_else(|| undefined(metric))?;
        let sign = match metric.direction() {
            Direction::Maximize => 1.0,
            Direction::Minimize => -1.0,
        };
        // Every shuffled copy of the rows is predicted in few large calls (a model's call
        // costs more than a few rows): copies of the table stacked, as many columns' repeats
        // at once as fit in STACKED_ROWS rows, each copy with one column shuffled within it.
        let (n, repeats) = (table.n_rows(), repeats.max(1));
        let columns = &self.input_schema().features;
        let per_call = (STACKED_ROWS / (n * repeats).max(1)).max(1);
        let mut rng = StdRng::seed_from_u64(seed);
        let mut out = Vec::with_capacity(columns.len());
        for chunk in columns.chunks(per_call) {
            let copies = chunk.len() * repeats;
            let all: Vec<usize> = (0..copies).flat_map(|_| 0..n).collect();
            let mut stacked = table.select(&all)?;
            for (c, column) in chunk.iter().enumerate() {
                // Copies c * repeats .. (c + 1) * repeats shuffle this column; the others
                // keep it as it is.
                let mut rows: Vec<usize> = (0..copies * n).collect();
                for copy in c * repeats..(c + 1) * repeats {
                    rows[copy * n..(copy + 1) * n].shuffle(&mut rng);
                }
                stacked = stacked.with_column_rows(column, &rows)?;
            }
            let (targets, predictions) = self.predict_labelled(&stacked)?;
            for (c, column) in chunk.iter().enumerate() {
                let drops = (c * repeats..(c + 1) * repeats)
                    .map(|copy| {
                        let at = copy * n..(copy + 1) * n;
                        let score = metric
                            .score(task, &targets[at.clone()], &predictions[at])?
                            .ok_or_else(|| undefined(metric))?;
                        Ok(sign * (baseline - score))
                    })
                    .collect::<Result<Vec<f64>>>()?;
                let mean = drops.iter().sum::<f64>() / drops.len() as f64;
                let var =
                    drops.iter().map(|d| (d - mean).powi(2)).sum::<f64>() / drops.len() as f64;
                out.push(FeatureImportance {
                    column: column.clone(),
                    mean,
                    sd: var.sqrt(),
                });
            }
        }
        out.sort_by(|a, b| b.mean.total_cmp(&a.mean));
        Ok(out)
    }
}

fn undefined(metric: Metric) -> crate::Error {
    lepton_core::Error::InvalidInput(format!("{metric} is undefined on these rows")).into()
}
