//! The models of the built-in families, and what they write into an artifact.

use std::any::Any;

use serde::{Deserialize, Serialize};

use lepton_core::{Dataset, Features, Predict, Prediction};
use lepton_data::{FittedPreprocessor, Table};
use lepton_deploy::Examples;
use lepton_models::{
    Backend, BoostedConfig, CnnConfig, Cpu, FittedBoosted, FittedCnn, FittedForest, FittedMlp,
    ForestConfig, Head, MlpConfig, TrainingSummary,
};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::index::sample;

use crate::error::{Error, Result};
use crate::family::Fitted;

/// A trained model of one of the families [`AutoMl`](crate::AutoMl) searches. A linear model
/// is an MLP without hidden layers.
#[derive(Debug, Clone)]
pub enum FittedModel<B: Backend = Cpu> {
    /// A linear model or an MLP.
    Mlp(Box<FittedMlp<B>>),
    /// A convolutional image classifier.
    Cnn(Box<FittedCnn<B>>),
    /// A tree ensemble (no backend: trees run on the CPU).
    Forest(Box<FittedForest>),
    /// Gradient-boosted trees (no backend either).
    Boosted(Box<FittedBoosted>),
}

/// What an artifact's `model_config` holds, per family.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "network", rename_all = "lowercase")]
enum StoredConfig {
    Mlp {
        config: MlpConfig,
        n_features: usize,
        head: Head,
        summary: TrainingSummary,
    },
    Cnn {
        config: CnnConfig,
        head: Head,
        summary: TrainingSummary,
    },
    Forest {
        config: ForestConfig,
        n_features: usize,
        head: Head,
        summary: TrainingSummary,
    },
    Boosted {
        config: BoostedConfig,
        n_features: usize,
        head: Head,
        summary: TrainingSummary,
    },
}

impl<B: Backend> FittedModel<B> {
    /// The family's name: `linear`, `mlp`, `cnn`, `forest` or `boosted`.
    pub fn family(&self) -> &'static str {
        match self {
            FittedModel::Mlp(m) if m.config().depth == 0 => "linear",
            FittedModel::Mlp(_) => "mlp",
            FittedModel::Cnn(_) => "cnn",
            FittedModel::Forest(_) => "forest",
            FittedModel::Boosted(_) => "boosted",
        }
    }

    /// What happened while it trained.
    pub fn summary(&self) -> &TrainingSummary {
        match self {
            FittedModel::Mlp(m) => m.summary(),
            FittedModel::Cnn(m) => m.summary(),
            FittedModel::Forest(m) => m.summary(),
            FittedModel::Boosted(m) => m.summary(),
        }
    }

    /// The configuration an artifact's `model_config` holds, and the weights.
    fn parts(&self) -> Result<(StoredConfig, Vec<u8>)> {
        Ok(match self {
            FittedModel::Mlp(m) => (
                StoredConfig::Mlp {
                    config: m.config().clone(),
                    n_features: m.n_features(),
                    head: m.head(),
                    summary: m.summary().clone(),
                },
                m.weights_to_bytes()?,
            ),
            FittedModel::Cnn(m) => (
                StoredConfig::Cnn {
                    config: m.config().clone(),
                    head: m.head(),
                    summary: m.summary().clone(),
                },
                m.weights_to_bytes()?,
            ),
            FittedModel::Forest(m) => (
                StoredConfig::Forest {
                    config: m.config().clone(),
                    n_features: m.n_features(),
                    head: m.head(),
                    summary: m.summary().clone(),
                },
                m.trees_to_bytes()?,
            ),
            FittedModel::Boosted(m) => (
                StoredConfig::Boosted {
                    config: m.config().clone(),
                    n_features: m.n_features(),
                    head: m.head(),
                    summary: m.summary().clone(),
                },
                m.trees_to_bytes()?,
            ),
        })
    }

    /// Rebuilds the model from an artifact's `model_config` and weights; refuses
    /// configurations that do not match the weights. A format-3 artifact of a table's MLP
    /// (written with its preprocessor) has no `network` tag: it is an MLP.
    pub(crate) fn from_parts(config: &serde_json::Value, weights: Vec<u8>) -> Result<Self> {
        let mut config = config.clone();
        if let serde_json::Value::Object(fields) = &mut config {
            fields
                .entry("network")
                .or_insert_with(|| serde_json::Value::from("mlp"));
        }
        let stored: StoredConfig = serde_json::from_value(config)
            .map_err(|e| Error::IncompatibleArtifact(format!("model_config: {e}")))?;
        Ok(match stored {
            StoredConfig::Mlp {
                config,
                n_features,
                head,
                summary,
            } => FittedModel::Mlp(Box::new(FittedMlp::from_weights(
                config, n_features, head, summary, weights,
            )?)),
            StoredConfig::Cnn {
                config,
                head,
                summary,
            } => FittedModel::Cnn(Box::new(FittedCnn::from_weights(
                config, head, summary, weights,
            )?)),
            StoredConfig::Forest {
                config,
                n_features,
                head,
                summary,
            } => FittedModel::Forest(Box::new(FittedForest::from_bytes(
                config, n_features, head, summary, &weights,
            )?)),
            StoredConfig::Boosted {
                config,
                n_features,
                head,
                summary,
            } => FittedModel::Boosted(Box::new(FittedBoosted::from_bytes(
                config, n_features, head, summary, &weights,
            )?)),
        })
    }

    /// Input width and output head.
    pub fn shape(&self) -> (usize, Head) {
        match self {
            FittedModel::Mlp(m) => (m.n_features(), m.head()),
            FittedModel::Cnn(m) => (m.config().height * m.config().width, m.head()),
            FittedModel::Forest(m) => (m.n_features(), m.head()),
            FittedModel::Boosted(m) => (m.n_features(), m.head()),
        }
    }
}

