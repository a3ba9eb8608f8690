//! What TPE has read from a study's history: finished trials are read once and their rows and
//! per-axis orders kept between asks, so a long study's ask scans trial states only.

use std::collections::BTreeMap;
use std::sync::Arc;

use lepton_core::{Direction, Distribution, FrozenTrial, History};

use super::rows::{Rank, Row, string_keyed};
use crate::samplers::parzen::{Axis, from_ordered_bits, ordered_bits, sorted_gaps};

/// Rows in ascending order of their value on one axis: (value key, row index).
pub(super) type ValueOrder = Vec<(u64, u32)>;

/// The bad estimator's neighbour gaps per dimension, read off the cached per-dimension
/// orders instead of sorting: the bad rows are the rows that are not good, in row order
/// (which is trial order; otherwise, or with liars, nothing is returned and the estimator
/// sorts for itself).
pub(super) fn presorted_gaps(
    dims: &[(String, Distribution)],
    rows: &[Row],
    order: &[ValueOrder],
    good: &[&Row],
    n_bad: usize,
) -> Vec<Option<Vec<f64>>> {
    if order.len() != dims.len() || !rows.is_sorted_by_key(|r| r.number) {
        return Vec::new();
    }
    let good_numbers: Vec<u64> = good.iter().map(|r| r.number).collect();
    let is_good: Vec<bool> = rows
        .iter()
        .map(|r| good_numbers.binary_search(&r.number).is_ok())
        .collect();
    // Each bad row's position among the bad ones.
    let mut position = vec![0usize; rows.len()];
    let mut k = 0;
    for (i, g) in is_good.iter().enumerate() {
        if !g {
            position[i] = k;
            k += 1;
        }
    }
    if k != n_bad {
        return Vec::new();
    }
    dims.iter()
        .enumerate()
        .map(|(j, (_, d))| {
            let bad_in_order = || order[j].iter().filter(|&&(_, i)| !is_good[i as usize]);
            // The value is in the key: no need to visit the rows.
            let values = bad_in_order().map(|&(key, _)| from_ordered_bits(key));
            let gaps = sorted_gaps(&Axis::of(d), values, k)?;
            let mut by_row = vec![0.0; k];
            for (&(_, i), gap) in bad_in_order().zip(gaps) {
                by_row[position[i as usize]] = gap;
            }
            Some(by_row)
        })
        .collect()
}

/// What the sampler has learned from finished trials so far. Finished trials never change,
/// so each is read once; a long study's `ask` then costs a scan of trial states, not of every
/// parameter of every trial.
#[derive(Debug, Default)]
pub(super) struct Folded {
    pub(super) direction: Direction,
    /// Trial numbers already read (finished when they were read).
    pub(super) seen: Vec<bool>,
    /// The finished trials TPE learns from, in the order read.
    pub(super) finished: Vec<Arc<FrozenTrial>>,
    /// The parameters every finished trial shares, with their distribution.
    pub(super) space: Option<BTreeMap<String, Distribution>>,
    /// `finished`'s rows over `space`, valid while `rows_valid`.
    pub(super) rows: Vec<Row>,
    /// For each dimension, the rows in ascending order of their value there (value key,
    /// row index), kept as rows arrive so that bandwidths need no sort; valid with `rows`.
    pub(super) order: Vec<ValueOrder>,
    pub(super) rows_valid: bool,
}

