//! The linear model's own search space.

use std::collections::BTreeMap;

use lepton_core::{ParamValue, Result, Scale, SearchSpace, Trial};

/// The hyper-parameters worth searching for a linear model (logistic or least-squares
/// regression: an [`MlpConfig`](crate::MlpConfig) with `depth` 0): learning rate (log scale),
/// L2 weight decay (log scale) and batch size. [`LinearSpace::config`] is the configuration
/// they apply to.
#[derive(Debug, Clone, Copy, Default)]
pub struct LinearSpace;

impl LinearSpace {
    /// The configuration the suggested values apply to: no hidden layer, no dropout.
    pub fn config() -> crate::MlpConfig {
        crate::MlpConfig::default().with_depth(0).with_dropout(0.0)
    }

    /// Middle-of-the-road values of this space (Adam at 1e-3, light decay, batches of 64): a
    /// search may try them first.
    pub fn defaults() -> BTreeMap<String, ParamValue> {
        BTreeMap::from([
            ("learning_rate".to_owned(), ParamValue::from(1e-3)),
            ("weight_decay".to_owned(), ParamValue::from(1e-4)),
            ("batch_size".to_owned(), ParamValue::from(64i64)),
        ])
    }
}

impl SearchSpace for LinearSpace {
    fn suggest(&self, trial: &mut Trial) -> Result<()> {
        trial.suggest_float("learning_rate", 1e-4, 3e-2, Scale::Log)?;
        trial.suggest_float("weight_decay", 1e-6, 1e-2, Scale::Log)?;
        trial.suggest_categorical("batch_size", &[32i64, 64, 128])?;
        Ok(())
    }
}
