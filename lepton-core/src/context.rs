//! How training talks to the search: reports and pruning.

use crate::error::{Error, Result};

/// What a model's training loop uses to report intermediate scores and learn that it should
/// stop. A study's trial implements it; [`DetachedContext`] serves plain training.
///
/// ```
/// use lepton_core::{Result, TrialContext};
///
/// /// Prints every report and never stops training.
/// struct Printing;
///
/// impl TrialContext for Printing {
///     fn report(&mut self, step: u64, value: f64) -> Result<()> {
///         println!("step {step}: {value}");
///         Ok(())
///     }
///     fn should_prune(&self) -> bool {
///         false
///     }
/// }
///
/// Printing.report(1, 0.5)?;
/// # Ok::<(), lepton_core::Error>(())
/// ```
pub trait TrialContext {
    /// Records the score after `step` (an epoch, or N batches).
    fn report(&mut self, step: u64, value: f64) -> Result<()>;
    /// Whether training should stop now; training that stops returns [`Error::Pruned`].
    fn should_prune(&self) -> bool;

    /// Records several scores after `step`, for pruning on all of them at once (Lepton's
    /// `ParetoPruner`). The first is the step's intermediate value, as [`report`](Self::report)
    /// records it; a [`Trial`](crate::Trial) keeps the others too (see
    /// [`FrozenTrial::objectives_at`](crate::FrozenTrial::objectives_at)), while a context
    /// that keeps one value per step, as this default does, keeps only the first.
    fn report_objectives(&mut self, step: u64, values: &[f64]) -> Result<()> {
        let first = values
            .first()
            .ok_or_else(|| Error::InvalidInput(format!("no values reported at step {step}")))?;
        self.report(step, *first)
    }
}

/// A context outside any study: keeps the reports, never prunes.
#[derive(Debug, Clone, Default)]
pub struct DetachedContext {
    reports: Vec<(u64, f64)>,
}

impl DetachedContext {
    /// An empty context.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every report, in order.
    pub fn reports(&self) -> &[(u64, f64)] {
        &self.reports
    }
}

impl TrialContext for DetachedContext {
    fn report(&mut self, step: u64, value: f64) -> Result<()> {
        if !value.is_finite() {
            return Err(Error::InvalidInput(format!(
                "non-finite value {value} reported at step {step}"
            )));
        }
        self.reports.push((step, value));
        Ok(())
    }

    fn should_prune(&self) -> bool {
        false
    }
}
