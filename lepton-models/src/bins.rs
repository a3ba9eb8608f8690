//! Binning for the tree families (boosted trees, forests), and what they share: the rows they
//! read, the nodes of their trees and the walk down them. Every feature's values become at most 255 bins plus bin 0 for
//! missing values, learnt from the training rows. Numbers are cut at quantiles (at the
//! midpoints between distinct values when there are few); categories (codes 0, 1, ...) get a
//! bin each, the most frequent first, and the rarest share bin 0 with missing and unseen ones.

use lepton_core::{Dataset, Target, Task};
use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// Values bins a feature may have besides the missing bin.
pub(crate) const MAX_VALUE_BINS: usize = 255;

/// Non-missing values sampled per feature to place the cuts.
const SAMPLE: usize = 200_000;

/// How one feature's values become bins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum FeatureBins {
    /// Bin `b` (1-based) holds the values in `(uppers[b - 2], uppers[b - 1]]`; the last bin
    /// everything above the last upper bound.
    Numeric { uppers: Vec<f32> },
    /// `bin_of[code]` is the bin of category `code` (0: rare, shares the missing bin).
    Categorical { bin_of: Vec<u8> },
}

impl FeatureBins {
    /// The bins of `values` (one feature's training values; NaN where missing).
    pub(crate) fn fit(values: &[f32], categorical: bool, feature: usize) -> Result<Self> {
        if categorical {
            let mut counts: Vec<(usize, u32)> = Vec::new();
            for &v in values.iter().filter(|v| !v.is_nan()) {
                let code = category_code(v).ok_or_else(|| {
                    ModelError::InvalidData(format!(
                        "feature {feature} is categorical but holds {v}, not a category code"
                    ))
                })?;
                if counts.len() <= code as usize {
                    counts.resize(code as usize + 1, (0, 0));
                }
                counts[code as usize] = (counts[code as usize].0 + 1, code);
            }
            let mut order: Vec<(usize, u32)> = counts.iter().copied().filter(|c| c.0 > 0).collect();
            order.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
            let mut bin_of = vec![0u8; counts.len()];
            for (i, &(_, code)) in order.iter().take(MAX_VALUE_BINS).enumerate() {
                bin_of[code as usize] = (i + 1) as u8;
            }
            return Ok(FeatureBins::Categorical { bin_of });
        }
        let step = (values.len() / SAMPLE).max(1);
        let mut present: Vec<f32> = values
            .iter()
            .step_by(step)
            .copied()
            .filter(|v| !v.is_nan())
            .collect();
        present.sort_by(f32::total_cmp);
        let mut distinct: Vec<(f32, usize)> = Vec::new();
        for v in present.iter().copied() {
            match distinct.last_mut() {
                Some((last, n)) if *last == v => *n += 1,
                _ => distinct.push((v, 1)),
            }
        }
        let midpoint = |a: f32, b: f32| {
            let m = ((f64::from(a) + f64::from(b)) / 2.0) as f32;
            if m.is_finite() { m } else { a }
        };
        let uppers = if distinct.len() <= MAX_VALUE_BINS {
            distinct
                .windows(2)
                .map(|w| midpoint(w[0].0, w[1].0))
                .collect()
        } else {
            // Cuts where the running count crosses each equal-count quantile; a value never
            // straddles two bins.
            let per_bin = present.len() as f64 / MAX_VALUE_BINS as f64;
            let mut uppers = Vec::with_capacity(MAX_VALUE_BINS - 1);
            let (mut seen, mut next) = (0.0, per_bin);
            for w in distinct.windows(2) {
                seen += w[0].1 as f64;
                if seen >= next && uppers.len() < MAX_VALUE_BINS - 1 {
                    uppers.push(midpoint(w[0].0, w[1].0));
                    while next <= seen {
                        next += per_bin;
                    }
                }
            }
            uppers
        };
        Ok(FeatureBins::Numeric { uppers })
    }

