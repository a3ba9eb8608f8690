//! A linear support vector machine trained directly on sparse rows (TF-IDF features of texts):
//! the problem scikit-learn's `LinearSVC(C=c)` solves with liblinear's default solver, half the
//! squared norm of the weights plus `c` times the summed squared hinge loss, the intercept
//! learnt as the weight of a constant feature of 1 (so penalized too). Solved in its dual by
//! coordinate descent with shrinking (Hsieh, Chang, Lin, Keerthi and Sundararajan, "A Dual
//! Coordinate Descent Method for Large-scale Linear SVM", ICML 2008): each step costs one row's
//! stored values, and rows whose constraint is clearly inactive are set aside until the end.
//! Several classes are learnt one against the rest, on every core.

use std::time::{Duration, Instant};

use lepton_data::SparseRows;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::sparse_linear::{FittedSparseLinear, check_settings, check_training};

/// How a linear SVM of sparse rows is trained.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SparseLinearSvm {
    /// The inverse of the regularization strength (scikit-learn's `C`).
    pub c: f64,
    /// The most passes over the rows.
    pub max_iterations: u64,
    /// Stop when the dual's projected gradients all lie within this of each other.
    pub tolerance: f64,
    /// The seed of the order the rows are visited in.
    pub seed: u64,
}

impl Default for SparseLinearSvm {
    /// scikit-learn's `LinearSVC` defaults: `C = 1`, 1,000 passes, tolerance 1e-4.
    fn default() -> Self {
        SparseLinearSvm {
            c: 1.0,
            max_iterations: 1000,
            tolerance: 1e-4,
            seed: 0,
        }
    }
}

impl SparseLinearSvm {
    /// Trains on `x`'s rows and their classes `y` (each below `classes`, at least 2).
    pub fn fit(&self, x: &SparseRows, y: &[usize], classes: usize) -> Result<FittedSparseLinear> {
        self.fit_within(x, y, classes, None)
    }

    /// [`fit`](Self::fit), stopping after `time_limit` (if any) with the weights reached.
    pub fn fit_within(
        &self,
        x: &SparseRows,
        y: &[usize],
        classes: usize,
        time_limit: Option<Duration>,
    ) -> Result<FittedSparseLinear> {
        check_settings(self.c, self.max_iterations, self.tolerance)?;
        check_training(x, y, classes)?;
        let deadline = time_limit.map(|limit| Instant::now() + limit);
        let norms: Vec<f64> = (0..x.len())
            .map(|r| {
                let values = x.row(r).1;
                values.iter().map(|&v| f64::from(v).powi(2)).sum::<f64>()
            })
            .collect();
        let d = x.columns;
        // Two classes: one machine, the second class positive; its margin is the second
        // class's score against a first class scored 0, so the softmax is its sigmoid.
        let positives: Vec<usize> = if classes == 2 {
            vec![1]
        } else {
            (0..classes).collect()
        };
        let machines: Vec<Vec<f64>> = positives
            .par_iter()
            .map(|&positive| {
                let signs: Vec<f64> = y
                    .iter()
                    .map(|&c| if c == positive { 1.0 } else { -1.0 })
                    .collect();
                self.solve(x, &norms, &signs, deadline)
            })
            .collect();
        let mut weights = vec![0.0; classes * d];
        let mut intercepts = vec![0.0; classes];
        for (&positive, w) in positives.iter().zip(&machines) {
            weights[positive * d..(positive + 1) * d].copy_from_slice(&w[..d]);
            intercepts[positive] = w[d];
        }
        Ok(FittedSparseLinear::new(d, &weights, &intercepts))
    }

    /// One binary machine: the rows' labels as signs (+1 or -1) and their squared norms;
    /// returns the weights followed by the intercept.
    fn solve(
        &self,
        x: &SparseRows,
        norms: &[f64],
        signs: &[f64],
        deadline: Option<Instant>,
    ) -> Vec<f64> {
        let d = x.columns;
        let n = x.len();
        // The squared hinge's dual: a diagonal of 1 / (2C), no upper bound on the alphas.
        let diagonal = 0.5 / self.c;
        let mut w = vec![0.0; d + 1];
        let mut alpha = vec![0.0; n];
        let mut active: Vec<usize> = (0..n).collect();
        let mut rng = StdRng::seed_from_u64(self.seed);
        // The largest projected gradient of the last pass: a row at its bound (alpha 0) whose
        // gradient exceeds it is set aside.
        let mut upper = f64::INFINITY;
        let mut passes = 0;
        while passes < self.max_iterations {
            passes += 1;
            active.shuffle(&mut rng);
            let (mut max_pg, mut min_pg) = (f64::NEG_INFINITY, f64::INFINITY);
            let mut k = 0;
            while k < active.len() {
                let i = active[k];
                let row = x.row(i);
                let gradient = signs[i] * margin(row, &w) - 1.0 + diagonal * alpha[i];
                let projected = if alpha[i] == 0.0 {
                    if gradient > upper {
                        active.swap_remove(k);
                        continue;
                    }
                    gradient.min(0.0)
                } else {
                    gradient
                };
                max_pg = max_pg.max(projected);
                min_pg = min_pg.min(projected);
                if projected.abs() > 1e-12 {
                    let old = alpha[i];
                    alpha[i] = (old - gradient / (norms[i] + 1.0 + diagonal)).max(0.0);
                    let step = (alpha[i] - old) * signs[i];
                    let (columns, values) = row;
                    for (&j, &v) in columns.iter().zip(values) {
                        w[j as usize] += step * f64::from(v);
                    }
                    w[d] += step;
                }
                k += 1;
            }
            if deadline.is_some_and(|at| Instant::now() >= at) {
                break;
            }
            if max_pg - min_pg <= self.tolerance {
                if active.len() == n {
                    break;
                }
                // Converged on the rows kept: check every row once more.
                active = (0..n).collect();
                upper = f64::INFINITY;
                continue;
            }
            upper = if max_pg <= 0.0 { f64::INFINITY } else { max_pg };
        }
        tracing::debug!(passes, "linear SVM trained");
        w
    }
}

