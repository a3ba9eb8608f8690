//! Parzen estimators: the weighted kernel mixtures TPE fits to its good and bad trials.
//!
//! Every parameter lives on a transformed axis: the logarithm for log scales, the value for
//! linear ones, the choice index for categorical ones. Numeric kernels are normal
//! distributions truncated to the range (discretized onto the step grid where there is one);
//! categorical kernels put most of their mass on the observed choice. A prior kernel (the
//! middle of the range, as wide as the range; uniform over choices) keeps every region
//! reachable. The rules for bandwidths and weights follow Optuna's `_ParzenEstimator`, so that
//! the two samplers behave alike on the same history.

use rand::Rng;
use rand::rngs::StdRng;
use rand_distr::StandardNormal;

use lepton_core::{Distribution, ParamValue, Scale};

use super::gauss;

/// One parameter's axis as the estimator sees it. Positions on the axis are the values
/// themselves for numeric parameters and choice indices for categorical ones; kernels of log
/// scaled parameters live on the logarithm of the value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Axis {
    /// A numeric range, with its grid step when discrete.
    Numeric {
        /// Lower bound.
        low: f64,
        /// Upper bound.
        high: f64,
        /// Grid step of a discrete parameter.
        step: Option<f64>,
        /// Whether kernels live on the logarithm.
        log: bool,
    },
    /// `n` unordered choices.
    Categorical {
        /// The number of choices.
        n: usize,
    },
}

impl Axis {
    /// The axis of a distribution.
    pub(crate) fn of(d: &Distribution) -> Axis {
        match *d {
            Distribution::Float {
                low,
                high,
                scale,
                step,
            } => Axis::Numeric {
                low,
                high,
                step,
                log: scale == Scale::Log,
            },
            Distribution::Int {
                low,
                high,
                scale,
                step,
            } => Axis::Numeric {
                low: low as f64,
                high: high as f64,
                step: Some(step as f64),
                log: scale == Scale::Log,
            },
            Distribution::Categorical { ref choices } => Axis::Categorical { n: choices.len() },
        }
    }

    /// A value's position on the axis; `None` when it does not belong to `d`.
    pub(crate) fn encode(d: &Distribution, value: &ParamValue) -> Option<f64> {
        match d {
            Distribution::Categorical { .. } => d.to_internal(value),
            _ => value.as_f64(),
        }
    }

    /// The value at position `x` of the axis, snapped onto `d`.
    pub(crate) fn decode(d: &Distribution, x: f64) -> ParamValue {
        d.from_internal(x)
    }
}

/// How estimators are built (Optuna's `_ParzenEstimatorParameters`).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ParzenConfig {
    /// The prior kernel's weight relative to one observation.
    pub prior_weight: f64,
}

/// Optuna's `default_weights`: equal weights for the 25 newest observations, a linear ramp
/// down to `1/n` for older ones. `order` lists observations oldest first.
pub(crate) fn recency_weights(n: usize) -> Vec<f64> {
    if n < 25 {
        return vec![1.0; n];
    }
    let ramp = n - 25;
    let mut w = Vec::with_capacity(n);
    for i in 0..ramp {
        // numpy.linspace(1/n, 1, ramp)
        let t = if ramp == 1 {
            0.0
        } else {
            i as f64 / (ramp - 1) as f64
        };
        w.push(1.0 / n as f64 + t * (1.0 - 1.0 / n as f64));
    }
    w.resize(n, 1.0);
    w
}

#[derive(Debug, Clone)]
enum Kernels {
    Numeric {
        /// Centres and widths on the kernel axis (the logarithm for log scales).
        mu: Vec<f64>,
        sigma: Vec<f64>,
        /// `1 / sigma`, for the density's inner loop.
        inv_sigma: Vec<f64>,
        /// What each kernel's log density subtracts: `ln(sigma sqrt(2 pi)) + ln_z` for
        /// continuous kernels, `ln_z` (the log of the mass inside the widened bounds) for
        /// discrete ones.
        norm: Vec<f64>,
        /// The widened bounds on the kernel axis.
        lo: f64,
        hi: f64,
        low: f64,
        high: f64,
        step: Option<f64>,
        log: bool,
    },
    Categorical {
        /// `ln` of each kernel's choice probabilities, kernel-major.
        ln_p: Vec<f64>,
        n: usize,
    },
}

