//! One tree of a forest, grown depth-first on binned features to reduce impurity: the Gini
//! impurity of the classes or the squared error of the values. Both are one formula over
//! per-output sums: the rows of a side, `n` of them with sums `s_k` (a class's count, or the
//! sum of the values), keep `Σ_k s_k² / n`, and a split gains what its two sides keep beyond
//! their parent. Each split looks at a random subset of the features; a random forest takes
//! each one's best cut, extra trees one random cut each, and the best of those is kept.
//! Missing values (bin 0) go to the side that gains more; categories are split into two sets.
//! A feature constant in a node does not count towards the subset.

use rand::Rng;
use rand::rngs::StdRng;
use rand::seq::index::sample;
use serde::{Deserialize, Serialize};

use crate::bins::{Bin, Binned, Node, Rule, leaf_of, nodes_fit};

/// Rows below which a node's bins are found by sorting its rows rather than by counting
/// into every bin of the feature (and below an eighth of the feature's bins, for a feature
/// of thousands of categories).
const SORT_BELOW: usize = 64;

/// What each training row adds to its side's sums: `(output, amount)`, a class and 1, or
/// output 0 and the row's value.
pub(crate) struct Targets {
    pub(crate) outputs: usize,
    pub(crate) of_row: Vec<(u32, f64)>,
}

/// A grown tree: node 0 is the root; a leaf's values start at `values[offset]` (one per
/// output).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub(crate) struct Tree {
    pub(crate) nodes: Vec<Node<u32>>,
    pub(crate) values: Vec<f64>,
}

impl Tree {
    /// The leaf values (one per output) for a row whose bin of feature `f` is `bin(f)`.
    pub(crate) fn leaf(&self, outputs: usize, bin: impl Fn(usize) -> Bin) -> &[f64] {
        let at = *leaf_of(&self.nodes, bin) as usize;
        &self.values[at..at + outputs]
    }

    /// Whether the tree reads `width` features and ends (see [`nodes_fit`]), and every leaf
    /// has `outputs` finite values: a loaded tree is checked so.
    pub(crate) fn fits(&self, width: usize, outputs: usize) -> bool {
        self.values.iter().all(|v| v.is_finite())
            && nodes_fit(&self.nodes, width, |&at| {
                (at as usize) + outputs <= self.values.len()
            })
    }
}

/// How trees grow.
#[derive(Debug, Clone)]
pub(crate) struct Growth {
    /// 0: no limit.
    pub(crate) max_depth: usize,
    pub(crate) min_leaf_rows: usize,
    pub(crate) features_per_split: usize,
    /// One random cut per feature (extra trees) instead of its best.
    pub(crate) random_cuts: bool,
}

/// The bins of one feature present in a node's rows, ascending, with their row counts and
/// per-output sums (`sums[g * outputs + k]`).
struct Groups {
    bins: Vec<Bin>,
    counts: Vec<u32>,
    sums: Vec<f64>,
}

/// A side of a split: rows and per-output sums.
#[derive(Clone)]
struct Side {
    n: u32,
    sums: Vec<f64>,
}

impl Side {
    fn empty(outputs: usize) -> Side {
        Side {
            n: 0,
            sums: vec![0.0; outputs],
        }
    }

    fn add(&mut self, groups: &Groups, g: usize) {
        let k = self.sums.len();
        self.n += groups.counts[g];
        for (s, v) in self.sums.iter_mut().zip(&groups.sums[g * k..(g + 1) * k]) {
            *s += v;
        }
    }

    fn minus(&self, other: &Side) -> Side {
        Side {
            n: self.n - other.n,
            sums: self
                .sums
                .iter()
                .zip(&other.sums)
                .map(|(a, b)| a - b)
                .collect(),
        }
    }

    /// `Σ_k s_k² / n`: what a side keeps (impurity is its rows' total less this).
    fn kept(&self) -> f64 {
        if self.n == 0 {
            return 0.0;
        }
        self.sums.iter().map(|s| s * s).sum::<f64>() / f64::from(self.n)
    }
}

struct Candidate {
    gain: f64,
    feature: usize,
    rule: Rule,
}