    /// Bins of this feature, the missing bin included.
    pub(crate) fn count(&self) -> usize {
        match self {
            FeatureBins::Numeric { uppers } => uppers.len() + 2,
            FeatureBins::Categorical { bin_of } => {
                1 + bin_of.iter().copied().max().map_or(0, usize::from)
            }
        }
    }

    /// Whether the bins are unordered categories.
    pub(crate) fn is_categorical(&self) -> bool {
        matches!(self, FeatureBins::Categorical { .. })
    }

    /// The bin of value `v` (0 when missing, or an unseen or rare category).
    pub(crate) fn bin(&self, v: f32) -> u8 {
        if v.is_nan() {
            return 0;
        }
        match self {
            FeatureBins::Numeric { uppers } => (1 + uppers.partition_point(|&u| u < v)) as u8,
            FeatureBins::Categorical { bin_of } => category_code(v)
                .and_then(|c| bin_of.get(c as usize).copied())
                .unwrap_or(0),
        }
    }
}

/// `v` as a category code: a non-negative whole number (below 2^24, exact in an `f32`).
fn category_code(v: f32) -> Option<u32> {
    (v >= 0.0 && v.fract() == 0.0 && v < 16_777_216.0).then_some(v as u32)
}

/// Every feature's bins and the binned training rows, one column per feature.
#[derive(Debug)]
pub(crate) struct Binned {
    pub(crate) columns: Vec<Vec<u8>>,
    pub(crate) bins: Vec<FeatureBins>,
}

impl Binned {
    /// Fits the bins on row-major `x` (`width` values a row) and bins it.
    pub(crate) fn fit(x: &[f32], width: usize, categorical: &[usize]) -> Result<Self> {
        let rows = x.len() / width.max(1);
        let mut columns = Vec::with_capacity(width);
        let mut bins = Vec::with_capacity(width);
        let mut values = Vec::with_capacity(rows);
        for f in 0..width {
            values.clear();
            values.extend((0..rows).map(|r| x[r * width + f]));
            let fitted = FeatureBins::fit(&values, categorical.contains(&f), f)?;
            columns.push(values.iter().map(|&v| fitted.bin(v)).collect());
            bins.push(fitted);
        }
        Ok(Binned { columns, bins })
    }

    /// Bins row-major `x` with already fitted bins, row-major.
    pub(crate) fn rows(bins: &[FeatureBins], x: &[f32]) -> Vec<u8> {
        let width = bins.len();
        x.iter()
            .enumerate()
            .map(|(i, &v)| bins[i % width].bin(v))
            .collect()
    }
}

/// Where a split sends a bin.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Rule {
    /// Value bins up to `bin` go left; missing values (bin 0) go left when `missing_left`.
    UpTo { bin: u8, missing_left: bool },
    /// The bins whose bit is set go left (bit `b % 64` of word `b / 64`).
    In { left: [u64; 4] },
}

impl Rule {
    pub(crate) fn goes_left(&self, bin: u8) -> bool {
        match self {
            Rule::UpTo {
                bin: t,
                missing_left,
            } => {
                if bin == 0 {
                    *missing_left
                } else {
                    bin <= *t
                }
            }
            Rule::In { left } => left[usize::from(bin) / 64] >> (bin % 64) & 1 == 1,
        }
    }
}

/// Row-major features and the targets as numbers (class indices or values) of `data`, checked
/// against its task: what both tree families train on.
pub(crate) fn gather(data: &dyn Dataset, width: usize) -> Result<(Vec<f32>, Vec<f64>)> {
    let mut x = Vec::with_capacity(data.len() * width);
    let mut y = Vec::with_capacity(data.len());
    let task = &data.schema().task;
    for i in 0..data.len() {
        let (Some(row), Some(t)) = (data.features(i), data.target(i)) else {
            return Err(ModelError::InvalidData(format!("row {i} is missing")));
        };
        if row.len() != width {
            return Err(ModelError::InvalidData(format!(
                "row {i} has {} values; the data has {width} features",
                row.len()
            )));
        }
        x.extend_from_slice(row);
        y.push(match (task, t) {
            (Task::Classification { classes }, Target::Class(c)) if c < classes.len() => c as f64,
            (Task::Regression, Target::Value(v)) if v.is_finite() => v,
            (_, other) => {
                return Err(ModelError::InvalidData(format!(
                    "row {i}: target {other:?} does not fit the task {task:?}"
                )));
            }
        });
    }
    Ok((x, y))
}