/// A mixture of product kernels: kernel `k` of every dimension share the weight `w[k]`.
#[derive(Debug, Clone)]
pub(crate) struct Parzen {
    ln_w: Vec<f64>,
    cumulative: Vec<f64>,
    dims: Vec<Kernels>,
}

impl Parzen {
    /// Fits an estimator to `rows` (one observation per row, one column per axis) weighted by
    /// `weights`, over `axes`.
    /// Where `gaps[j]` is given for a numeric axis (each row's neighbour gap, from
    /// [`sorted_gaps`] over a presorted order), that axis needs no sort; pass `&[]` otherwise.
    pub(crate) fn fit(
        axes: &[Axis],
        rows: &[&[f64]],
        weights: &[f64],
        config: ParzenConfig,
        gaps: &[Option<Vec<f64>>],
    ) -> Parzen {
        let n = rows.len();
        let mut w: Vec<f64> = if n == 0 {
            vec![1.0]
        } else {
            let mut w = weights.to_vec();
            w.push(config.prior_weight);
            w
        };
        let total: f64 = w.iter().sum();
        for x in &mut w {
            *x /= total;
        }
        let mut acc = 0.0;
        let cumulative = w
            .iter()
            .map(|x| {
                acc += x;
                acc
            })
            .collect();
        let dims = axes
            .iter()
            .enumerate()
            .map(|(j, axis)| {
                let column: Vec<f64> = rows.iter().map(|r| r[j]).collect();
                match *axis {
                    Axis::Numeric {
                        low,
                        high,
                        step,
                        log,
                    } => {
                        let known = gaps.get(j).and_then(Option::as_ref);
                        numeric_kernels(&column, low, high, step, log, known)
                    }
                    Axis::Categorical { n: choices } => {
                        categorical_kernels(&column, choices, config.prior_weight)
                    }
                }
            })
            .collect();
        Parzen {
            ln_w: w.iter().map(|x| x.ln()).collect(),
            cumulative,
            dims,
        }
    }

    /// Draws `count` points (row-major, one column per axis).
    pub(crate) fn sample(&self, rng: &mut StdRng, count: usize) -> Vec<Vec<f64>> {
        (0..count)
            .map(|_| {
                let u: f64 = rng.random();
                let last = self.cumulative.len() - 1;
                let k = self.cumulative.partition_point(|c| *c < u).min(last);
                self.dims
                    .iter()
                    .map(|kernels| match kernels {
                        Kernels::Numeric {
                            mu,
                            sigma,
                            lo,
                            hi,
                            low,
                            high,
                            step,
                            log,
                            ..
                        } => {
                            let x = truncated_normal(rng, mu[k], sigma[k], *lo, *hi);
                            let x = if *log { x.exp() } else { x };
                            match step {
                                Some(s) => (low + ((x - low) / s).round() * s).clamp(*low, *high),
                                None => x,
                            }
                        }
                        Kernels::Categorical { ln_p, n } => {
                            let row = &ln_p[k * n..(k + 1) * n];
                            let mut u: f64 = rng.random();
                            let mut pick = n - 1;
                            for (i, lp) in row.iter().enumerate() {
                                u -= lp.exp();
                                if u < 0.0 {
                                    pick = i;
                                    break;
                                }
                            }
                            pick as f64
                        }
                    })
                    .collect()
            })
            .collect()
    }

    /// `ln` of the mixture density at each point.
    pub(crate) fn ln_pdf(&self, points: &[Vec<f64>]) -> Vec<f64> {
        // One buffer of per-kernel log densities, reused point after point (a long history
        // has thousands of kernels; a buffer for all points at once would be megabytes).
        let mut acc = self.ln_w.clone();
        points
            .iter()
            .map(|point| {
                acc.copy_from_slice(&self.ln_w);
                for (dim, &x) in self.dims.iter().zip(point) {
                    add_ln_density(dim, x, &mut acc);
                }
                log_sum_exp(&acc)
            })
            .collect()
    }
}

