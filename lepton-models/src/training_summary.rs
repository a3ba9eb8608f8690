//! What a training run did and found, whichever family ran it.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use lepton_core::{Error, TrialContext};

use crate::error::Result;
use crate::metrics::ConfusionMatrix;

/// What happened during training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingSummary {
    /// Epochs actually run (fewer than the maximum when stopped early).
    pub epochs_run: usize,
    /// The epoch whose weights were kept (the last one when there is no validation set);
    /// with several reports an epoch, the epoch during which they were kept.
    pub best_epoch: usize,
    /// Validation score of the kept weights (accuracy for classification, R² for
    /// regression), when there was a validation set: the best of the scores reported.
    pub best_valid_score: Option<f64>,
    /// Validation loss of the kept weights (cross-entropy, or mean squared error of the
    /// standardized target), when there was a validation set.
    pub best_valid_loss: Option<f64>,
    /// Confusion matrix of the kept weights on the validation rows (classification), from the
    /// same pass that scored them.
    #[serde(default)]
    pub best_valid_confusion: Option<ConfusionMatrix>,
    /// Mean training loss of the last epoch.
    pub final_train_loss: f64,
    /// Wall seconds spent on training steps, over every epoch run (those before a resume
    /// included: the checkpoint keeps the count).
    #[serde(default)]
    pub train_seconds: f64,
    /// Wall seconds spent on validation, over every epoch run.
    #[serde(default)]
    pub valid_seconds: f64,
}

impl TrainingSummary {
    /// For models scored once, when grown (trees): keeps the validation rows' `score`, loss
    /// and (a classifier's) confusion matrix found in `seconds`, reports the score to `ctx` as
    /// step 1 and stops with [`Error::Pruned`] when `ctx` says so.
    pub(crate) fn validated_once(
        &mut self,
        (score, loss, confusion): (f64, f64, Option<ConfusionMatrix>),
        seconds: Duration,
        ctx: &mut dyn TrialContext,
    ) -> Result<()> {
        self.valid_seconds = seconds.as_secs_f64();
        self.best_valid_score = Some(score);
        self.best_valid_loss = Some(loss);
        self.best_valid_confusion = confusion;
        ctx.report(1, score)?;
        if ctx.should_prune() {
            return Err(Error::Pruned { step: 1 }.into());
        }
        Ok(())
    }
}