impl Folded {
    /// Reads the trials that finished since the last call.
    pub(super) fn fold(&mut self, history: &History) {
        // A sampler may be reused for another study (or a storage that renumbers): if any
        // trial read before is not the same trial any more, start over. A finished trial
        // never changes, so its number, state and value identify it; comparing them (not
        // the parameters) keeps the check cheap for storages that hand out fresh copies.
        let same = |t: &Arc<FrozenTrial>| {
            history.trials().get(t.number as usize).is_some_and(|h| {
                Arc::ptr_eq(h, t)
                    || (h.number == t.number
                        && h.state == t.state
                        && h.value.map(f64::to_bits) == t.value.map(f64::to_bits))
            })
        };
        if self.direction != history.direction() || !self.finished.iter().all(same) {
            *self = Folded {
                direction: history.direction(),
                ..Folded::default()
            };
        }
        for t in history.trials() {
            let i = t.number as usize;
            if self.seen.get(i).copied().unwrap_or(false) || !t.state.is_finished() {
                continue;
            }
            if self.seen.len() <= i {
                self.seen.resize(i + 1, false);
            }
            self.seen[i] = true;
            if Rank::of(t, self.direction).is_none() {
                continue;
            }
            let before = self.space.as_ref().map(BTreeMap::len);
            match &mut self.space {
                None => self.space = Some(string_keyed(&t.distributions)),
                Some(s) => s.retain(|name, d| t.distributions.get(name.as_str()) == Some(d)),
            }
            self.finished.push(Arc::clone(t));
            if before.is_some() && before != self.space.as_ref().map(BTreeMap::len) {
                self.rows_valid = false;
            }
            if self.rows_valid {
                let dims: Vec<_> = self.space_dims();
                match Row::of(t, &dims, self.direction) {
                    Some(row) => {
                        let index = self.rows.len() as u32;
                        for (order, x) in self.order.iter_mut().zip(&row.x) {
                            let entry = (ordered_bits(*x), index);
                            let at = order.partition_point(|e| *e < entry);
                            order.insert(at, entry);
                        }
                        self.rows.push(row);
                    }
                    None => self.rows_valid = false,
                }
            }
        }
    }

    pub(super) fn space_dims(&self) -> Vec<(String, Distribution)> {
        self.space
            .as_ref()
            .map(|s| s.iter().map(|(n, d)| (n.clone(), d.clone())).collect())
            .unwrap_or_default()
    }

    /// Rows of every finished trial over the intersection space, with their per-dimension
    /// orders.
    pub(super) fn intersection_rows(&mut self) -> (&[Row], &[ValueOrder]) {
        if !self.rows_valid {
            let dims = self.space_dims();
            self.rows = self
                .finished
                .iter()
                .filter_map(|t| Row::of(t, &dims, self.direction))
                .collect();
            self.order = (0..dims.len())
                .map(|j| {
                    let mut order: Vec<(u64, u32)> = self
                        .rows
                        .iter()
                        .enumerate()
                        .map(|(i, r)| (ordered_bits(r.x[j]), i as u32))
                        .collect();
                    order.sort_unstable();
                    order
                })
                .collect();
            self.rows_valid = true;
        }
        (&self.rows, &self.order)
    }

    /// Rows of the finished trials that have every parameter of `dims`.
    pub(super) fn rows_for(&self, dims: &[(String, Distribution)]) -> Vec<Row> {
        self.finished
            .iter()
            .filter_map(|t| Row::of(t, dims, self.direction))
            .collect()
    }

    /// Optuna's group decomposition: the coarsest split of all parameters seen into groups
    /// whose members always appear together.
    pub(super) fn groups(&self) -> Vec<Vec<(String, Distribution)>> {
        let mut groups: Vec<BTreeMap<String, Distribution>> = Vec::new();
        for t in &self.finished {
            let mut rest = string_keyed(&t.distributions);
            let mut next = Vec::with_capacity(groups.len() * 2 + 1);
            for g in groups {
                let (inside, outside): (BTreeMap<_, _>, BTreeMap<_, _>) =
                    g.into_iter().partition(|(name, _)| rest.contains_key(name));
                for name in inside.keys() {
                    rest.remove(name);
                }
                next.push(inside);
                next.push(outside);
            }
            next.push(rest);
            groups = next.into_iter().filter(|g| !g.is_empty()).collect();
        }
        groups
            .into_iter()
            .map(|g| g.into_iter().collect())
            .collect()
    }
}
