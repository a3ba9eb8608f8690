//! The CNN's own search space.

use std::collections::BTreeMap;

use lepton_core::{ParamValue, Result, Scale, SearchSpace, Trial};

/// The hyper-parameters worth searching for the CNN on a CPU budget: learning rate (log
/// scale), channels of both convolutions, kernel size, residual blocks (0: LeNet-style, 1: a
/// small residual net), hidden width, dropout, batch size and the largest random shift. The
/// names match [`CnnConfig::with_params`](crate::CnnConfig::with_params).
#[derive(Debug, Clone, Copy, Default)]
pub struct CnnSpace;

impl CnnSpace {
    /// A configuration known to train well on MNIST-sized digits (the LeNet-style
    /// [`CnnConfig`](crate::CnnConfig) default with one-pixel shifts), inside the space: a
    /// search may try it first.
    pub fn defaults() -> BTreeMap<String, ParamValue> {
        BTreeMap::from([
            ("learning_rate".to_owned(), ParamValue::from(1e-3)),
            ("channels1".to_owned(), ParamValue::from(32i64)),
            ("channels2".to_owned(), ParamValue::from(64i64)),
            ("kernel".to_owned(), ParamValue::from(5i64)),
            ("residual_blocks".to_owned(), ParamValue::from(0i64)),
            ("hidden".to_owned(), ParamValue::from(128i64)),
            ("dropout".to_owned(), ParamValue::from(0.25)),
            ("batch_size".to_owned(), ParamValue::from(64i64)),
            ("max_shift".to_owned(), ParamValue::from(1i64)),
        ])
    }
}

impl SearchSpace for CnnSpace {
    fn suggest(&self, trial: &mut Trial) -> Result<()> {
        trial.suggest_float("learning_rate", 3e-4, 3e-3, Scale::Log)?;
        trial.suggest_int("channels1", 16, 48, Scale::Log)?;
        trial.suggest_int("channels2", 32, 96, Scale::Log)?;
        trial.suggest_categorical("kernel", &[3i64, 5])?;
        trial.suggest_int("residual_blocks", 0, 1, Scale::Linear)?;
        trial.suggest_int("hidden", 64, 256, Scale::Log)?;
        trial.suggest_float("dropout", 0.0, 0.5, Scale::Linear)?;
        trial.suggest_categorical("batch_size", &[64i64, 128])?;
        trial.suggest_int("max_shift", 0, 2, Scale::Linear)?;
        Ok(())
    }
}
