//! The Matérn 5/2 kernel with one lengthscale per dimension (ARD), a kernel scale and a
//! noise variance, its matrices over the trials, and a Cholesky factorization that adds
//! jitter until the matrix is positive definite.

use nalgebra::DMatrix;

use super::data::Data;

/// The smallest noise variance the model allows (on the standardized objective).
pub(super) const MIN_NOISE: f64 = 1e-6;
const SQRT5: f64 = 2.236_067_977_499_79;

/// The kernel's hyper-parameters on their natural scale.
#[derive(Debug, Clone)]
pub(super) struct Hyper {
    /// Inverse squared lengthscale of each dimension.
    pub(super) inv_sq: Vec<f64>,
    pub(super) scale: f64,
    pub(super) noise: f64,
}

impl Hyper {
    /// The raw (log-space) starting point, Optuna's: unit lengthscales, scale and noise.
    pub(super) fn initial(d: usize) -> Vec<f64> {
        let mut theta = vec![0.0; d + 2];
        theta[d + 1] = (1.0 - MIN_NOISE).ln();
        theta
    }

    pub(super) fn from_raw(theta: &[f64], deterministic: bool) -> Hyper {
        let d = theta.len() - 2;
        Hyper {
            inv_sq: theta[..d].iter().map(|t| t.exp()).collect(),
            scale: theta[d].exp(),
            noise: if deterministic {
                MIN_NOISE
            } else {
                MIN_NOISE + theta[d + 1].exp()
            },
        }
    }

    pub(super) fn r2(&self, data: &Data, a: &[f64], b: &[f64]) -> f64 {
        (0..a.len())
            .map(|d| self.inv_sq[d] * data.sq_diff(a, b, d))
            .sum()
    }
}

/// Matérn 5/2 as a function of the scaled squared distance.
pub(super) fn matern52(r2: f64) -> f64 {
    let r = r2.sqrt();
    (1.0 + SQRT5 * r + 5.0 / 3.0 * r2) * (-SQRT5 * r).exp()
}

/// `-(5/6) (1 + sqrt5 r) exp(-sqrt5 r)`: the derivative of Matérn 5/2 with respect to `r^2`.
pub(super) fn matern52_d_r2(r2: f64) -> f64 {
    let r = r2.sqrt();
    -5.0 / 6.0 * (1.0 + SQRT5 * r) * (-SQRT5 * r).exp()
}

/// The trials' scaled squared distances and their noise-free kernel matrix.
pub(super) fn kernel_matrices(data: &Data, h: &Hyper) -> (DMatrix<f64>, DMatrix<f64>) {
    let n = data.n();
    let mut r2 = DMatrix::<f64>::zeros(n, n);
    let mut k = DMatrix::<f64>::zeros(n, n);
    for i in 0..n {
        for j in 0..i {
            let d = h.r2(data, &data.x[i], &data.x[j]);
            let v = h.scale * matern52(d);
            r2[(i, j)] = d;
            r2[(j, i)] = d;
            k[(i, j)] = v;
            k[(j, i)] = v;
        }
        k[(i, i)] = h.scale;
    }
    (r2, k)
}

/// `k` with `noise` added to its diagonal.
pub(super) fn noisy(mut k: DMatrix<f64>, noise: f64) -> DMatrix<f64> {
    for i in 0..k.nrows() {
        k[(i, i)] += noise;
    }
    k
}

pub(super) fn cholesky(mut k: DMatrix<f64>) -> Option<nalgebra::Cholesky<f64, nalgebra::Dyn>> {
    let mut jitter = 0.0;
    for _ in 0..6 {
        if let Some(c) = k.clone().cholesky() {
            return Some(c);
        }
        let add = if jitter == 0.0 { 1e-9 } else { jitter * 9.0 };
        for i in 0..k.nrows() {
            k[(i, i)] += add;
        }
        jitter += add;
    }
    None
}
