//! A trial as TPE sees it: where it ranks (complete by loss, then pruned, then running) and
//! its values on the axes of a set of parameters.

use std::collections::BTreeMap;

use lepton_core::{Direction, Distribution, FrozenTrial, TrialState};

use crate::samplers::parzen::Axis;

/// Where a finished trial ranks: complete trials by loss, then pruned ones by how far they
/// Where a finished trial ranks: complete trials by loss, then pruned ones by how far they
/// got and their last value, then running ones (the constant liar's pessimism).
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) enum Rank {
    Complete(f64),
    Pruned { step: u64, loss: f64 },
    Running,
}

impl Rank {
    /// The rank of a finished trial, in terms of loss (lower is better); `None` for trials
    /// TPE does not learn from.
    pub(super) fn of(t: &FrozenTrial, direction: Direction) -> Option<Rank> {
        let loss = |v: f64| match direction {
            Direction::Minimize => v,
            Direction::Maximize => -v,
        };
        match t.state {
            TrialState::Complete => t.value.map(|v| Rank::Complete(loss(v))),
            TrialState::Pruned => Some(match t.last_step() {
                Some((step, v)) => Rank::Pruned {
                    step,
                    loss: loss(v),
                },
                None => Rank::Pruned {
                    step: 0,
                    loss: f64::INFINITY,
                },
            }),
            _ => None,
        }
    }

    pub(super) fn cmp(&self, other: &Rank) -> std::cmp::Ordering {
        use std::cmp::Ordering;
        match (self, other) {
            (Rank::Complete(a), Rank::Complete(b)) => a.total_cmp(b),
            (Rank::Complete(_), _) => Ordering::Less,
            (_, Rank::Complete(_)) => Ordering::Greater,
            (Rank::Pruned { step: s, loss: a }, Rank::Pruned { step: t, loss: b }) => {
                t.cmp(s).then(a.total_cmp(b))
            }
            (Rank::Pruned { .. }, Rank::Running) => Ordering::Less,
            (Rank::Running, Rank::Pruned { .. }) => Ordering::Greater,
            (Rank::Running, Rank::Running) => Ordering::Equal,
        }
    }
}

/// One trial's values on the axes of a set of parameters.
#[derive(Debug, Clone)]
pub(super) struct Row {
    pub(super) number: u64,
    pub(super) rank: Rank,
    pub(super) x: Vec<f64>,
}

impl Row {
    pub(super) fn of(
        t: &FrozenTrial,
        dims: &[(String, Distribution)],
        direction: Direction,
    ) -> Option<Row> {
        Some(Row {
            number: t.number,
            rank: Rank::of(t, direction)?,
            x: encode(t, dims)?,
        })
    }
}

/// A trial's distributions keyed by `String`, as the sampler's spaces and groups are.
pub(super) fn string_keyed(
    distributions: &BTreeMap<lepton_core::ParamName, Distribution>,
) -> BTreeMap<String, Distribution> {
    distributions
        .iter()
        .map(|(name, d)| (name.to_string(), d.clone()))
        .collect()
}

/// A trial's values for `dims`, if it has every one of them with the same distribution.
pub(super) fn encode(t: &FrozenTrial, dims: &[(String, Distribution)]) -> Option<Vec<f64>> {
    dims.iter()
        .map(|(name, d)| {
            if t.distributions.get(name.as_str()) != Some(d) {
                return None;
            }
            Axis::encode(d, t.params.get(name.as_str())?)
        })
        .collect()
}
