//! The kernel's hyper-parameters fitted by maximizing the marginal likelihood plus weak priors
//! (Optuna's), by L-BFGS in log space with analytic gradients.

use std::f64::consts::PI;

use nalgebra::DVector;

use super::data::Data;
use super::kernel::{Hyper, cholesky, kernel_matrices, matern52_d_r2, noisy};
use super::lbfgs::lbfgs;

/// Negative log marginal likelihood minus log prior, and its gradient in raw coordinates.
pub(super) fn objective(
    data: &Data,
    theta: &[f64],
    deterministic: bool,
) -> Option<(f64, Vec<f64>)> {
    let h = Hyper::from_raw(theta, deterministic);
    let n = data.n();
    let d = data.d();
    let (r2, base) = kernel_matrices(data, &h);
    let chol = cholesky(noisy(base.clone(), h.noise))?;
    let y = DVector::from_column_slice(&data.y);
    let alpha = chol.solve(&y);
    let log_det: f64 = chol.l_dirty().diagonal().iter().map(|v| v.ln()).sum();
    let nll = 0.5 * y.dot(&alpha) + log_det + 0.5 * n as f64 * (2.0 * PI).ln();
    // Priors (Optuna's): on each inverse squared lengthscale s, -(0.1/s + 0.1 s); on the scale,
    // Gamma(2, 1); on the noise, Gamma(1.1, 30).
    let mut log_prior: f64 = h.inv_sq.iter().map(|s| -(0.1 / s + 0.1 * s)).sum();
    log_prior += h.scale.ln() - h.scale;
    if !deterministic {
        log_prior += 0.1 * h.noise.ln() - 30.0 * h.noise;
    }

    // d nll / d theta = -1/2 tr(W dK/dtheta), W = alpha alpha^T - K^-1.
    let k_inv = chol.inverse();
    let mut grad = vec![0.0; d + 2];
    let mut tr_scale = 0.0;
    let mut tr_noise = 0.0;
    for i in 0..n {
        let w_ii = alpha[i] * alpha[i] - k_inv[(i, i)];
        tr_scale += w_ii * base[(i, i)];
        tr_noise += w_ii;
        for j in 0..i {
            let w = 2.0 * (alpha[i] * alpha[j] - k_inv[(i, j)]);
            tr_scale += w * base[(i, j)];
            let common = w * h.scale * matern52_d_r2(r2[(i, j)]);
            for (dim, g) in grad.iter_mut().enumerate().take(d) {
                *g += common * h.inv_sq[dim] * data.sq_diff(&data.x[i], &data.x[j], dim);
            }
        }
    }
    for (dim, g) in grad.iter_mut().enumerate().take(d) {
        let s = h.inv_sq[dim];
        *g = -0.5 * *g - (0.1 / s - 0.1 * s);
    }
    grad[d] = -0.5 * tr_scale - (1.0 - h.scale);
    grad[d + 1] = if deterministic {
        0.0
    } else {
        let e = theta[d + 1].exp();
        -0.5 * tr_noise * e - (0.1 / h.noise - 30.0) * e
    };
    let value = nll - log_prior;
    value.is_finite().then_some((value, grad))
}

/// Raw hyper-parameters stay within `[-LIMIT, LIMIT]` (lengthscales within e^±6 of the unit
/// cube, the kernel scale likewise), except the noise's, which may go down to `NOISE_LOW`:
/// its value is `MIN_NOISE + e^raw`, and a deterministic objective wants it at the minimum
/// (a floor of e^-12 = 6e-6 measurably blurred the model near the optimum).
const LIMIT: f64 = 12.0;
const NOISE_LOW: f64 = -40.0;

/// `theta` moved into the box.
fn clamp_raw(theta: &[f64]) -> Vec<f64> {
    let last = theta.len().saturating_sub(1);
    theta
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let low = if i == last { NOISE_LOW } else { -LIMIT };
            v.clamp(low, LIMIT)
        })
        .collect()
}

/// Fits the kernel's raw hyper-parameters, from `start`. Outside the box the objective is
/// evaluated at the nearest point inside plus a steep quadratic wall, so line searches that
/// overshoot come back instead of failing.
pub(super) fn fit_hyper(data: &Data, start: Vec<f64>, deterministic: bool) -> Vec<f64> {
    let theta = lbfgs(
        |t| {
            let inside = clamp_raw(t);
            let (value, mut grad) = objective(data, &inside, deterministic)?;
            let mut wall = 0.0;
            for ((g, v), c) in grad.iter_mut().zip(t).zip(&inside) {
                let excess = v - c;
                if excess != 0.0 {
                    wall += 1e3 * excess * excess;
                    *g = 2e3 * excess;
                }
            }
            Some((value + wall, grad))
        },
        clamp_raw(&start),
        50,
        // Optuna's gtol: a tighter fit costs more than it gains.
        1e-2,
    );
    clamp_raw(&theta)
}
