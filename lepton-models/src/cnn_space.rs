//! The CNN's own search space.

use lepton_core::{Result, Scale, SearchSpace, Trial};

/// The hyper-parameters worth searching for the LeNet-style CNN: learning rate (log scale),
/// channels of both convolutions, kernel size, residual blocks (0: LeNet-style), hidden width,
/// dropout, batch size and the largest random shift. The names match [`CnnConfig::with_params`](crate::CnnConfig::with_params).
#[derive(Debug, Clone, Copy, Default)]
pub struct CnnSpace;

impl SearchSpace for CnnSpace {
    fn suggest(&self, trial: &mut Trial) -> Result<()> {
        trial.suggest_float("learning_rate", 1e-4, 1e-2, Scale::Log)?;
        trial.suggest_int("channels1", 8, 64, Scale::Log)?;
        trial.suggest_int("channels2", 16, 128, Scale::Log)?;
        trial.suggest_categorical("kernel", &[3i64, 5])?;
        trial.suggest_int("residual_blocks", 0, 2, Scale::Linear)?;
        trial.suggest_int("hidden", 32, 256, Scale::Log)?;
        trial.suggest_float("dropout", 0.0, 0.5, Scale::Linear)?;
        trial.suggest_categorical("batch_size", &[32i64, 64, 128])?;
        trial.suggest_int("max_shift", 0, 2, Scale::Linear)?;
        Ok(())
    }
}