/// A node of a tree on the bins: a leaf holding an `L`, or a split whose children come
/// after it (node 0 is the root).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum Node<L> {
    Leaf(L),
    Split {
        feature: u32,
        rule: Rule,
        left: u32,
        right: u32,
    },
}

/// The leaf of `nodes` a row reaches, its bin of feature `f` being `bin(f)`.
pub(crate) fn leaf_of<L>(nodes: &[Node<L>], bin: impl Fn(usize) -> u8) -> &L {
    let mut i = 0;
    loop {
        match &nodes[i] {
            Node::Leaf(leaf) => return leaf,
            Node::Split {
                feature,
                rule,
                left,
                right,
            } => {
                i = if rule.goes_left(bin(*feature as usize)) {
                    *left as usize
                } else {
                    *right as usize
                };
            }
        }
    }
}

/// Whether every split of `nodes` reads one of `width` features and its children come after
/// it (as growing places them, so that a walk ends), and every leaf is `leaf_ok`: a loaded
/// tree is checked so.
pub(crate) fn nodes_fit<L>(nodes: &[Node<L>], width: usize, leaf_ok: impl Fn(&L) -> bool) -> bool {
    let n = nodes.len() as u32;
    nodes.iter().enumerate().all(|(i, node)| match node {
        Node::Leaf(leaf) => leaf_ok(leaf),
        Node::Split {
            feature,
            left,
            right,
            ..
        } => {
            let after = |c: u32| (c as usize) > i && c < n;
            (*feature as usize) < width && after(*left) && after(*right)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_fall_in_the_bin_of_their_cut() {
        let b = FeatureBins::fit(&[1.0, 2.0, f32::NAN, 3.0, 2.0], false, 0).unwrap();
        assert_eq!(
            b,
            FeatureBins::Numeric {
                uppers: vec![1.5, 2.5]
            }
        );
        assert_eq!(b.count(), 4);
        let bins: Vec<u8> = [
            f32::NAN,
            0.0,
            1.0,
            2.0,
            2.6,
            f32::INFINITY,
            f32::NEG_INFINITY,
        ]
        .iter()
        .map(|&v| b.bin(v))
        .collect();
        assert_eq!(bins, [0, 1, 1, 2, 3, 3, 1]);
    }

    #[test]
    fn many_distinct_numbers_get_at_most_255_bins_of_similar_size() {
        let values: Vec<f32> = (0..10_000).map(|i| i as f32).collect();
        let b = FeatureBins::fit(&values, false, 0).unwrap();
        assert_eq!(b.count(), MAX_VALUE_BINS + 1);
        let mut sizes = vec![0usize; b.count()];
        for &v in &values {
            sizes[b.bin(v) as usize] += 1;
        }
        assert_eq!(sizes[0], 0);
        assert!(
            sizes[1..].iter().all(|&n| (30..=50).contains(&n)),
            "{sizes:?}"
        );
    }

    #[test]
    fn categories_are_binned_by_frequency_and_unseen_ones_share_the_missing_bin() {
        let b = FeatureBins::fit(&[2.0, 2.0, 0.0, f32::NAN, 2.0, 0.0, 5.0], true, 0).unwrap();
        assert_eq!(b.bin(2.0), 1);
        assert_eq!(b.bin(0.0), 2);
        assert_eq!(b.bin(5.0), 3);
        assert_eq!(b.bin(3.0), 0);
        assert_eq!(b.bin(99.0), 0);
        assert_eq!(b.bin(f32::NAN), 0);
        assert!(FeatureBins::fit(&[1.5], true, 4).is_err());
        assert!(FeatureBins::fit(&[-1.0], true, 4).is_err());
    }
}