/// A row's score under `w`, the weights of the columns followed by the intercept.
fn margin((columns, values): (&[u32], &[f32]), w: &[f64]) -> f64 {
    w[w.len() - 1]
        + columns
            .iter()
            .zip(values)
            .map(|(&j, &v)| w[j as usize] * f64::from(v))
            .sum::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sparse_linear::tests::{sparse, word_rows};

    /// The primal objective's gradient at `w` (weights then intercept): zero at the optimum.
    fn primal_gradient(x: &SparseRows, signs: &[f64], c: f64, w: &[f64]) -> Vec<f64> {
        let d = x.columns;
        let mut g = w.to_vec();
        for (i, &s) in signs.iter().enumerate() {
            let row = x.row(i);
            let slack = 1.0 - s * margin(row, w);
            let (columns, values) = row;
            if slack > 0.0 {
                let factor = -2.0 * c * slack * s;
                for (&j, &v) in columns.iter().zip(values) {
                    g[j as usize] += factor * f64::from(v);
                }
                g[d] += factor;
            }
        }
        g
    }

    #[test]
    fn it_reaches_the_primal_optimum() {
        let x = sparse(
            &[
                &[(0, 1.0), (2, 0.5)],
                &[(1, 2.0)],
                &[(0, -1.0), (1, 0.3)],
                &[(2, 1.5), (1, -0.4)],
                &[(0, 0.2), (1, 0.2), (2, 0.2)],
            ],
            3,
        );
        // Not separable by these features: some slack is left at the optimum.
        let signs = [1.0, -1.0, 1.0, -1.0, 1.0];
        let norms: Vec<f64> = (0..x.len())
            .map(|r| x.row(r).1.iter().map(|&v| f64::from(v).powi(2)).sum())
            .collect();
        for c in [0.1, 1.0, 10.0] {
            let svm = SparseLinearSvm {
                c,
                tolerance: 1e-9,
                max_iterations: 100_000,
                ..SparseLinearSvm::default()
            };
            let w = svm.solve(&x, &norms, &signs, None);
            let g = primal_gradient(&x, &signs, c, &w);
            let norm = g.iter().map(|v| v * v).sum::<f64>().sqrt();
            assert!(norm < 1e-6, "C {c}: gradient {g:?} at {w:?}");
        }
    }

    #[test]
    fn it_separates_texts_of_several_classes() {
        let texts = [
            "cheap pills buy now",
            "buy cheap watches now",
            "meeting at noon tomorrow",
            "the report for the meeting",
            "goal scored in the match",
            "the match ended with a goal",
        ];
        let labels = [0, 0, 1, 1, 2, 2];
        let (tfidf, x) = word_rows(&texts);
        let model = SparseLinearSvm::default().fit(&x, &labels, 3).unwrap();
        let new = tfidf.transform(&["cheap pills", "meeting tomorrow", "a goal in the match"]);
        for (p, class) in model.predict_proba(&new).unwrap().iter().zip(0..) {
            let best = (0..3).max_by(|&a, &b| p[a].total_cmp(&p[b])).unwrap();
            assert_eq!(best, class, "{p:?}");
            assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
        // Two classes: one machine, its margin the second class's score.
        let two = SparseLinearSvm::default()
            .fit(&tfidf.transform(&texts[..4]), &labels[..4], 2)
            .unwrap();
        let p = two.predict_proba(&tfidf.transform(&["cheap pills", "meeting tomorrow"]));
        let p = p.unwrap();
        assert!(p[0][0] > 0.5 && p[1][1] > 0.5, "{p:?}");
    }

    #[test]
    fn bad_settings_are_refused_and_a_deadline_still_gives_a_model() {
        let x = sparse(&[&[(0, 1.0)], &[(1, 1.0)]], 2);
        let ok = SparseLinearSvm::default();
        for bad in [
            SparseLinearSvm { c: 0.0, ..ok },
            SparseLinearSvm {
                c: f64::INFINITY,
                ..ok
            },
            SparseLinearSvm {
                max_iterations: 0,
                ..ok
            },
            SparseLinearSvm {
                tolerance: f64::NAN,
                ..ok
            },
        ] {
            assert!(bad.fit(&x, &[0, 1], 2).is_err(), "{bad:?}");
        }
        assert!(ok.fit(&x, &[0, 2], 2).is_err());
        let model = ok.fit_within(&x, &[0, 1], 2, Some(Duration::ZERO)).unwrap();
        assert_eq!(model.classes(), 2);
    }
}
