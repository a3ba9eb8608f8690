//! The model conditioned on the trials (its posterior mean and variance at any point) and the
//! acquisition: the logarithm of expected improvement over the best trial, stable far into the
//! tail, with its gradient.

use nalgebra::{DMatrix, DVector};

use super::data::Data;
use super::kernel::{Hyper, cholesky, kernel_matrices, matern52, matern52_d_r2, noisy};
use crate::samplers::gauss;

/// The model conditioned on every complete trial.
pub(super) struct Posterior {
    pub(super) data: Data,
    pub(super) h: Hyper,
    pub(super) l: DMatrix<f64>,
    pub(super) alpha: DVector<f64>,
    pub(super) best: f64,
}

impl Posterior {
    pub(super) fn new(data: &Data, h: Hyper) -> Option<Posterior> {
        let chol = cholesky(noisy(kernel_matrices(data, &h).1, h.noise))?;
        let alpha = chol.solve(&DVector::from_column_slice(&data.y));
        let best = data.y.iter().copied().fold(f64::INFINITY, f64::min);
        Some(Posterior {
            data: data.clone(),
            h,
            l: chol.unpack(),
            alpha,
            best,
        })
    }

    fn k_star(&self, x: &[f64]) -> DVector<f64> {
        DVector::from_iterator(
            self.data.n(),
            self.data
                .x
                .iter()
                .map(|xi| self.h.scale * matern52(self.h.r2(&self.data, x, xi))),
        )
    }

    /// Log expected improvement at each of `points` (batched triangular solve).
    pub(super) fn log_ei_many(&self, points: &[Vec<f64>]) -> Vec<f64> {
        let n = self.data.n();
        let mut ks = DMatrix::<f64>::zeros(n, points.len());
        for (c, p) in points.iter().enumerate() {
            ks.set_column(c, &self.k_star(p));
        }
        let mu = ks.tr_mul(&self.alpha);
        let mut v = ks;
        if !self.l.solve_lower_triangular_mut(&mut v) {
            return vec![f64::NEG_INFINITY; points.len()];
        }
        (0..points.len())
            .map(|c| {
                let var = (self.h.scale - v.column(c).norm_squared()).max(1e-12);
                log_ei(mu[c], var.sqrt(), self.best).0
            })
            .collect()
    }

    /// Log expected improvement at `x` and its gradient over the numeric coordinates.
    pub(super) fn log_ei_grad(&self, x: &[f64]) -> Option<(f64, Vec<f64>)> {
        let ks = self.k_star(x);
        let mu = ks.dot(&self.alpha);
        let v = self.l.solve_lower_triangular(&ks)?;
        let beta = self.l.tr_solve_lower_triangular(&v)?;
        let var = (self.h.scale - v.norm_squared()).max(1e-12);
        let sd = var.sqrt();
        let (value, d_mu, d_sd) = log_ei(mu, sd, self.best);
        let mut grad = vec![0.0; x.len()];
        for (i, xi) in self.data.x.iter().enumerate() {
            let r2 = self.h.r2(&self.data, x, xi);
            // d k(x, x_i) / d x_d = 2 scale m'(r2) s_d (x_d - x_id)
            let common = 2.0 * self.h.scale * matern52_d_r2(r2);
            for (d, g) in grad.iter_mut().enumerate() {
                if self.data.categorical[d] {
                    continue;
                }
                let dk = common * self.h.inv_sq[d] * (x[d] - xi[d]);
                // d mu = alpha . dk ; d var = -2 beta . dk ; d sd = d var / (2 sd)
                *g += d_mu * self.alpha[i] * dk + d_sd * (-beta[i] * dk / sd);
            }
        }
        value.is_finite().then_some((value, grad))
    }
}

/// `ln EI` for minimization at a point with posterior `N(mu, sd^2)` and incumbent `best`,
/// with its partial derivatives in `mu` and `sd`. Stable far into the tail, where EI itself
/// underflows (the "logEI" of Ament et al., 2023).
pub(super) fn log_ei(mu: f64, sd: f64, best: f64) -> (f64, f64, f64) {
    let z = (best - mu) / sd;
    // h(z) = z Phi(z) + phi(z); EI = sd h(z).
    let (ln_h, pdf_over_h, cdf_over_h) = if z > -3.0 {
        let h = z * gauss::cdf(z) + gauss::pdf(z);
        (h.ln(), gauss::pdf(z) / h, gauss::cdf(z) / h)
    } else {
        let t = -z;
        let r = mills_ratio(t);
        let q = (1.0 - t * r).max(f64::MIN_POSITIVE);
        (gauss::ln_pdf(t) + q.ln(), 1.0 / q, r / q)
    };
    // d ln EI = (phi dsd - Phi dmu) / (sd h)
    (sd.ln() + ln_h, -cdf_over_h / sd, pdf_over_h / sd)
}

/// Mills' ratio `Q(t) / phi(t)` for `t >= 3`, by its continued fraction.
fn mills_ratio(t: f64) -> f64 {
    let mut f = t;
    for k in (1..=60).rev() {
        f = t + k as f64 / f;
    }
    1.0 / f
}