impl Growth {
    /// Grows a tree on `rows` of `data` (a row may repeat: a bootstrap sample).
    pub(crate) fn grow(
        &self,
        data: &Binned,
        targets: &Targets,
        rows: Vec<u32>,
        rng: &mut StdRng,
    ) -> Tree {
        let outputs = targets.outputs;
        let mut tree = Tree {
            nodes: vec![Node::Leaf(0)],
            values: Vec::new(),
        };
        let mut stack = vec![(0usize, rows, 0usize)];
        while let Some((node, rows, depth)) = stack.pop() {
            let total = side_of(&rows, targets);
            match self.best_split(data, targets, &rows, &total, depth, rng) {
                None => {
                    tree.nodes[node] = Node::Leaf(tree.values.len() as u32);
                    let n = f64::from(total.n.max(1));
                    tree.values.extend(total.sums.iter().map(|s| s / n));
                }
                Some(split) => {
                    let column = &data.columns[split.feature];
                    let (left, right): (Vec<u32>, Vec<u32>) = rows
                        .iter()
                        .partition(|&&r| split.rule.goes_left(column[r as usize]));
                    let l = tree.nodes.len();
                    tree.nodes.push(Node::Leaf(0));
                    tree.nodes.push(Node::Leaf(0));
                    tree.nodes[node] = Node::Split {
                        feature: split.feature as u32,
                        rule: split.rule,
                        left: l as u32,
                        right: l as u32 + 1,
                    };
                    stack.push((l + 1, right, depth + 1));
                    stack.push((l, left, depth + 1));
                }
            }
        }
        debug_assert!(tree.fits(data.columns.len(), outputs));
        tree
    }

    /// The best of the cuts looked at, when one gains anything and leaves both sides large
    /// enough.
    fn best_split(
        &self,
        data: &Binned,
        targets: &Targets,
        rows: &[u32],
        total: &Side,
        depth: usize,
        rng: &mut StdRng,
    ) -> Option<Candidate> {
        if (self.max_depth > 0 && depth >= self.max_depth) || rows.len() < 2 * self.min_leaf_rows {
            return None;
        }
        let parent = total.kept();
        // Rounding leaves a pure node tiny gains: a split must gain more than that.
        let least = 1e-9 * parent.abs().max(1.0);
        let width = data.columns.len();
        let wanted = self.features_per_split.clamp(1, width);
        let (mut best, mut looked): (Option<Candidate>, usize) = (None, 0);
        // Features in a random order until `wanted` of them vary in this node: a feature
        // that is constant here does not count (deep nodes have many), as in scikit-learn.
        for f in sample(rng, width, width) {
            if looked == wanted {
                break;
            }
            let groups = groups_of(&data.columns[f], data.bins[f].count(), rows, targets);
            if groups.bins.len() < 2 {
                continue;
            }
            looked += 1;
            let found = if data.bins[f].is_categorical() {
                self.category_cut(&groups, total, rng)
            } else {
                self.value_cut(&groups, total, rng)
            };
            if let Some((kept, rule)) = found {
                let gain = kept - parent;
                if gain > least && best.as_ref().is_none_or(|b| gain > b.gain) {
                    best = Some(Candidate {
                        gain,
                        feature: f,
                        rule,
                    });
                }
            }
        }
        best
    }

    /// Whether both sides are large enough.
    fn allowed(&self, left: &Side, right: &Side) -> bool {
        left.n as usize >= self.min_leaf_rows && right.n as usize >= self.min_leaf_rows
    }

    /// The cut of an ordered feature that keeps most (the best, or the best side for the
    /// missing values of one random cut), with what both sides keep. A cut sends the value
    /// groups up to a bin left, and the missing values to either side; the cut before every
    /// value group separates the missing values from the rest.
    fn value_cut(&self, groups: &Groups, total: &Side, rng: &mut StdRng) -> Option<(f64, Rule)> {
        let outputs = total.sums.len();
        let mut missing = Side::empty(outputs);
        let first = usize::from(groups.bins[0] == 0);
        if first == 1 {
            missing.add(groups, 0);
        }
        let values = groups.bins.len() - first;
        // A random cut: a bin drawn between the lowest and the highest present ones.
        let drawn = (self.random_cuts && values >= 2).then(|| {
            let (low, high) = (groups.bins[first], groups.bins[groups.bins.len() - 1]);
            rng.random_range(low..high)
        });
        let mut best: Option<(f64, Rule)> = None;
        let mut left = Side::empty(outputs);
        for upto in 0..values {
            if upto > 0 {
                left.add(groups, first + upto - 1);
            }
            if drawn.is_some_and(|d| upto == 0 || groups.bins[first + upto] <= d) {
                continue;
            }
            let bin = match (drawn, upto) {
                (Some(d), _) => d,
                (None, 0) => 0,
                (None, _) => groups.bins[first + upto - 1],
            };
            for missing_left in [false, true] {
                if (missing_left && missing.n == 0) || (upto == 0 && !missing_left) {
                    continue;
                }
                let mut l = left.clone();
                if missing_left {
                    l.n += missing.n;
                    l.sums
                        .iter_mut()
                        .zip(&missing.sums)
                        .for_each(|(a, b)| *a += b);
                }
                let r = total.minus(&l);
                if !self.allowed(&l, &r) {
                    continue;
                }
                let kept = l.kept() + r.kept();
                if best.as_ref().is_none_or(|b| kept > b.0) {
                    best = Some((kept, Rule::UpTo { bin, missing_left }));
                }
            }
            if drawn.is_some() {
                break;
            }
        }
        best
    }

