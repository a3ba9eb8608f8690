//! One regression tree of the booster, grown leaf-wise (best gain first) on binned features
//! from per-bin gradient and hessian sums (histograms; a child's is its parent's minus its
//! sibling's). Numeric splits send missing values to the side that gains more; categorical
//! splits send a set of categories left, found by ordering the categories by their gradient
//! ratio (Fisher's grouping, as LightGBM does).

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use crate::bins::{Bin, Binned, FeatureBins, Node, Rule, leaf_of, nodes_fit};

/// Added to a categorical split's hessians, and to the categories' ordering ratio, against
/// splits on small categories.
const CATEGORY_SMOOTHING: f64 = 10.0;
/// Most categories on the left of a categorical split.
const MAX_CATEGORY_GROUP: usize = 32;
/// Below this many row-features a histogram is built on one thread.
const PARALLEL_WORK: usize = 100_000;

/// A grown tree: node 0 is the root, leaves hold values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Tree {
    pub(crate) nodes: Vec<Node<f64>>,
}

impl Tree {
    /// The leaf value for a row whose bin of feature `f` is `bin(f)`.
    pub(crate) fn value(&self, bin: impl Fn(usize) -> Bin) -> f64 {
        *leaf_of(&self.nodes, bin)
    }

    /// Whether the tree reads features of `bins` and ends (see [`nodes_fit`]) with finite
    /// values.
    pub(crate) fn fits(&self, bins: &[FeatureBins]) -> bool {
        nodes_fit(&self.nodes, bins.len(), |v| v.is_finite())
    }
}

/// How trees grow.
#[derive(Debug, Clone)]
pub(crate) struct Growth {
    pub(crate) max_leaves: usize,
    /// 0: no limit.
    pub(crate) max_depth: usize,
    pub(crate) min_leaf_rows: usize,
    pub(crate) min_leaf_hessian: f64,
    pub(crate) l1: f64,
    pub(crate) l2: f64,
    pub(crate) learning_rate: f64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Sums {
    g: f64,
    h: f64,
    n: u32,
}

impl Sums {
    fn add(&mut self, o: Sums) {
        self.g += o.g;
        self.h += o.h;
        self.n += o.n;
    }
    fn minus(self, o: Sums) -> Sums {
        Sums {
            g: self.g - o.g,
            h: self.h - o.h,
            n: self.n - o.n,
        }
    }
}

/// Per-feature, per-bin sums of one leaf's rows (empty for features not considered).
type Histogram = Vec<Vec<Sums>>;

#[derive(Debug, Clone)]
struct Candidate {
    gain: f64,
    feature: usize,
    rule: Rule,
}

struct Leaf {
    node: usize,
    rows: Vec<u32>,
    sums: Sums,
    depth: usize,
    histogram: Histogram,
    best: Option<Candidate>,
}

impl Growth {
    fn thresholded(&self, g: f64) -> f64 {
        g.signum() * (g.abs() - self.l1).max(0.0)
    }

    fn score(&self, s: Sums, extra_l2: f64) -> f64 {
        let t = self.thresholded(s.g);
        t * t / (s.h + self.l2 + extra_l2)
    }

    fn leaf_value(&self, s: Sums) -> f64 {
        -self.thresholded(s.g) / (s.h + self.l2) * self.learning_rate
    }

    fn allowed(&self, s: Sums) -> bool {
        s.n as usize >= self.min_leaf_rows && s.h >= self.min_leaf_hessian
    }

    /// Grows a tree on `rows` of `data` with the gradients `g` and hessians `h`, splitting
    /// only on `features`.
    pub(crate) fn grow(
        &self,
        data: &Binned,
        g: &[f64],
        h: &[f64],
        rows: Vec<u32>,
        features: &[usize],
    ) -> Tree {
        let sums = sums_of(&rows, g, h);
        let mut nodes = vec![Node::Leaf(0.0)];
        let mut root = Leaf {
            node: 0,
            histogram: histogram(data, g, h, &rows, features),
            rows,
            sums,
            depth: 0,
            best: None,
        };
        root.best = self.best_split(&root, data, features);
        let mut leaves = vec![root];
        while leaves.len() < self.max_leaves {
            let Some(pick) = leaves
                .iter()
                .enumerate()
                .filter_map(|(i, l)| l.best.as_ref().map(|b| (i, b.gain)))
                .max_by(|a, b| a.1.total_cmp(&b.1))
                .map(|(i, _)| i)
            else {
                break;
            };
            let parent = leaves.swap_remove(pick);
            let Some(split) = parent.best.clone() else {
                break;
            };
            let column = &data.columns[split.feature];
            let (left_rows, right_rows): (Vec<u32>, Vec<u32>) = parent
                .rows
                .iter()
                .partition(|&&r| split.rule.goes_left(column[r as usize]));
            let (small, large, small_is_left) = if left_rows.len() <= right_rows.len() {
                (left_rows, right_rows, true)
            } else {
                (right_rows, left_rows, false)
            };
            let small_histogram = histogram(data, g, h, &small, features);
            let large_histogram: Histogram = parent
                .histogram
                .iter()
                .zip(&small_histogram)
                .map(|(p, s)| p.iter().zip(s).map(|(p, s)| p.minus(*s)).collect())
                .collect();
            let small_sums = sums_of(&small, g, h);
            let large_sums = parent.sums.minus(small_sums);
            let (left_node, right_node) = (nodes.len(), nodes.len() + 1);
            nodes.push(Node::Leaf(0.0));
            nodes.push(Node::Leaf(0.0));
            nodes[parent.node] = Node::Split {
                feature: split.feature as u32,
                rule: split.rule,
                left: left_node as u32,
                right: right_node as u32,
            };
            let (small_node, large_node) = if small_is_left {
                (left_node, right_node)
            } else {
                (right_node, left_node)
            };
            for (node, rows, sums, histogram) in [
                (small_node, small, small_sums, small_histogram),
                (large_node, large, large_sums, large_histogram),
            ] {
                let mut leaf = Leaf {
                    node,
                    rows,
                    sums,
                    depth: parent.depth + 1,
                    histogram,
                    best: None,
                };
                leaf.best = self.best_split(&leaf, data, features);
                leaves.push(leaf);
            }
        }
        for leaf in &leaves {
            nodes[leaf.node] = Node::Leaf(self.leaf_value(leaf.sums));
        }
        Tree { nodes }
    }

