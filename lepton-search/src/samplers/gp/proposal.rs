//! The next point: log-EI maximized from the best trial and the most promising of several
//! hundred random points; L-BFGS moves the continuous coordinates, while integer, stepped and
//! categorical ones only take values on their grids, the two in turn until neither moves.

use std::f64::consts::PI;

use rand::Rng;
use rand::rngs::StdRng;

use lepton_core::{Distribution, ParamValue};

use super::GpSampler;
use super::acquisition::Posterior;
use super::data::Data;
use super::lbfgs::lbfgs;
use crate::samplers::unit;

/// Rounds of a local search (continuous coordinates by L-BFGS, then discrete ones on their
/// grids) from one start, at most, and sweeps over the discrete coordinates in a round; most
/// searches settle in two or three.
const MAX_ROUNDS: usize = 6;

/// Whether `d` is continuous: a float without a step.
fn is_continuous(d: &Distribution) -> bool {
    matches!(d, Distribution::Float { step: None, .. })
}

/// `u` moved onto the grid of an integer or stepped distribution (the centre of its cell).
fn snap(d: &Distribution, u: f64) -> f64 {
    if is_continuous(d) {
        u
    } else {
        unit::to_unit(d, &unit::from_unit(d, u)).unwrap_or(u)
    }
}

/// The point maximizing log EI: the best of several hundred random points and of local
/// searches from the most promising of them and from the incumbent, every discrete
/// coordinate on its grid.
pub(super) fn maximize_log_ei(
    post: &Posterior,
    data: &Data,
    dims: &[(String, Distribution)],
    sampler: &GpSampler,
    rng: &mut StdRng,
) -> Vec<f64> {
    let d = dims.len();
    // Discrete coordinates are drawn on their grids, so every score below is the score of a
    // point that can be proposed (off the grid, EI rewards the variance between two cells).
    let random_point = |rng: &mut StdRng| -> Vec<f64> {
        dims.iter()
            .map(|(_, dist)| match dist {
                Distribution::Categorical { choices } => rng.random_range(0..choices.len()) as f64,
                _ => snap(dist, rng.random::<f64>()),
            })
            .collect()
    };
    // Scoring a candidate costs a triangular solve, O(n^2): past 100 trials fewer random points
    // are scored (never fewer than 256), so a 500-trial study stays under 0.1 s per trial.
    let n = data.n() as f64;
    let n_candidates = if n > 100.0 {
        ((sampler.n_candidates as f64 * (100.0 / n).powi(2)) as usize)
            .clamp(256.min(sampler.n_candidates), sampler.n_candidates)
    } else {
        sampler.n_candidates
    };
    let candidates: Vec<Vec<f64>> = (0..n_candidates).map(|_| random_point(rng)).collect();
    let scores = post.log_ei_many(&candidates);
    let mut order: Vec<usize> = (0..candidates.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]));

    // Local searches start from the incumbent, the best candidate, and candidates drawn with
    // probability proportional to their EI relative to the best (Optuna's roulette).
    let incumbent = data
        .y
        .iter()
        .enumerate()
        .min_by(|a, b| a.1.total_cmp(b.1))
        .map(|(i, _)| data.x[i].clone());
    let mut starts: Vec<Vec<f64>> = incumbent.into_iter().collect();
    let top = order[0];
    starts.push(candidates[top].clone());
    let mut weights: Vec<f64> = scores
        .iter()
        .map(|s| (s - scores[top]).exp())
        .map(|w| if w.is_finite() { w } else { 0.0 })
        .collect();
    weights[top] = 0.0;
    for _ in 2..sampler.n_local_starts {
        let total: f64 = weights.iter().sum();
        if total <= 0.0 {
            break;
        }
        let mut u = rng.random::<f64>() * total;
        let mut pick = top;
        for (i, w) in weights.iter().enumerate() {
            u -= w;
            if u <= 0.0 && *w > 0.0 {
                pick = i;
                break;
            }
        }
        if pick == top {
            break;
        }
        weights[pick] = 0.0;
        starts.push(candidates[pick].clone());
    }

    // Gradients move the continuous coordinates only; the discrete ones are searched on their
    // grids, the two in turn until neither moves.
    let continuous: Vec<usize> = (0..d).filter(|&j| is_continuous(&dims[j].1)).collect();
    let score = |x: &[f64]| post.log_ei_many(&[x.to_vec()])[0];
    let mut best = candidates[order[0]].clone();
    let mut best_score = scores[order[0]];
    for start in starts {
        let mut x = start;
        for _round in 0..MAX_ROUNDS {
            x = local_continuous(post, &x, &continuous);
            let settled = settle_discrete(post, &x, dims);
            if settled == x {
                break;
            }
            x = settled;
        }
        let s = score(&x);
        if s > best_score {
            best_score = s;
            best = x;
        }
    }
    best
}