/// Adds each kernel's log density of one dimension at `x` to `out`.
fn add_ln_density(dim: &Kernels, x: f64, out: &mut [f64]) {
    match dim {
        Kernels::Numeric {
            mu,
            inv_sigma,
            norm,
            step: None,
            log,
            ..
        } => {
            let x = if *log { x.ln() } else { x };
            for ((o, (m, inv)), c) in out.iter_mut().zip(mu.iter().zip(inv_sigma)).zip(norm) {
                let z = (x - m) * inv;
                *o -= 0.5 * z * z + c;
            }
        }
        Kernels::Numeric {
            mu,
            inv_sigma,
            norm,
            step: Some(s),
            log,
            ..
        } => {
            let (left, right) = if *log {
                ((x - s / 2.0).ln(), (x + s / 2.0).ln())
            } else {
                (x - s / 2.0, x + s / 2.0)
            };
            for ((o, (m, inv)), c) in out.iter_mut().zip(mu.iter().zip(inv_sigma)).zip(norm) {
                *o += gauss::ln_mass((left - m) * inv, (right - m) * inv) - c;
            }
        }
        Kernels::Categorical { ln_p, n } => {
            let i = (x as usize).min(n - 1);
            for (k, o) in out.iter_mut().enumerate() {
                *o += ln_p[k * n + i];
            }
        }
    }
}

fn log_sum_exp(xs: &[f64]) -> f64 {
    let max = xs.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    if !max.is_finite() {
        return max;
    }
    // Terms more than 40 nats below the largest add less than 1e-17 relative: skipping them
    // avoids exp's slow underflow path, which most far-away kernels would take.
    let sum: f64 = xs
        .iter()
        .filter(|x| **x - max > -40.0)
        .map(|x| (x - max).exp())
        .sum();
    max + sum.ln()
}

/// Optuna 5's rules: kernels on the widened (and, for log scales, logged) range, each as wide
/// as its larger gap to a neighbouring observation or bound (the outermost ones using their
/// inner gap), clipped between the range over the number of kernels ("magic clip") and the
/// range; the prior kernel sits in the middle, as wide as the range.
fn numeric_kernels(
    observed: &[f64],
    low: f64,
    high: f64,
    step: Option<f64>,
    log: bool,
    gaps: Option<&Vec<f64>>,
) -> Kernels {
    let (lo, hi) = kernel_bounds(low, high, step, log);
    let axis = |x: f64| if log { x.ln() } else { x };
    let width = (hi - lo).max(f64::MIN_POSITIVE);
    let mut mu: Vec<f64> = observed.iter().map(|x| axis(*x)).collect();
    let n = mu.len();
    let mut sigma = match gaps {
        Some(g) if g.len() == n => g.clone(),
        _ => neighbour_bandwidths(&mu, lo, hi),
    };
    let min_sigma = width / (100f64).min(1.0 + (n + 1) as f64);
    for x in &mut sigma {
        *x = x.clamp(min_sigma, width);
    }
    mu.push(0.5 * (lo + hi));
    sigma.push(width);
    // Most kernels of a long history sit at the clip; their logarithm is computed once.
    let ln_min_sigma = min_sigma.ln();
    let norm = mu
        .iter()
        .zip(&sigma)
        .map(|(m, sd)| {
            let (a, b) = ((lo - m) / sd, (hi - m) / sd);
            // Beyond six standard deviations on both sides the lost mass is below 2e-9, far
            // below anything that moves the choice between candidates.
            let ln_z = if a < -6.0 && b > 6.0 {
                0.0
            } else {
                gauss::ln_mass(a, b)
            };
            match step {
                None => {
                    let ln_sd = if *sd == min_sigma {
                        ln_min_sigma
                    } else {
                        sd.ln()
                    };
                    ln_sd + gauss::LN_SQRT_2PI + ln_z
                }
                Some(_) => ln_z,
            }
        })
        .collect();
    let inv_sigma = sigma.iter().map(|s| 1.0 / s).collect();
    Kernels::Numeric {
        mu,
        sigma,
        inv_sigma,
        norm,
        lo,
        hi,
        low,
        high,
        step,
        log,
    }
}

/// The widened range on the kernel axis (the logarithm for log scales).
fn kernel_bounds(low: f64, high: f64, step: Option<f64>, log: bool) -> (f64, f64) {
    let half = step.map_or(0.0, |s| s / 2.0);
    if log {
        ((low - half).ln(), (high + half).ln())
    } else {
        (low - half, high + half)
    }
}