    /// The best split of `leaf`, if one gains anything and leaves both sides large enough.
    fn best_split(&self, leaf: &Leaf, data: &Binned, features: &[usize]) -> Option<Candidate> {
        if (self.max_depth > 0 && leaf.depth >= self.max_depth)
            || (leaf.sums.n as usize) < 2 * self.min_leaf_rows
        {
            return None;
        }
        let parent = self.score(leaf.sums, 0.0);
        let mut best: Option<Candidate> = None;
        let mut consider = |gain: f64, feature: usize, rule: Rule| {
            if gain > 1e-12 && best.as_ref().is_none_or(|b| gain > b.gain) {
                best = Some(Candidate {
                    gain,
                    feature,
                    rule,
                });
            }
        };
        for (k, &f) in features.iter().enumerate() {
            let bins = &leaf.histogram[k];
            if data.bins[f].is_categorical() {
                if let Some((gain, rule)) = self.categorical_split(bins, leaf.sums) {
                    consider(gain, f, rule);
                }
                continue;
            }
            let missing = bins[0];
            let mut left = Sums::default();
            for (b, s) in bins.iter().enumerate().take(bins.len() - 1).skip(1) {
                left.add(*s);
                for missing_left in [false, true] {
                    if missing_left && missing.n == 0 {
                        continue;
                    }
                    let l = if missing_left {
                        let mut l = left;
                        l.add(missing);
                        l
                    } else {
                        left
                    };
                    let r = leaf.sums.minus(l);
                    if !self.allowed(l) || !self.allowed(r) {
                        continue;
                    }
                    let gain = self.score(l, 0.0) + self.score(r, 0.0) - parent;
                    consider(
                        gain,
                        f,
                        Rule::UpTo {
                            bin: b as Bin,
                            missing_left,
                        },
                    );
                }
            }
        }
        best
    }

    /// The best set of categories to send left: a prefix of the categories ordered by their
    /// gradient ratio, from either end; regularized by [`CATEGORY_SMOOTHING`].
    fn categorical_split(&self, bins: &[Sums], total: Sums) -> Option<(f64, Rule)> {
        let mut present: Vec<(usize, Sums)> = bins
            .iter()
            .copied()
            .enumerate()
            .filter(|(_, s)| s.n > 0)
            .collect();
        if present.len() < 2 {
            return None;
        }
        present.sort_by(|a, b| {
            let ratio = |s: &Sums| s.g / (s.h + CATEGORY_SMOOTHING);
            ratio(&a.1).total_cmp(&ratio(&b.1))
        });
        let parent = self.score(total, CATEGORY_SMOOTHING);
        let mut best: Option<(f64, usize, bool)> = None;
        for reversed in [false, true] {
            let mut left = Sums::default();
            let order: Vec<&(usize, Sums)> = if reversed {
                present.iter().rev().collect()
            } else {
                present.iter().collect()
            };
            for (i, (_, s)) in order.iter().enumerate().take(present.len() - 1) {
                if i >= MAX_CATEGORY_GROUP {
                    break;
                }
                left.add(*s);
                let right = total.minus(left);
                if !self.allowed(left) || !self.allowed(right) {
                    continue;
                }
                let gain = self.score(left, CATEGORY_SMOOTHING)
                    + self.score(right, CATEGORY_SMOOTHING)
                    - parent;
                if best.is_none_or(|b| gain > b.0) {
                    best = Some((gain, i + 1, reversed));
                }
            }
        }
        let (gain, count, reversed) = best?;
        let chosen: Vec<usize> = if reversed {
            present.iter().rev().take(count).map(|p| p.0).collect()
        } else {
            present.iter().take(count).map(|p| p.0).collect()
        };
        Some((gain, Rule::set(chosen)))
    }
}

/// The gradient and hessian sums and the count of `rows`.
fn sums_of(rows: &[u32], g: &[f64], h: &[f64]) -> Sums {
    rows.iter().fold(Sums::default(), |mut s, &r| {
        s.add(Sums {
            g: g[r as usize],
            h: h[r as usize],
            n: 1,
        });
        s
    })
}

/// The histograms of `rows` for `features` (one thread per feature group when large).
fn histogram(data: &Binned, g: &[f64], h: &[f64], rows: &[u32], features: &[usize]) -> Histogram {
    let one = |&f: &usize| {
        let column = &data.columns[f];
        let mut sums = vec![Sums::default(); data.bins[f].count()];
        for &r in rows {
            let r = r as usize;
            let s = &mut sums[usize::from(column[r])];
            s.g += g[r];
            s.h += h[r];
            s.n += 1;
        }
        sums
    };
    if rows.len() * features.len() >= PARALLEL_WORK {
        features.par_iter().map(one).collect()
    } else {
        features.iter().map(one).collect()
    }
}