    /// A set of categories to send left: the best prefix of the categories ordered by their
    /// mean (of the values, or of the node's most frequent class), or a random set.
    fn category_cut(&self, groups: &Groups, total: &Side, rng: &mut StdRng) -> Option<(f64, Rule)> {
        let outputs = total.sums.len();
        let count = groups.bins.len();
        let set = |chosen: &mut dyn Iterator<Item = usize>| {
            let mut side = Side::empty(outputs);
            let rule = Rule::set(chosen.map(|g| {
                side.add(groups, g);
                usize::from(groups.bins[g])
            }));
            (rule, side)
        };
        if self.random_cuts {
            let mut going: Vec<bool> = (0..count).map(|_| rng.random::<bool>()).collect();
            let on_left = going.iter().filter(|&&g| g).count();
            if on_left == 0 || on_left == count {
                let g = rng.random_range(0..count);
                going[g] = !going[g];
            }
            let (rule, l) = set(&mut (0..count).filter(|&g| going[g]));
            let r = total.minus(&l);
            return self.allowed(&l, &r).then(|| (l.kept() + r.kept(), rule));
        }
        let class = (0..outputs)
            .max_by(|&a, &b| total.sums[a].total_cmp(&total.sums[b]))
            .unwrap_or(0);
        let mut order: Vec<usize> = (0..count).collect();
        let mean = |g: usize| groups.sums[g * outputs + class] / f64::from(groups.counts[g]);
        order.sort_by(|&a, &b| mean(a).total_cmp(&mean(b)));
        let mut best: Option<(f64, usize)> = None;
        let mut left = Side::empty(outputs);
        for (i, &g) in order.iter().enumerate().take(count - 1) {
            left.add(groups, g);
            let r = total.minus(&left);
            if !self.allowed(&left, &r) {
                continue;
            }
            let kept = left.kept() + r.kept();
            if best.is_none_or(|b| kept > b.0) {
                best = Some((kept, i + 1));
            }
        }
        let (kept, n) = best?;
        let (rule, _) = set(&mut order[..n].iter().copied());
        Some((kept, rule))
    }
}

/// The rows and per-output sums of `rows`.
fn side_of(rows: &[u32], targets: &Targets) -> Side {
    let mut side = Side::empty(targets.outputs);
    for &r in rows {
        let (k, v) = targets.of_row[r as usize];
        side.sums[k as usize] += v;
    }
    side.n = rows.len() as u32;
    side
}