/// The most training rows an artifact's replay sample holds.
const REPLAY_ROWS: usize = 1000;
/// The most values (rows times width) it holds: wide rows make fewer of them.
const REPLAY_VALUES: usize = 1_000_000;

/// The replay sample Lepton's pipelines put in their artifacts: up to 1,000 rows of `data`
/// (fewer when rows are wider than 1,000 values), drawn without replacement with `seed`.
pub(crate) fn replay_sample(data: &dyn Dataset, seed: u64) -> Result<Examples> {
    Ok(Examples::sample(
        data,
        replay_rows(data.schema().features.len()),
        seed,
    )?)
}

/// The replay sample of a raw `table` encoded by `preprocessor`: the rows
/// [`replay_sample`] would draw from the whole encoded table, with only those rows encoded.
pub(crate) fn replay_sample_of_table(
    preprocessor: &FittedPreprocessor,
    table: &Table,
    seed: u64,
) -> Result<Examples> {
    let n = table.n_rows();
    let rows = replay_rows(preprocessor.features().len()).min(n);
    let mut picked = sample(&mut StdRng::seed_from_u64(seed), n, rows).into_vec();
    picked.sort_unstable();
    let encoded = preprocessor.transform(&table.select(&picked)?)?;
    // Every row of the selection, in order: the same draw over `n` rows picked them.
    Ok(Examples::sample(&encoded, rows, seed)?)
}

/// Rows of `width` values a replay sample holds.
fn replay_rows(width: usize) -> usize {
    (REPLAY_VALUES / width.max(1)).clamp(1, REPLAY_ROWS)
}

impl<B: Backend> Fitted for FittedModel<B> {
    fn family(&self) -> &str {
        FittedModel::family(self)
    }
    fn summary(&self) -> &TrainingSummary {
        FittedModel::summary(self)
    }
    fn shape(&self) -> (usize, Head) {
        FittedModel::shape(self)
    }
    fn config(&self) -> Result<serde_json::Value> {
        serde_json::to_value(self.parts()?.0)
            .map_err(|e| Error::IncompatibleArtifact(format!("model_config: {e}")))
    }
    fn weights(&self) -> Result<Vec<u8>> {
        Ok(self.parts()?.1)
    }
    fn accepts_missing(&self) -> bool {
        matches!(self, FittedModel::Forest(_) | FittedModel::Boosted(_))
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl<B: Backend> Predict for FittedModel<B> {
    fn predict(&self, x: Features<'_>) -> lepton_core::Result<Vec<Prediction>> {
        match self {
            FittedModel::Mlp(m) => m.predict(x),
            FittedModel::Cnn(m) => m.predict(x),
            FittedModel::Forest(m) => m.predict(x),
            FittedModel::Boosted(m) => m.predict(x),
        }
    }
}

#[cfg(test)]
mod tests {
    use lepton_data::{CsvLoader, Preprocessor, TargetKind};

    use super::*;

    #[test]
    fn a_tables_replay_sample_encodes_only_the_rows_it_draws_and_draws_the_same() {
        // 3,000 rows (more than a sample holds), some numbers missing.
        let mut text = String::from("x,colour,label\n");
        for i in 0..3000 {
            let x = if i % 11 == 0 {
                String::new()
            } else {
                format!("{}", i % 97)
            };
            let colour = ["red", "blue"][i % 2];
            text.push_str(&format!("{x},{colour},{}\n", i % 3));
        }
        let table = CsvLoader::new("t.csv")
            .read_table_from(text.as_bytes())
            .unwrap();
        for preprocessing in [
            Preprocessor::default(),
            Preprocessor {
                imputation: lepton_data::Imputation::Keep,
                ..Preprocessor::default()
            },
        ] {
            let fitted = preprocessing
                .fit(&table, "label", TargetKind::Classification)
                .unwrap();
            let whole = replay_sample(&fitted.transform(&table).unwrap(), 7).unwrap();
            let drawn = replay_sample_of_table(&fitted, &table, 7).unwrap();
            assert_eq!(drawn, whole);
            assert!(whole.targets().len() > 800, "{}", whole.targets().len());
        }
    }
}
