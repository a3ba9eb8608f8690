//! The pruner stage: decides whether a running trial should stop early.

use crate::frozen_trial::FrozenTrial;
use crate::history::History;

/// Decides from the study's history whether `trial` (running, with its intermediate values so
/// far) is unpromising enough to stop.
///
/// A pruner that stops any trial whose last report is below a floor:
///
/// ```
/// use lepton_core::{FrozenTrial, History, Pruner};
///
/// struct Floor(f64);
///
/// impl Pruner for Floor {
///     fn should_prune(&self, _: &History, trial: &FrozenTrial) -> bool {
///         trial.last_step().is_some_and(|(_, v)| v < self.0)
///     }
/// }
///
/// let mut t = FrozenTrial::new(0);
/// t.intermediate_values.insert(1, 0.2);
/// assert!(Floor(0.5).should_prune(&History::default(), &t));
/// ```
pub trait Pruner: Send + Sync {
    /// Whether `trial` should stop now.
    fn should_prune(&self, history: &History, trial: &FrozenTrial) -> bool;

    /// Why `trial` should stop now, or `None` when it should go on: the same decision as
    /// [`should_prune`](Pruner::should_prune), in words a log can carry. The default names
    /// the pruner; pruners override it with the rule and the numbers they compared.
    fn prune_reason(&self, history: &History, trial: &FrozenTrial) -> Option<String> {
        self.should_prune(history, trial).then(|| {
            // `a::Wrapper<b::Inner>` is called `Wrapper`.
            let name = std::any::type_name::<Self>();
            let name = name.split('<').next().unwrap_or(name);
            format!("{} said stop", name.rsplit("::").next().unwrap_or(name))
        })
    }
}

/// The pruner that never prunes.
#[derive(Debug, Clone, Copy, Default)]
pub struct NopPruner;

impl Pruner for NopPruner {
    fn should_prune(&self, _: &History, _: &FrozenTrial) -> bool {
        false
    }
}

/// A boxed pruner is a pruner (for pruners chosen at run time, e.g. by name).
impl<P: Pruner + ?Sized> Pruner for Box<P> {
    fn should_prune(&self, history: &History, trial: &FrozenTrial) -> bool {
        (**self).should_prune(history, trial)
    }

    fn prune_reason(&self, history: &History, trial: &FrozenTrial) -> Option<String> {
        (**self).prune_reason(history, trial)
    }
}

impl<P: Pruner + ?Sized> Pruner for std::sync::Arc<P> {
    fn should_prune(&self, history: &History, trial: &FrozenTrial) -> bool {
        (**self).should_prune(history, trial)
    }

    fn prune_reason(&self, history: &History, trial: &FrozenTrial) -> Option<String> {
        (**self).prune_reason(history, trial)
    }
}
