//! The MLP's own search space.

use std::collections::BTreeMap;

use lepton_core::{ParamValue, Result, Scale, SearchSpace, Trial};

/// The hyper-parameters worth searching for a small tabular MLP: learning rate (log scale),
/// hidden width (log scale), depth, dropout and batch size. The names match
/// [`MlpConfig::with_params`](crate::MlpConfig::with_params).
#[derive(Debug, Clone, Copy, Default)]
pub struct MlpSpace;

impl MlpSpace {
    /// The [`MlpConfig`](crate::MlpConfig) defaults, as values of this space: a search may
    /// try them first.
    pub fn defaults() -> BTreeMap<String, ParamValue> {
        let d = crate::MlpConfig::default();
        BTreeMap::from([
            (
                "learning_rate".to_owned(),
                ParamValue::from(d.learning_rate),
            ),
            (
                "hidden_width".to_owned(),
                ParamValue::from(d.hidden_width as i64),
            ),
            ("depth".to_owned(), ParamValue::from(d.depth as i64)),
            ("dropout".to_owned(), ParamValue::from(d.dropout)),
            (
                "batch_size".to_owned(),
                ParamValue::from(d.batch_size as i64),
            ),
        ])
    }
}

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
