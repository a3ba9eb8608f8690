//! Multinomial logistic regression trained directly on sparse rows (TF-IDF features of texts):
//! the objective scikit-learn's `LogisticRegression(C=c)` minimizes, `c` times the summed log
//! loss plus half the squared norm of the weights (the intercepts are not penalized), by
//! L-BFGS (argmin's). A pass over the rows costs their stored values times the classes,
//! whatever the number of columns. The result is a [`FittedSparseLinear`].

use std::cell::RefCell;

use argmin::core::{CostFunction, Executor, Gradient, State};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;
use lepton_data::SparseRows;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::sparse_linear::{FittedSparseLinear, check_settings, check_training, invalid};

/// How a multinomial logistic regression of sparse rows is trained.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct SparseLogistic {
    /// The inverse of the regularization strength (scikit-learn's `C`): larger fits the
    /// training rows more closely.
    pub c: f64,
    /// The most L-BFGS iterations.
    pub max_iterations: u64,
    /// Stop when the gradient's norm falls below this, on the scale scikit-learn measures it:
    /// the objective divided by `C` times the number of rows (the mean log loss plus the
    /// penalty scaled alike), so that one tolerance suits any corpus size and `C`.
    pub tolerance: f64,
}

impl Default for SparseLogistic {
    /// scikit-learn's defaults: `C = 1`, 100 iterations, tolerance 1e-4.
    fn default() -> Self {
        SparseLogistic {
            c: 1.0,
            max_iterations: 100,
            tolerance: 1e-4,
        }
    }
}

/// A point, the objective there and its gradient.
type Evaluated = (Vec<f64>, f64, Vec<f64>);

/// The training problem: the rows, their classes and `c`; and the last point evaluated with
/// its objective and gradient: the solver asks for both at every point, in either order, and
/// one pass over the rows answers both.
struct Problem<'a> {
    x: &'a SparseRows,
    y: &'a [usize],
    classes: usize,
    c: f64,
    last: RefCell<Option<Evaluated>>,
}

impl Problem<'_> {
    /// The objective, and its gradient when `gradient` is asked for.
    fn evaluate(&self, theta: &[f64], mut gradient: Option<&mut [f64]>) -> f64 {
        let (k, d) = (self.classes, self.x.columns);
        let (weights, intercepts) = theta.split_at(k * d);
        let mut value = 0.5 * weights.iter().map(|w| w * w).sum::<f64>();
        if let Some(g) = gradient.as_deref_mut() {
            let (gw, gb) = g.split_at_mut(k * d);
            gw.copy_from_slice(weights);
            gb.fill(0.0);
        }
        let mut scores = vec![0.0; k];
        for (r, &label) in self.y.iter().enumerate() {
            let (columns, values) = self.x.row(r);
            for (class, score) in scores.iter_mut().enumerate() {
                let row = &weights[class * d..(class + 1) * d];
                *score = intercepts[class]
                    + columns
                        .iter()
                        .zip(values)
                        .map(|(&j, &v)| row[j as usize] * f64::from(v))
                        .sum::<f64>();
            }
            let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let sum: f64 = scores.iter().map(|s| (s - max).exp()).sum();
            let log_sum = max + sum.ln();
            value += self.c * (log_sum - scores[label]);
            if let Some(g) = gradient.as_deref_mut() {
                let (gw, gb) = g.split_at_mut(k * d);
                for class in 0..k {
                    let p = (scores[class] - log_sum).exp();
                    let residual = self.c * (p - f64::from(u8::from(class == label)));
                    gb[class] += residual;
                    let row = &mut gw[class * d..(class + 1) * d];
                    for (&j, &v) in columns.iter().zip(values) {
                        row[j as usize] += residual * f64::from(v);
                    }
                }
            }
        }
        value
    }
}

impl Problem<'_> {
    /// The objective and its gradient at `theta`, from the last point evaluated when it is
    /// the same (the solver asks for both, in either order).
    fn at(&self, theta: &[f64]) -> (f64, Vec<f64>) {
        if let Some((at, value, g)) = &*self.last.borrow()
            && at.as_slice() == theta
        {
            return (*value, g.clone());
        }
        let mut g = vec![0.0; theta.len()];
        let value = self.evaluate(theta, Some(&mut g));
        *self.last.borrow_mut() = Some((theta.to_vec(), value, g.clone()));
        (value, g)
    }
}

impl CostFunction for Problem<'_> {
    type Param = Vec<f64>;
    type Output = f64;

    fn cost(&self, theta: &Vec<f64>) -> std::result::Result<f64, argmin::core::Error> {
        Ok(self.at(theta).0)
    }
}

impl Gradient for Problem<'_> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;

    fn gradient(&self, theta: &Vec<f64>) -> std::result::Result<Vec<f64>, argmin::core::Error> {
        Ok(self.at(theta).1)
    }
}

impl SparseLogistic {
    /// Trains on `x`'s rows and their classes `y` (each below `classes`, at least 2).
    pub fn fit(&self, x: &SparseRows, y: &[usize], classes: usize) -> Result<FittedSparseLinear> {
        self.fit_within(x, y, classes, None)
    }