/// Each observation's larger gap to a neighbour (the bounds included), the outermost ones
/// using their inner gap.
fn neighbour_bandwidths(mu: &[f64], lo: f64, hi: f64) -> Vec<f64> {
    // Sort (key, index) pairs by value: comparing inline keys is several times faster than
    // an index sort that reads `mu` at random.
    let mut order: Vec<(u64, usize)> = mu
        .iter()
        .enumerate()
        .map(|(i, x)| (ordered_bits(*x), i))
        .collect();
    order.sort_unstable();
    let gaps = gaps_of_sorted(order.iter().map(|&(_, i)| mu[i]), mu.len(), lo, hi);
    let mut sigma = vec![0.0; mu.len()];
    for (&(_, i), g) in order.iter().zip(gaps) {
        sigma[i] = g;
    }
    sigma
}

/// The neighbour gaps of `count` values given in ascending order, on the kernel axis.
fn gaps_of_sorted(values: impl Iterator<Item = f64>, count: usize, lo: f64, hi: f64) -> Vec<f64> {
    let m = count;
    let mut ends = Vec::with_capacity(m + 2);
    ends.push(lo);
    ends.extend(values);
    ends.push(hi);
    let mut gaps: Vec<f64> = (0..m)
        .map(|i| (ends[i + 1] - ends[i]).max(ends[i + 2] - ends[i + 1]))
        .collect();
    if ends.len() >= 4 {
        gaps[0] = ends[2] - ends[1];
        gaps[m - 1] = ends[m] - ends[m - 1];
    }
    gaps
}

/// Neighbour gaps for observations whose values on `axis` arrive in ascending order (raw
/// values: the log is taken here), in that order. `None` for a categorical axis.
pub(crate) fn sorted_gaps(
    axis: &Axis,
    ascending: impl Iterator<Item = f64>,
    count: usize,
) -> Option<Vec<f64>> {
    let Axis::Numeric {
        low,
        high,
        step,
        log,
    } = *axis
    else {
        return None;
    };
    let (lo, hi) = kernel_bounds(low, high, step, log);
    let values = ascending.map(|x| if log { x.ln() } else { x });
    Some(gaps_of_sorted(values, count, lo, hi))
}

/// A `u64` whose unsigned order is the `f64`'s total order.
pub(crate) fn ordered_bits(x: f64) -> u64 {
    let b = x.to_bits();
    if b >> 63 == 1 { !b } else { b | (1 << 63) }
}

/// The `f64` an [`ordered_bits`] key stands for.
pub(crate) fn from_ordered_bits(k: u64) -> f64 {
    f64::from_bits(if k >> 63 == 1 { k & !(1 << 63) } else { !k })
}

fn categorical_kernels(observed: &[f64], n: usize, prior_weight: f64) -> Kernels {
    let kernels = observed.len() + 1;
    let mut p = if observed.is_empty() {
        vec![1.0; n]
    } else {
        vec![prior_weight / kernels as f64; kernels * n]
    };
    for (k, x) in observed.iter().enumerate() {
        p[k * n + (*x as usize).min(n - 1)] += 1.0;
    }
    for row in p.chunks_mut(n) {
        let total: f64 = row.iter().sum();
        for x in row {
            *x = (*x / total).ln();
        }
    }
    Kernels::Categorical { ln_p: p, n }
}