/// The present bins of `column` among `rows` (of a feature with `bins` bins), with their
/// counts and sums: counted into every bin for many rows, sorted for few.
fn groups_of(column: &[Bin], bins: usize, rows: &[u32], targets: &Targets) -> Groups {
    let k = targets.outputs;
    if rows.len() >= SORT_BELOW.min(bins).max(bins / 8) {
        let (mut counts, mut sums) = (vec![0u32; bins], vec![0.0f64; bins * k]);
        for &r in rows {
            let b = usize::from(column[r as usize]);
            let (o, v) = targets.of_row[r as usize];
            counts[b] += 1;
            sums[b * k + o as usize] += v;
        }
        let present: Vec<usize> = (0..bins).filter(|&b| counts[b] > 0).collect();
        return Groups {
            bins: present.iter().map(|&b| b as Bin).collect(),
            counts: present.iter().map(|&b| counts[b]).collect(),
            sums: present
                .iter()
                .flat_map(|&b| sums[b * k..(b + 1) * k].iter().copied())
                .collect(),
        };
    }
    let mut by_bin: Vec<(Bin, u32)> = rows.iter().map(|&r| (column[r as usize], r)).collect();
    by_bin.sort_unstable();
    let mut groups = Groups {
        bins: Vec::new(),
        counts: Vec::new(),
        sums: Vec::new(),
    };
    for (b, r) in by_bin {
        if groups.bins.last() != Some(&b) {
            groups.bins.push(b);
            groups.counts.push(0);
            groups.sums.extend(std::iter::repeat_n(0.0, k));
        }
        let g = groups.bins.len() - 1;
        let (o, v) = targets.of_row[r as usize];
        groups.counts[g] += 1;
        groups.sums[g * k + o as usize] += v;
    }
    groups
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;

    use super::*;

    fn grow(x: &[f32], width: usize, targets: Targets, growth: &Growth) -> (Binned, Tree) {
        let data = Binned::fit(x, width, &[]).unwrap_or_else(|e| panic!("{e}"));
        let rows = (0..targets.of_row.len() as u32).collect();
        let tree = growth.grow(&data, &targets, rows, &mut StdRng::seed_from_u64(1));
        (data, tree)
    }

    #[test]
    fn a_full_tree_separates_classes_and_its_leaves_hold_class_shares() {
        // Class 1 exactly where x > 2: one split, two pure leaves.
        let x = [0.0, 1.0, 2.0, 3.0, 4.0, 5.0];
        let targets = Targets {
            outputs: 2,
            of_row: [0, 0, 0, 1, 1, 1].iter().map(|&c| (c, 1.0)).collect(),
        };
        let growth = Growth {
            max_depth: 0,
            min_leaf_rows: 1,
            features_per_split: 1,
            random_cuts: false,
        };
        let (data, tree) = grow(&x, 1, targets, &growth);
        assert_eq!(tree.nodes.len(), 3);
        let leaf = |v: f32| tree.leaf(2, |_| data.bins[0].bin(v)).to_vec();
        assert_eq!(leaf(0.5), [1.0, 0.0]);
        assert_eq!(leaf(4.5), [0.0, 1.0]);
    }

    #[test]
    fn leaves_of_a_regression_hold_means_and_respect_the_leaf_size() {
        let x: Vec<f32> = (0..8).map(|i| i as f32).collect();
        let y = [1.0, 1.0, 1.0, 1.0, 5.0, 5.0, 5.0, 9.0];
        let targets = Targets {
            outputs: 1,
            of_row: y.iter().map(|&v| (0, v)).collect(),
        };
        let growth = Growth {
            max_depth: 0,
            min_leaf_rows: 4,
            features_per_split: 1,
            random_cuts: false,
        };
        let (data, tree) = grow(&x, 1, targets, &growth);
        // Leaves of at least 4 rows: the only such cut is in the middle.
        let leaf = |v: f32| tree.leaf(1, |_| data.bins[0].bin(v))[0];
        assert_eq!((leaf(0.0), leaf(7.0)), (1.0, 6.0));
        assert_eq!(tree.nodes.len(), 3);
    }

    #[test]
    fn a_feature_constant_in_the_node_does_not_count_towards_the_subset() {
        // Feature 0 is constant, feature 1 separates the classes; one feature a split.
        let x: Vec<f32> = (0..20).flat_map(|i| [1.0, i as f32]).collect();
        let of_row = (0..20).map(|i| (u32::from(i >= 10), 1.0)).collect();
        let targets = Targets { outputs: 2, of_row };
        let data = Binned::fit(&x, 2, &[]).unwrap_or_else(|e| panic!("{e}"));
        for random_cuts in [false, true] {
            let growth = Growth {
                max_depth: 1,
                min_leaf_rows: 1,
                features_per_split: 1,
                random_cuts,
            };
            for seed in 0..20 {
                let rows = (0..20).collect();
                let tree = growth.grow(&data, &targets, rows, &mut StdRng::seed_from_u64(seed));
                assert!(
                    matches!(tree.nodes[0], Node::Split { feature: 1, .. }),
                    "seed {seed}: {:?}",
                    tree.nodes[0]
                );
            }
        }
    }

    #[test]
    fn random_cuts_still_separate_and_missing_values_take_a_side() {
        let mut x: Vec<f32> = (0..40).map(|i| i as f32).collect();
        x[3] = f32::NAN;
        let of_row = (0..40).map(|i| (u32::from(i >= 20), 1.0)).collect();
        let targets = Targets { outputs: 2, of_row };
        let growth = Growth {
            max_depth: 0,
            min_leaf_rows: 1,
            features_per_split: 1,
            random_cuts: true,
        };
        let (data, tree) = grow(&x, 1, targets, &growth);
        // Every leaf is pure (the tree grows until it is), the missing row with its class.
        for (i, v) in x.iter().enumerate() {
            let leaf = tree.leaf(2, |_| data.bins[0].bin(*v));
            assert_eq!(leaf[usize::from(i >= 20)], 1.0, "row {i}");
        }
        assert!(tree.fits(1, 2));
        assert!(!tree.fits(0, 2));
    }
}