    /// [`fit`](Self::fit), stopping after `time_limit` (if any) at the best point so far.
    pub fn fit_within(
        &self,
        x: &SparseRows,
        y: &[usize],
        classes: usize,
        time_limit: Option<std::time::Duration>,
    ) -> Result<FittedSparseLinear> {
        check_settings(self.c, self.max_iterations, self.tolerance)?;
        check_training(x, y, classes)?;
        let problem = Problem {
            x,
            y,
            classes,
            c: self.c,
            last: RefCell::new(None),
        };
        let start = vec![0.0; classes * (x.columns + 1)];
        let solver = LBFGS::new(MoreThuenteLineSearch::new(), 10)
            .with_tolerance_grad(self.tolerance * self.c * x.len() as f64)
            .map_err(|e| invalid(e.to_string()))?;
        let mut executor = Executor::new(problem, solver)
            .configure(|state| state.param(start).max_iters(self.max_iterations));
        if let Some(limit) = time_limit {
            executor = executor.timeout(limit);
        }
        let result = executor
            .run()
            .map_err(|e| invalid(format!("L-BFGS: {e}")))?;
        let state = result.state();
        let theta = state
            .get_best_param()
            .ok_or_else(|| invalid("L-BFGS returned no parameters".into()))?;
        tracing::debug!(
            iterations = state.get_iter(),
            objective = state.get_best_cost(),
            "sparse logistic regression trained"
        );
        let (weights, intercepts) = theta.split_at(classes * x.columns);
        Ok(FittedSparseLinear::new(x.columns, weights, intercepts))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sparse_linear::tests::{sparse, word_rows};

    #[test]
    fn the_gradient_is_the_objectives() {
        let x = sparse(
            &[&[(0, 1.0), (2, 0.5)], &[(1, 2.0)], &[(0, -1.0), (1, 0.3)]],
            3,
        );
        let y = [0, 1, 2];
        let problem = Problem {
            x: &x,
            y: &y,
            classes: 3,
            c: 2.0,
            last: RefCell::new(None),
        };
        let theta: Vec<f64> = (0..12).map(|i| (f64::from(i) * 0.37).sin()).collect();
        let mut g = vec![0.0; 12];
        problem.evaluate(&theta, Some(&mut g));
        for i in 0..12 {
            let h = 1e-6;
            let (mut up, mut down) = (theta.clone(), theta.clone());
            up[i] += h;
            down[i] -= h;
            let numeric = (problem.evaluate(&up, None) - problem.evaluate(&down, None)) / (2.0 * h);
            assert!((numeric - g[i]).abs() < 1e-5, "{i}: {numeric} vs {}", g[i]);
        }
        // Through the solver's interface: the gradient kept from the cost is the same, and
        // another point's is not served from it.
        problem.cost(&theta).unwrap();
        assert_eq!(problem.gradient(&theta).unwrap(), g);
        let other: Vec<f64> = theta.iter().map(|t| t + 0.1).collect();
        let mut expected = vec![0.0; 12];
        problem.evaluate(&other, Some(&mut expected));
        assert_eq!(problem.gradient(&other).unwrap(), expected);
    }

    #[test]
    fn it_separates_texts_by_their_words() {
        let texts = [
            "cheap pills buy now",
            "buy cheap watches now",
            "win money now cheap",
            "meeting at noon tomorrow",
            "the report for the meeting",
            "lunch tomorrow at noon",
        ];
        let labels = [1, 1, 1, 0, 0, 0];
        let (tfidf, x) = word_rows(&texts);
        let with_c = |c| {
            SparseLogistic {
                c,
                ..SparseLogistic::default()
            }
            .fit(&x, &labels, 2)
            .unwrap()
        };
        let model = with_c(10.0);
        let proba = model.predict_proba(&x).unwrap();
        for (p, &label) in proba.iter().zip(&labels) {
            assert!(p[label] > 0.8, "{p:?} for class {label}");
            assert!((p.iter().sum::<f32>() - 1.0).abs() < 1e-5);
        }
        let new = tfidf.transform(&["cheap pills", "meeting tomorrow"]);
        let p = model.predict_proba(&new).unwrap();
        assert!(p[0][1] > 0.5 && p[1][0] > 0.5, "{p:?}");
        // Stronger regularization pulls the probabilities towards the classes' shares.
        let q = with_c(0.01).predict_proba(&x).unwrap();
        assert!(q.iter().all(|p| (p[0] - 0.5).abs() < 0.1), "{q:?}");
    }

    #[test]
    fn bad_input_is_refused() {
        let x = sparse(&[&[(0, 1.0)], &[(1, 1.0)]], 2);
        let fit = |m: SparseLogistic, y: &[usize], classes| m.fit(&x, y, classes);
        let ok = SparseLogistic::default();
        assert!(fit(ok, &[0], 2).is_err());
        assert!(fit(ok, &[0, 1], 1).is_err());
        assert!(fit(ok, &[0, 2], 2).is_err());
        assert!(fit(SparseLogistic { c: 0.0, ..ok }, &[0, 1], 2).is_err());
        assert!(fit(SparseLogistic { c: f64::NAN, ..ok }, &[0, 1], 2).is_err());
        let nan = sparse(&[&[(0, f32::NAN)], &[(1, 1.0)]], 2);
        assert!(ok.fit(&nan, &[0, 1], 2).is_err());
        let model = ok.fit(&x, &[0, 1], 2).unwrap();
        assert!(model.predict_proba(&sparse(&[&[(2, 1.0)]], 3)).is_err());
    }
}
