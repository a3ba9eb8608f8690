//! A fitted preprocessor and a fitted model that travel together.

use std::collections::BTreeMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use lepton_core::{Features, Predict, Prediction, Schema, Task};
use lepton_data::{FittedPreprocessor, Table};
use lepton_deploy::ModelArtifact;
use lepton_models::{Backend, Cpu, FittedMlp, Head, MlpConfig, TrainingSummary};

use crate::error::{Error, Result};
use crate::scores::{Scores, score_predictions};

/// The model family name recorded in artifacts of this predictor.
const FAMILY: &str = "mlp";

/// What an artifact's `model_config` holds for an MLP.
#[derive(Debug, Serialize, Deserialize)]
struct MlpArtifactConfig {
    config: MlpConfig,
    n_features: usize,
    head: Head,
    summary: TrainingSummary,
}

/// Raw rows in, predictions out: the preprocessor fitted on the training rows, then the
/// model. This is exactly what serving runs, and it saves to and loads from a model artifact.
#[derive(Debug, Clone)]
pub struct TabularPredictor<B: Backend = Cpu> {
    preprocessor: FittedPreprocessor,
    model: FittedMlp<B>,
}

impl<B: Backend> TabularPredictor<B> {
    /// Joins a fitted preprocessor and model; refuses a model that does not fit the
    /// preprocessor's output width or task.
    pub fn new(preprocessor: FittedPreprocessor, model: FittedMlp<B>) -> Result<Self> {
        let width = preprocessor.features().len();
        let head_ok = match (preprocessor.task(), model.head()) {
            (Task::Classification { classes }, Head::Classes { count }) => classes.len() == count,
            (Task::Regression, Head::Value { .. }) => true,
            _ => false,
        };
        if model.n_features() != width || !head_ok {
            return Err(Error::IncompatibleArtifact(format!(
                "the preprocessor makes {width} features for {:?}, the model takes {} features \
                 with head {:?}",
                preprocessor.task(),
                model.n_features(),
                model.head()
            )));
        }
        Ok(TabularPredictor {
            preprocessor,
            model,
        })
    }

    /// The raw input columns (with the target and the task) this predictor expects.
    pub fn input_schema(&self) -> Schema {
        Schema {
            features: self
                .preprocessor
                .inputs()
                .iter()
                .map(|(n, _)| (*n).to_owned())
                .collect(),
            target: self.preprocessor.target().to_owned(),
            task: self.preprocessor.task().clone(),
        }
    }

    /// The fitted preprocessor.
    pub fn preprocessor(&self) -> &FittedPreprocessor {
        &self.preprocessor
    }

    /// The fitted model.
    pub fn model(&self) -> &FittedMlp<B> {
        &self.model
    }

    /// Predicts every row of a raw table (with or without its target column).
    pub fn predict_table(&self, table: &Table) -> Result<Vec<Prediction>> {
        let has_target = table.column(self.preprocessor.target()).is_some();
        let features = if has_target {
            self.preprocessor
                .transform(table)?
                .feature_values()
                .to_vec()
        } else {
            self.preprocessor.transform_features(table)?
        };
        self.predict_features(&features)
    }

    /// Predicts raw records given as text by column name (a JSON body, a CSV row).
    pub fn predict_records(&self, records: &[BTreeMap<String, String>]) -> Result<Vec<Prediction>> {
        let mut features = Vec::with_capacity(records.len() * self.model.n_features());
        for record in records {
            features.extend(self.preprocessor.transform_record(record)?);
        }
        self.predict_features(&features)
    }

    fn predict_features(&self, features: &[f32]) -> Result<Vec<Prediction>> {
        Ok(self
            .model
            .predict(Features::new(features, self.model.n_features())?)?)
    }

    /// The original class labels of classification predictions.
    pub fn labels(&self, predictions: &[Prediction]) -> Result<Vec<String>> {
        let Task::Classification { classes } = self.preprocessor.task() else {
            return Err(Error::IncompatibleArtifact("not a classification".into()));
        };
        predictions
            .iter()
            .map(|p| {
                p.class()
                    .and_then(|c| classes.get(c).cloned())
                    .ok_or_else(|| Error::IncompatibleArtifact(format!("prediction {p:?}")))
            })
            .collect()
    }

    /// Scores the predictor on a held-out table that has the target column.
    pub fn score(&self, table: &Table) -> Result<Scores> {
        let data = self.preprocessor.transform(table)?;
        let predictions = self.predict_features(data.feature_values())?;
        Ok(score_predictions(self.preprocessor.task(), data.targets(), &predictions)?.0)
    }

    /// Packs the predictor into an artifact with its evaluation `metrics`. It carries no
    /// replay sample, which online learning needs:
    /// [`TabularRun::to_artifact`](crate::TabularRun::to_artifact) adds the run's, or add one
    /// with [`ModelArtifact::with_replay`].
    pub fn to_artifact(&self, metrics: BTreeMap<String, f64>) -> Result<ModelArtifact> {
        let config = MlpArtifactConfig {
            config: self.model.config().clone(),
            n_features: self.model.n_features(),
            head: self.model.head(),
            summary: self.model.summary().clone(),
        };
        Ok(ModelArtifact::new(
            FAMILY,
            &config,
            &self.preprocessor,
            self.input_schema(),
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
            c.head,
            c.summary,
            artifact.weights().to_vec(),
        )?;
        let predictor = Self::new(artifact.preprocessor()?, model)?;
        if predictor.input_schema() != manifest.input_schema {
            return Err(Error::IncompatibleArtifact(
                "the manifest's input schema disagrees with its preprocessor".into(),
            ));
        }
        Ok(predictor)
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
