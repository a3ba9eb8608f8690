//! Binning for the tree families (boosted trees, forests), and what they share: the rows they
//! read, the nodes of their trees and the walk down them. Every feature's values become bins,
//! learnt from the training rows, with bin 0 for missing values. Numbers are cut at quantiles
//! into at most 255 bins (at the midpoints between distinct values when there are few);
//! categories (codes 0, 1, ...) get a bin each, the most frequent first: all of them up to
//! 255, then more until they cover 99 % of the present values (as LightGBM keeps them), at
//! most [`MAX_CATEGORY_BINS`]; the rarest share bin 0 with missing and unseen ones.

use lepton_core::{Dataset, Target, Task};
use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};

/// A feature's bin: 0 for missing values, then the value bins.
pub(crate) type Bin = u16;

/// Bins a numeric feature may have besides the missing bin, and bins a categorical one keeps
/// whatever share of the values they cover.
pub(crate) const MAX_VALUE_BINS: usize = 255;

/// Bins a categorical feature may have besides the missing bin: the most its categories get
/// when the first [`MAX_VALUE_BINS`] cover less than [`CATEGORY_COVERAGE`] of its values.
pub(crate) const MAX_CATEGORY_BINS: usize = 4095;

/// The share of a categorical feature's present values its kept categories cover, beyond the
/// first [`MAX_VALUE_BINS`] categories.
const CATEGORY_COVERAGE: f64 = 0.99;

/// Non-missing values sampled per feature to place the cuts.
const SAMPLE: usize = 200_000;

/// How one feature's values become bins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) enum FeatureBins {
    /// Bin `b` (1-based) holds the values in `(uppers[b - 2], uppers[b - 1]]`; the last bin
    /// everything above the last upper bound.
    Numeric { uppers: Vec<f32> },
    /// `bin_of[code]` is the bin of category `code` (0: rare, shares the missing bin).
    Categorical { bin_of: Vec<Bin> },
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
            let present: usize = order.iter().map(|c| c.0).sum();
            let mut bin_of = vec![0; counts.len()];
            let mut covered = 0;
            for (i, &(n, code)) in order.iter().enumerate() {
                let enough = covered as f64 >= CATEGORY_COVERAGE * present as f64;
                if i == MAX_CATEGORY_BINS || (i >= MAX_VALUE_BINS && enough) {
                    break;
                }
                bin_of[code as usize] = (i + 1) as Bin;
                covered += n;
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
    pub(crate) fn bin(&self, v: f32) -> Bin {
        if v.is_nan() {
            return 0;
        }
        match self {
            FeatureBins::Numeric { uppers } => (1 + uppers.partition_point(|&u| u < v)) as Bin,
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
    pub(crate) columns: Vec<Vec<Bin>>,
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
    pub(crate) fn rows(bins: &[FeatureBins], x: &[f32]) -> Vec<Bin> {
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
    UpTo { bin: Bin, missing_left: bool },
    /// The bins whose bit is set go left (bit `b % 64` of word `b / 64`; bins past the last
    /// word go right).
    In { left: Box<[u64]> },
}

impl Rule {
    /// The rule that sends `bins` left and every other bin right.
    pub(crate) fn set(bins: impl IntoIterator<Item = usize>) -> Rule {
        let mut left = Vec::new();
        for b in bins {
            if left.len() <= b / 64 {
                left.resize(b / 64 + 1, 0u64);
            }
            left[b / 64] |= 1 << (b % 64);
        }
        Rule::In {
            left: left.into_boxed_slice(),
        }
    }

    pub(crate) fn goes_left(&self, bin: Bin) -> bool {
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
            Rule::In { left } => left
                .get(usize::from(bin) / 64)
                .is_some_and(|word| word >> (bin % 64) & 1 == 1),
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
pub(crate) fn leaf_of<L>(nodes: &[Node<L>], bin: impl Fn(usize) -> Bin) -> &L {
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
        let bins: Vec<Bin> = [
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

    #[test]
    fn categories_beyond_255_are_kept_until_they_cover_99_percent_of_the_values() {
        // 1,000 equally frequent levels: 990 of them cover 99 %.
        let values: Vec<f32> = (0..20_000).map(|i| (i % 1000) as f32).collect();
        let b = FeatureBins::fit(&values, true, 0).unwrap();
        assert_eq!(b.count(), 991);
        // 6,000 levels: capped.
        let values: Vec<f32> = (0..60_000).map(|i| (i % 6000) as f32).collect();
        assert_eq!(
            FeatureBins::fit(&values, true, 0).unwrap().count(),
            MAX_CATEGORY_BINS + 1
        );
        // 300 frequent levels and 700 rare ones: the frequent ones already cover 99 %.
        let values: Vec<f32> = (0..300)
            .flat_map(|c| std::iter::repeat_n(c as f32, 300))
            .chain((300..1000).map(|c| c as f32))
            .collect();
        let b = FeatureBins::fit(&values, true, 0).unwrap();
        assert_eq!(b.count(), 301);
        assert_ne!(b.bin(299.0), 0);
        assert_eq!(b.bin(300.0), 0);
    }

    #[test]
    fn nodes_stay_compact() {
        // Fully grown forests hold millions of nodes: a category set lives behind a pointer,
        // so a split is as small as a leaf and half scikit-learn's 64-byte node.
        assert!(std::mem::size_of::<Node<u32>>() <= 32);
        assert!(std::mem::size_of::<Node<f64>>() <= 32);
    }

    #[test]
    fn a_category_set_sends_its_bins_left_and_reads_the_older_four_words() {
        let rule = Rule::set([3, 300]);
        assert!(rule.goes_left(3) && rule.goes_left(300));
        assert!(!rule.goes_left(0) && !rule.goes_left(4) && !rule.goes_left(301));
        // Beyond the set's last word: right.
        assert!(!rule.goes_left(4000));
        // Trees saved when a set was four words long read the same.
        let old: Rule = serde_json::from_str(r#"{"In":{"left":[10,0,0,1]}}"#).unwrap();
        assert!(old.goes_left(1) && old.goes_left(3) && old.goes_left(192));
        assert!(!old.goes_left(2) && !old.goes_left(255));
        assert_eq!(old, Rule::set([1, 3, 192]));
    }
}
