//! The complete trials of a history on the model's coordinates: numeric parameters in the
//! unit cube, categorical ones as choice indices, the objective standardized as a loss.

use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use lepton_core::{Direction, Distribution, History};

use crate::samplers::unit;

/// The complete trials on the model's coordinates, with the objective standardized as a
/// loss (lower is better).
#[derive(Debug, Clone)]
pub(super) struct Data {
    pub(super) categorical: Vec<bool>,
    pub(super) x: Vec<Vec<f64>>,
    pub(super) y: Vec<f64>,
}

impl Data {
    pub(super) fn read(history: &History, dims: &[(String, Distribution)]) -> Option<Data> {
        let sign = match history.direction() {
            Direction::Minimize => 1.0,
            Direction::Maximize => -1.0,
        };
        let mut x = Vec::new();
        let mut y = Vec::new();
        for t in history.completed() {
            let row: Option<Vec<f64>> = dims
                .iter()
                .map(|(name, d)| {
                    let v = t.params.get(name.as_str())?;
                    match d {
                        Distribution::Categorical { .. } => d.to_internal(v),
                        _ => unit::to_unit(d, v),
                    }
                })
                .collect();
            if let (Some(row), Some(v)) = (row, t.value) {
                x.push(row);
                y.push(sign * v);
            }
        }
        if x.len() < 2 {
            return None;
        }
        let n = y.len() as f64;
        let mean = y.iter().sum::<f64>() / n;
        let sd = (y.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / n).sqrt();
        let sd = if sd > 1e-12 { sd } else { 1.0 };
        Some(Data {
            categorical: dims
                .iter()
                .map(|(_, d)| matches!(d, Distribution::Categorical { .. }))
                .collect(),
            x,
            y: y.iter().map(|v| (v - mean) / sd).collect(),
        })
    }

    pub(super) fn d(&self) -> usize {
        self.categorical.len()
    }

    pub(super) fn n(&self) -> usize {
        self.y.len()
    }

    /// Rows to fit the hyper-parameters on: all of them up to `max`, else the best half and a
    /// random half of the rest.
    pub(super) fn fit_subset(&self, max: usize, rng: &mut StdRng) -> Vec<usize> {
        let mut order: Vec<usize> = (0..self.n()).collect();
        if self.n() <= max {
            return order;
        }
        order.sort_by(|&a, &b| self.y[a].total_cmp(&self.y[b]));
        let mut rest = order.split_off(max / 2);
        rest.shuffle(rng);
        order.extend(rest.into_iter().take(max - max / 2));
        order
    }

    pub(super) fn subset(&self, rows: &[usize]) -> Data {
        Data {
            categorical: self.categorical.clone(),
            x: rows.iter().map(|&i| self.x[i].clone()).collect(),
            y: rows.iter().map(|&i| self.y[i]).collect(),
        }
    }

    /// Per-dimension squared differences between two points (Hamming for choices).
    pub(super) fn sq_diff(&self, a: &[f64], b: &[f64], d: usize) -> f64 {
        if self.categorical[d] {
            if a[d] == b[d] { 0.0 } else { 1.0 }
        } else {
            (a[d] - b[d]).powi(2)
        }
    }
}