/// A normal draw restricted to `[low, high]`, by rejection: kernels are centred inside the
/// range and no wider than it, so at least a third of the draws land inside.
fn truncated_normal(rng: &mut StdRng, mu: f64, sigma: f64, low: f64, high: f64) -> f64 {
    for _ in 0..100 {
        let z: f64 = rng.sample(StandardNormal);
        let x = mu + sigma * z;
        if (low..=high).contains(&x) {
            return x;
        }
    }
    mu.clamp(low, high)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;

    const CONFIG: ParzenConfig = ParzenConfig { prior_weight: 1.0 };

    #[test]
    fn ordered_bits_sort_like_floats() {
        let mut xs = vec![3.5, -0.0, 0.0, -7.25, 1e-300, -1e300, 42.0];
        let mut by_bits = xs.clone();
        by_bits.sort_by_key(|x| ordered_bits(*x));
        xs.sort_by(f64::total_cmp);
        assert_eq!(xs, by_bits);
        for x in xs {
            assert_eq!(from_ordered_bits(ordered_bits(x)).to_bits(), x.to_bits());
        }
    }

    #[test]
    fn recency_weights_match_optuna() {
        assert_eq!(recency_weights(3), vec![1.0; 3]);
        let w = recency_weights(30);
        assert_eq!(w.len(), 30);
        assert!((w[0] - 1.0 / 30.0).abs() < 1e-12);
        assert!((w[4] - 1.0).abs() < 1e-12);
        assert!(w[25..].iter().all(|x| *x == 1.0));
    }

    #[test]
    fn density_integrates_to_one_and_samples_stay_inside() {
        let axes = [Axis::Numeric {
            low: -2.0,
            high: 3.0,
            step: None,
            log: false,
        }];
        let obs = [[0.5], [0.7], [2.9]];
        let rows: Vec<&[f64]> = obs.iter().map(|r| &r[..]).collect();
        let p = Parzen::fit(&axes, &rows, &[1.0, 1.0, 1.0], CONFIG, &[]);
        let grid: Vec<Vec<f64>> = (0..5000)
            .map(|i| vec![-2.0 + (i as f64 + 0.5) * 0.001])
            .collect();
        let mass: f64 = p.ln_pdf(&grid).iter().map(|l| l.exp() * 0.001).sum();
        assert!((mass - 1.0).abs() < 1e-3, "{mass}");
        let mut rng = StdRng::seed_from_u64(1);
        for x in p.sample(&mut rng, 2000) {
            assert!((-2.0..=3.0).contains(&x[0]));
        }
    }

    #[test]
    fn discrete_and_categorical_masses_sum_to_one() {
        let axes = [
            Axis::Numeric {
                low: 0.0,
                high: 10.0,
                step: Some(2.0),
                log: false,
            },
            Axis::Categorical { n: 3 },
        ];
        let obs = [[4.0, 1.0], [6.0, 2.0]];
        let rows: Vec<&[f64]> = obs.iter().map(|r| &r[..]).collect();
        let p = Parzen::fit(&axes, &rows, &[1.0, 1.0], CONFIG, &[]);
        let mut points = Vec::new();
        for v in 0..=5 {
            for c in 0..3 {
                points.push(vec![2.0 * v as f64, c as f64]);
            }
        }
        let total: f64 = p.ln_pdf(&points).iter().map(|l| l.exp()).sum();
        assert!((total - 1.0).abs() < 1e-9, "{total}");
        // Mass concentrates on what was observed.
        let ln = p.ln_pdf(&[vec![4.0, 1.0], vec![10.0, 0.0]]);
        assert!(ln[0] > ln[1] + 1.0);
        let mut rng = StdRng::seed_from_u64(2);
        for x in p.sample(&mut rng, 500) {
            assert!(x[0] % 2.0 == 0.0 && (0.0..=10.0).contains(&x[0]));
            assert!([0.0, 1.0, 2.0].contains(&x[1]));
        }
    }

    #[test]
    fn log_integer_masses_sum_to_one() {
        let axes = [Axis::of(&Distribution::int(1, 64, Scale::Log))];
        let obs = [[4.0], [5.0], [40.0]];
        let rows: Vec<&[f64]> = obs.iter().map(|r| &r[..]).collect();
        let p = Parzen::fit(&axes, &rows, &[1.0; 3], CONFIG, &[]);
        let points: Vec<Vec<f64>> = (1..=64).map(|v| vec![v as f64]).collect();
        let total: f64 = p.ln_pdf(&points).iter().map(|l| l.exp()).sum();
        assert!((total - 1.0).abs() < 1e-9, "{total}");
        let mut rng = StdRng::seed_from_u64(3);
        for x in p.sample(&mut rng, 500) {
            assert!(x[0].fract() == 0.0 && (1.0..=64.0).contains(&x[0]));
        }
    }

    #[test]
    fn axes_round_trip_values() {
        let ds = [
            Distribution::float(1e-4, 1.0, Scale::Log),
            Distribution::int(1, 512, Scale::Log),
            Distribution::int(-3, 9, Scale::Linear),
            Distribution::categorical(["a", "b"]),
        ];
        let values = [
            ParamValue::Float(0.01),
            ParamValue::Int(64),
            ParamValue::Int(4),
            ParamValue::from("b"),
        ];
        for (d, v) in ds.iter().zip(&values) {
            let x = Axis::encode(d, v).unwrap();
            match (Axis::decode(d, x), v) {
                (ParamValue::Float(a), ParamValue::Float(b)) => assert!((a - b).abs() < 1e-12),
                (back, v) => assert_eq!(&back, v),
            }
        }
    }
}