/// L-BFGS over the continuous coordinates of `x`, the others held. Coordinates are mapped
/// through `x = (1 - cos(pi z)) / 2`, so the unconstrained search stays inside `[0, 1]`.
fn local_continuous(post: &Posterior, x: &[f64], numeric: &[usize]) -> Vec<f64> {
    if numeric.is_empty() {
        return x.to_vec();
    }
    let to_x = |z: &[f64]| {
        let mut full = x.to_vec();
        for (k, &j) in numeric.iter().enumerate() {
            full[j] = (1.0 - (PI * z[k]).cos()) / 2.0;
        }
        full
    };
    let z0: Vec<f64> = numeric
        .iter()
        .map(|&j| (1.0 - 2.0 * x[j].clamp(0.0, 1.0)).acos() / PI)
        .collect();
    let z = lbfgs(
        |z| {
            let full = to_x(z);
            let (v, g) = post.log_ei_grad(&full)?;
            let gz = numeric
                .iter()
                .enumerate()
                .map(|(k, &j)| -g[j] * PI / 2.0 * (PI * z[k]).sin())
                .collect();
            Some((-v, gz))
        },
        z0,
        100,
        1e-6,
    );
    to_x(&z)
}

/// The grid values a discrete coordinate at index `here` of `cells` may move to: every cell
/// when there are few, else cells at 1, 2, 4, ... steps on either side (a wide move is found
/// in a few sweeps, a fine one in the next).
fn grid_moves(here: usize, cells: usize) -> Vec<usize> {
    if cells <= 16 {
        return (0..cells).collect();
    }
    let mut moves = Vec::new();
    let mut offset = 1;
    while offset < cells {
        moves.extend(here.checked_sub(offset));
        moves.extend(Some(here + offset).filter(|&i| i < cells));
        offset *= 2;
    }
    moves
}

/// The number of grid values of a discrete distribution and the index of `u`'s value;
/// `None` for a continuous one.
fn grid_index(d: &Distribution, u: f64) -> Option<(usize, usize)> {
    let (cells, index) = match *d {
        Distribution::Categorical { ref choices } => (choices.len() as f64, u),
        Distribution::Int {
            low, high, step, ..
        } => {
            let v = unit::from_unit(d, u).as_i64()?;
            (((high - low) / step + 1) as f64, ((v - low) / step) as f64)
        }
        Distribution::Float {
            low,
            high,
            step: Some(s),
            ..
        } => {
            let v = unit::from_unit(d, u).as_f64()?;
            (
                ((high - low) / s + 1e-9).floor() + 1.0,
                ((v - low) / s).round(),
            )
        }
        Distribution::Float { step: None, .. } => return None,
    };
    let cells = cells as usize;
    Some((
        cells,
        (index.max(0.0) as usize).min(cells.saturating_sub(1)),
    ))
}

/// The coordinate of grid value `index` of a discrete distribution.
fn grid_coordinate(d: &Distribution, index: usize) -> Option<f64> {
    match *d {
        Distribution::Categorical { .. } => Some(index as f64),
        Distribution::Int { low, step, .. } => {
            unit::to_unit(d, &ParamValue::Int(low + index as i64 * step))
        }
        Distribution::Float {
            low, step: Some(s), ..
        } => unit::to_unit(d, &ParamValue::Float(low + index as f64 * s)),
        Distribution::Float { step: None, .. } => None,
    }
}

/// Moves each integer, stepped and categorical coordinate to its best grid value among
/// [`grid_moves`], one coordinate at a time, sweeping until none moves.
fn settle_discrete(post: &Posterior, x: &[f64], dims: &[(String, Distribution)]) -> Vec<f64> {
    let mut x = x.to_vec();
    for _sweep in 0..MAX_ROUNDS {
        let mut moved = false;
        for (j, (_, d)) in dims.iter().enumerate() {
            let Some((cells, here)) = grid_index(d, x[j]) else {
                continue;
            };
            // The point as it is first: a move must beat it.
            let mut points = vec![x.clone()];
            points.extend(
                grid_moves(here, cells)
                    .into_iter()
                    .filter(|&i| i != here)
                    .filter_map(|i| grid_coordinate(d, i))
                    .map(|c| {
                        let mut y = x.clone();
                        y[j] = c;
                        y
                    }),
            );
            let scores = post.log_ei_many(&points);
            let best = (1..points.len()).fold(0, |b, k| if scores[k] > scores[b] { k } else { b });
            if best > 0 {
                x[j] = points[best][j];
                moved = true;
            }
        }
        if !moved {
            break;
        }
    }
    x
}
