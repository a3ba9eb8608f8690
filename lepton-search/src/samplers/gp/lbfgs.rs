//! argmin's L-BFGS with a More-Thuente line search on a function that returns its value and
//! gradient together (evaluated once per point and cached).

use std::cell::RefCell;

use argmin::core::{CostFunction, Executor, Gradient, State};
use argmin::solver::linesearch::MoreThuenteLineSearch;
use argmin::solver::quasinewton::LBFGS;

/// A point, the cost there and its gradient.
type Evaluation = (Vec<f64>, f64, Vec<f64>);

/// An argmin problem whose cost and gradient come from one evaluation, cached.
struct Cached<F: Fn(&[f64]) -> Option<(f64, Vec<f64>)>> {
    f: F,
    last: RefCell<Option<Evaluation>>,
}

impl<F: Fn(&[f64]) -> Option<(f64, Vec<f64>)>> Cached<F> {
    fn new(f: F) -> Self {
        Cached {
            f,
            last: RefCell::new(None),
        }
    }

    fn eval(&self, p: &[f64]) -> std::result::Result<(f64, Vec<f64>), argmin::core::Error> {
        if let Some((q, v, g)) = &*self.last.borrow()
            && q == p
        {
            return Ok((*v, g.clone()));
        }
        let (v, g) =
            (self.f)(p).ok_or_else(|| argmin::core::Error::msg("not finite at this point"))?;
        *self.last.borrow_mut() = Some((p.to_vec(), v, g.clone()));
        Ok((v, g))
    }
}

impl<F: Fn(&[f64]) -> Option<(f64, Vec<f64>)>> CostFunction for Cached<F> {
    type Param = Vec<f64>;
    type Output = f64;
    fn cost(&self, p: &Vec<f64>) -> std::result::Result<f64, argmin::core::Error> {
        Ok(self.eval(p)?.0)
    }
}

impl<F: Fn(&[f64]) -> Option<(f64, Vec<f64>)>> Gradient for Cached<F> {
    type Param = Vec<f64>;
    type Gradient = Vec<f64>;
    fn gradient(&self, p: &Vec<f64>) -> std::result::Result<Vec<f64>, argmin::core::Error> {
        Ok(self.eval(p)?.1)
    }
}

/// Minimizes `f` from `start` with L-BFGS; returns the best point seen (`start` if the
/// solver fails outright).
pub(super) fn lbfgs<F: Fn(&[f64]) -> Option<(f64, Vec<f64>)>>(
    f: F,
    start: Vec<f64>,
    iters: u64,
    tol_grad: f64,
) -> Vec<f64> {
    let problem = Cached::new(f);
    let Ok(start_value) = problem.eval(&start).map(|(v, _)| v) else {
        return start;
    };
    let solver = LBFGS::new(MoreThuenteLineSearch::new(), 7);
    let solver = match solver.clone().with_tolerance_grad(tol_grad) {
        Ok(s) => s,
        Err(_) => solver,
    };
    let run = Executor::new(problem, solver)
        .configure(|state| state.param(start.clone()).max_iters(iters))
        .run();
    match run {
        Ok(result) => {
            let state = result.state();
            match state.get_best_param() {
                Some(p) if state.get_best_cost() <= start_value => p.clone(),
                _ => start,
            }
        }
        Err(_) => start,
    }
}
