//! The normal-distribution functions TPE's kernels and GP's acquisition share.

use std::f64::consts::{FRAC_1_SQRT_2, PI};

/// `ln(sqrt(2 pi))`.
pub(crate) const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;

/// The upper tail `Q(z) = P(Z > z)` of the standard normal, accurate far into the tail.
pub(crate) fn upper_tail(z: f64) -> f64 {
    0.5 * libm::erfc(z * FRAC_1_SQRT_2)
}

/// The standard normal CDF.
pub(crate) fn cdf(z: f64) -> f64 {
    upper_tail(-z)
}

/// The standard normal density.
pub(crate) fn pdf(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (2.0 * PI).sqrt()
}

/// `ln` of the standard normal density.
pub(crate) fn ln_pdf(z: f64) -> f64 {
    -0.5 * z * z - LN_SQRT_2PI
}

/// `ln(P(a < Z < b))` for `a <= b`, computed on the side of the tails so that narrow
/// intervals far from the mean keep their precision. Never `-inf` (floored at the smallest
/// positive float) so that mixtures stay finite.
pub(crate) fn ln_mass(a: f64, b: f64) -> f64 {
    if a >= 0.0 {
        (upper_tail(a) - upper_tail(b)).max(f64::MIN_POSITIVE).ln()
    } else if b <= 0.0 {
        (upper_tail(-b) - upper_tail(-a))
            .max(f64::MIN_POSITIVE)
            .ln()
    } else {
        // Both tails cut off; beyond 8.5 a tail (below 1e-17) is lost in 1.0 anyway, so its
        // erfc is not computed (the common case: a kernel near one bound only).
        let tail = |z: f64| if z > 8.5 { 0.0 } else { upper_tail(z) };
        (-(tail(-a) + tail(b))).ln_1p()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_values() {
        assert!((cdf(0.0) - 0.5).abs() < 1e-15);
        assert!((cdf(1.96) - 0.975_002_104_851_780).abs() < 1e-12);
        assert!((pdf(0.0) - 0.398_942_280_401_432_7).abs() < 1e-15);
        assert!((ln_pdf(1.0) - pdf(1.0).ln()).abs() < 1e-12);
        assert!((ln_mass(-1.0, 1.0) - 0.682_689_492_137_086_f64.ln()).abs() < 1e-12);
        // Far in the tail the mass is tiny but its logarithm is still right.
        let far = ln_mass(10.0, 10.001);
        let expected = (0.001 * pdf(10.0005)).ln();
        assert!((far - expected).abs() < 1e-3, "{far} vs {expected}");
        assert!(ln_mass(50.0, 51.0).is_finite());
        // One side cut: the skipped far tail changes nothing.
        let one_sided = ln_mass(-1.5, 40.0);
        assert!((one_sided - (1.0 - upper_tail(1.5)).ln()).abs() < 1e-15);
        assert!(ln_mass(-40.0, 40.0).abs() < 1e-300);
    }
}
