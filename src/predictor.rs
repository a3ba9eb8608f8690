//! A fitted preprocessor and a fitted model that travel together.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use lepton_core::{Features, Predict, Prediction, Schema, Task};
use lepton_data::FittedStandardScaler;
use lepton_deploy::ModelArtifact;
use lepton_models::{Backend, Cpu, FittedMlp, MlpConfig, TrainingSummary};

use crate::error::{Error, Result};

/// The model family name recorded in artifacts of this predictor.
const FAMILY: &str = "mlp-classifier";

/// What an artifact's `model_config` holds for an MLP classifier.
#[derive(Debug, Serialize, Deserialize)]
struct MlpArtifactConfig {
    config: MlpConfig,
    n_features: usize,
    n_classes: usize,
    summary: TrainingSummary,
}

/// Raw rows in, labels out: the preprocessor fitted on the training rows, then the model.
/// This is exactly what serving runs, and it saves to and loads from a model artifact.
#[derive(Debug, Clone)]
pub struct TabularPredictor<B: Backend = Cpu> {
    schema: Schema,
    scaler: FittedStandardScaler,
    model: FittedMlp<B>,
}

impl<B: Backend> TabularPredictor<B> {
    /// Joins a fitted scaler and model; refuses parts fitted on different columns.
    pub fn new(schema: Schema, scaler: FittedStandardScaler, model: FittedMlp<B>) -> Result<Self> {
        let classes = match &schema.task {
            Task::Classification { classes } => classes.len(),
            Task::Regression => {
                return Err(Error::IncompatibleArtifact(
                    "the MLP classifier needs a classification schema".into(),
                ));
            }
        };
        if scaler.features() != schema.features.as_slice()
            || model.n_features() != schema.features.len()
            || model.n_classes() != classes
        {
            return Err(Error::IncompatibleArtifact(format!(
                "schema has {} features and {classes} classes, the scaler {} features, \
                 the model {} features and {} classes",
                schema.features.len(),
                scaler.features().len(),
                model.n_features(),
                model.n_classes()
            )));
        }
        Ok(TabularPredictor {
            schema,
            scaler,
            model,
        })
    }

    /// The raw input columns, the target and the class labels.
    pub fn schema(&self) -> &Schema {
        &self.schema
    }

    /// The fitted model.
    pub fn model(&self) -> &FittedMlp<B> {
        &self.model
    }

    /// Predicts raw, unscaled rows (row-major, in the schema's column order).
    pub fn predict_rows(&self, raw: &[f32]) -> Result<Vec<Prediction>> {
        let width = self.schema.features.len();
        Features::new(raw, width)?;
        let scaled = self.scaler.transform_rows(raw)?;
        Ok(self.model.predict(Features::new(&scaled, width)?)?)
    }

    /// Predicts raw rows and returns their class labels.
    pub fn predict_labels(&self, raw: &[f32]) -> Result<Vec<String>> {
        let Task::Classification { classes } = &self.schema.task else {
            return Err(Error::IncompatibleArtifact("not a classification".into()));
        };
        self.predict_rows(raw)?
            .iter()
            .map(|p| {
                p.class()
                    .and_then(|c| classes.get(c).cloned())
                    .ok_or_else(|| Error::IncompatibleArtifact(format!("prediction {p:?}")))
            })
            .collect()
    }

    /// Packs the predictor into an artifact with its evaluation `metrics`.
    pub fn to_artifact(&self, metrics: BTreeMap<String, f64>) -> Result<ModelArtifact> {
        let config = MlpArtifactConfig {
            config: self.model.config().clone(),
            n_features: self.model.n_features(),
            n_classes: self.model.n_classes(),
            summary: self.model.summary().clone(),
        };
        Ok(ModelArtifact::new(
            FAMILY,
            &config,
            &self.scaler,
            self.schema.clone(),
            metrics,
            self.model.weights_to_bytes()?,
        )?)
    }

    /// Rebuilds a predictor from an artifact; refuses other model families and configs that
    /// do not match the weights.
    pub fn from_artifact(artifact: &ModelArtifact) -> Result<Self> {
        let manifest = artifact.manifest();
        if manifest.model_family != FAMILY {
            return Err(Error::IncompatibleArtifact(format!(
                "model family `{}`, expected `{FAMILY}`",
                manifest.model_family
            )));
        }
        let c: MlpArtifactConfig = artifact.model_config()?;
        let model = FittedMlp::from_weights(
            c.config,
            c.n_features,
            c.n_classes,
            c.summary,
            artifact.weights().to_vec(),
        )?;
        Self::new(
            manifest.input_schema.clone(),
            artifact.preprocessor()?,
            model,
        )
    }

    /// Saves the predictor as an artifact directory.
    pub fn save(&self, dir: impl AsRef<Path>, metrics: BTreeMap<String, f64>) -> Result<()> {
        self.to_artifact(metrics)?.save(dir)?;
        Ok(())
    }

    /// Loads a predictor from an artifact directory, verifying it.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        Self::from_artifact(&ModelArtifact::load(dir)?)
    }
}

impl<B: Backend> Predict for TabularPredictor<B> {
    fn predict(&self, x: Features<'_>) -> lepton_core::Result<Vec<Prediction>> {
        self.predict_rows(x.values()).map_err(|e| match e {
            Error::Core(core) => core,
            other => lepton_core::Error::stage(other),
        })
    }
}
