//! The model an [`AutoMl`](crate::AutoMl) run returns, whatever family won, and its artifact.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use lepton_core::{Dataset, Features, Predict, Prediction, Schema};
use lepton_deploy::{Examples, ModelArtifact};
use lepton_models::{
    Backend, CnnConfig, Cpu, FittedCnn, FittedForest, FittedMlp, ForestConfig, Head, MlpConfig,
    TrainingSummary,
};

use crate::error::{Error, Result};

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
}

impl<B: Backend> FittedModel<B> {
    /// The family's name: `linear`, `mlp`, `cnn` or `forest`.
    pub fn family(&self) -> &'static str {
        match self {
            FittedModel::Mlp(m) if m.config().depth == 0 => "linear",
            FittedModel::Mlp(_) => "mlp",
            FittedModel::Cnn(_) => "cnn",
            FittedModel::Forest(_) => "forest",
        }
    }

    /// What happened while it trained.
    pub fn summary(&self) -> &TrainingSummary {
        match self {
            FittedModel::Mlp(m) => m.summary(),
            FittedModel::Cnn(m) => m.summary(),
            FittedModel::Forest(m) => m.summary(),
        }
    }

    /// The configuration, as JSON (for reports).
    pub fn config_json(&self) -> serde_json::Value {
        let value = match self {
            FittedModel::Mlp(m) => serde_json::to_value(m.config()),
            FittedModel::Cnn(m) => serde_json::to_value(m.config()),
            FittedModel::Forest(m) => serde_json::to_value(m.config()),
        };
        value.unwrap_or(serde_json::Value::Null)
    }

    /// Packs the model into an artifact for data described by `schema`, with its evaluation
    /// `metrics`. The rows go to the model as they are (no preprocessor). It carries no replay
    /// sample, which online learning needs: [`AutoMlRun::to_artifact`](crate::AutoMlRun::to_artifact)
    /// adds the run's, or add one with [`ModelArtifact::with_replay`].
    pub fn to_artifact(
        &self,
        schema: Schema,
        metrics: BTreeMap<String, f64>,
    ) -> Result<ModelArtifact> {
        let (stored, weights) = match self {
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
        };
        Ok(ModelArtifact::new(
            self.family(),
            &stored,
            &(),
            schema,
            metrics,
            weights,
        )?)
    }

    /// Rebuilds the model from an artifact written by [`to_artifact`](Self::to_artifact);
    /// refuses other families, configurations that do not match the weights, and a schema
    /// whose width or classes disagree with the model.
    pub fn from_artifact(artifact: &ModelArtifact) -> Result<Self> {
        let manifest = artifact.manifest();
        if !["linear", "mlp", "cnn", "forest"].contains(&manifest.model_family.as_str()) {
            return Err(Error::IncompatibleArtifact(format!(
                "model family `{}`, expected linear, mlp, cnn or forest",
                manifest.model_family
            )));
        }
        let stored: StoredConfig = artifact.model_config()?;
        let weights = artifact.weights().to_vec();
        let model = match stored {
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
        };
        let schema = &manifest.input_schema;
        let classes = schema.n_classes();
        let (width, head) = model.shape();
        let head_ok = match head {
            Head::Classes { count } => classes == Some(count),
            Head::Value { .. } => classes.is_none(),
        };
        if model.family() != manifest.model_family || width != schema.features.len() || !head_ok {
            return Err(Error::IncompatibleArtifact(format!(
                "a {} model of {width} inputs and head {head:?} does not fit family `{}` with \
                 {} input columns and {classes:?} classes",
                model.family(),
                manifest.model_family,
                schema.features.len()
            )));
        }
        Ok(model)
    }

    /// Input width and output head.
    fn shape(&self) -> (usize, Head) {
        match self {
            FittedModel::Mlp(m) => (m.n_features(), m.head()),
            FittedModel::Cnn(m) => (m.config().height * m.config().width, m.head()),
            FittedModel::Forest(m) => (m.n_features(), m.head()),
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
    let width = data.schema().features.len().max(1);
    let rows = (REPLAY_VALUES / width).clamp(1, REPLAY_ROWS);
    Ok(Examples::sample(data, rows, seed)?)
}

impl<B: Backend> Predict for FittedModel<B> {
    fn predict(&self, x: Features<'_>) -> lepton_core::Result<Vec<Prediction>> {
        match self {
            FittedModel::Mlp(m) => m.predict(x),
            FittedModel::Cnn(m) => m.predict(x),
            FittedModel::Forest(m) => m.predict(x),
        }
    }
}
