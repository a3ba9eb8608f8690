//! The MLP's own search space.

use lepton_core::{Result, Scale, SearchSpace, Trial};

/// The hyper-parameters worth searching for a small tabular MLP: learning rate (log scale),
/// hidden width (log scale), depth, dropout and batch size. The names match
/// [`MlpConfig::with_params`](crate::MlpConfig::with_params).
#[derive(Debug, Clone, Copy, Default)]
pub struct MlpSpace;

impl SearchSpace for MlpSpace {
    fn suggest(&self, trial: &mut Trial) -> Result<()> {
        trial.suggest_float("learning_rate", 1e-4, 3e-2, Scale::Log)?;
        trial.suggest_int("hidden_width", 16, 256, Scale::Log)?;
        trial.suggest_int("depth", 1, 3, Scale::Linear)?;
        trial.suggest_float("dropout", 0.0, 0.5, Scale::Linear)?;
        trial.suggest_categorical("batch_size", &[16i64, 32, 64])?;
        Ok(())
    }
}
