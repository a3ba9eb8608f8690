//! A fitted text model and its class labels: raw documents in, labels and probabilities out.
//! It saves to and loads from one model artifact, whose input schema names one text column.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use lepton_core::{Prediction, Schema, Target, Task};
use lepton_data::TextCorpus;
use lepton_deploy::{Manifest, ModelArtifact};

use crate::automl::invalid;
use crate::error::{Error, Result};
use crate::predictor::class_names;
use crate::scores::{Scores, score_predictions};
use crate::text_family::{FittedText, TextFamily, TextFamilyKind};

/// The input column of a text model's schema, as requests name it.
pub const TEXT_COLUMN: &str = "text";
/// The target column of a text model's schema.
pub const LABEL_COLUMN: &str = "label";

/// A text model with the names of its classes. This is what serving a text model runs.
#[derive(Debug)]
pub struct TextPredictor {
    model: Box<dyn FittedText>,
    schema: Schema,
}

impl TextPredictor {
    /// `model` telling apart `classes` (in the model's order); refuses a model of another
    /// number of classes.
    pub fn new(model: Box<dyn FittedText>, classes: Vec<String>) -> Result<Self> {
        if model.classes() != classes.len() || classes.len() < 2 {
            return Err(Error::IncompatibleArtifact(format!(
                "a {} model of {} classes for {} class names",
                model.family(),
                model.classes(),
                classes.len()
            )));
        }
        Ok(TextPredictor {
            model,
            schema: Schema {
                features: vec![TEXT_COLUMN.to_owned()],
                target: LABEL_COLUMN.to_owned(),
                task: Task::Classification { classes },
            },
        })
    }

    /// The fitted model.
    pub fn model(&self) -> &dyn FittedText {
        self.model.as_ref()
    }

    /// The class names, in the order of the predictions' indices.
    pub fn classes(&self) -> &[String] {
        match &self.schema.task {
            Task::Classification { classes } => classes,
            Task::Regression => &[],
        }
    }

    /// The schema an artifact records: one text column, one label.
    pub fn input_schema(&self) -> &Schema {
        &self.schema
    }

    /// Each text's class and probabilities.
    pub fn predict<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Prediction>> {
        let texts: Vec<&str> = texts.iter().map(AsRef::as_ref).collect();
        Ok(self.model.predict_texts(&texts)?)
    }

    /// The class names of predictions.
    pub fn labels(&self, predictions: &[Prediction]) -> Result<Vec<String>> {
        class_names(self.classes(), predictions)
    }

    /// The targets of a labelled corpus in the model's class order, and the predictions of
    /// its documents; a class the model was not trained on is refused, naming it.
    pub fn predict_labelled(&self, corpus: &TextCorpus) -> Result<(Vec<Target>, Vec<Prediction>)> {
        let order: Vec<usize> =
            corpus
                .classes()
                .iter()
                .map(|name| {
                    self.classes().iter().position(|c| c == name).ok_or_else(|| {
                    invalid(format!(
                        "class `{name}` of the corpus was not trained on (the model knows {})",
                        self.classes().join(", ")
                    ))
                })
                })
                .collect::<Result<_>>()?;
        let targets = corpus
            .labels()
            .iter()
            .map(|&l| Target::Class(order[l]))
            .collect();
        Ok((targets, self.predict(corpus.texts())?))
    }

    /// Scores the model on a labelled corpus.
    pub fn score(&self, corpus: &TextCorpus) -> Result<Scores> {
        let (targets, predictions) = self.predict_labelled(corpus)?;
        Ok(score_predictions(&self.schema.task, &targets, &predictions)?.0)
    }

    /// Packs the model into an artifact with its evaluation `metrics`.
    pub fn to_artifact(&self, metrics: BTreeMap<String, f64>) -> Result<ModelArtifact> {
        Ok(ModelArtifact::new(
            self.model.family(),
            &self.model.config()?,
            &serde_json::Value::Null,
            self.schema.clone(),
            metrics,
            self.model.weights()?,
        )?)
    }

    /// Saves the model as an artifact directory.
    pub fn save(&self, dir: impl AsRef<Path>, metrics: BTreeMap<String, f64>) -> Result<()> {
        self.to_artifact(metrics)?.save(dir)?;
        Ok(())
    }

    /// Whether an artifact holds a model of a built-in text family.
    pub fn is_text_artifact(manifest: &Manifest) -> bool {
        TextFamilyKind::parse(&manifest.model_family).is_some()
    }

    /// Rebuilds a model of a built-in text family from an artifact.
    pub fn from_artifact(artifact: &ModelArtifact) -> Result<Self> {
        Self::from_artifact_with(artifact, &TextFamilyKind::all())
    }

    /// Rebuilds a model from an artifact with the first of `families` named by its
    /// `model_family`; refuses a schema that is not one text column and its classes.
    pub fn from_artifact_with(
        artifact: &ModelArtifact,
        families: &[Arc<dyn TextFamily>],
    ) -> Result<Self> {
        let manifest = artifact.manifest();
        let family = families
            .iter()
            .find(|f| f.name() == manifest.model_family)
            .ok_or_else(|| {
                Error::IncompatibleArtifact(format!(
                    "model family `{}` is not a text family given ({})",
                    manifest.model_family,
                    families
                        .iter()
                        .map(|f| f.name().to_owned())
                        .collect::<Vec<_>>()
                        .join(", ")
                ))
            })?;
        let model = family.load(&manifest.model_config, artifact.weights())?;
        let Task::Classification { classes } = &manifest.input_schema.task else {
            return Err(Error::IncompatibleArtifact(
                "a text model's schema must be a classification".into(),
            ));
        };
        let predictor = Self::new(model, classes.clone())?;
        if predictor.schema != manifest.input_schema {
            return Err(Error::IncompatibleArtifact(format!(
                "a text model's schema is one `{TEXT_COLUMN}` column and a `{LABEL_COLUMN}`, \
                 not {:?}",
                manifest.input_schema
            )));
        }
        Ok(predictor)
    }

    /// Loads a model of a built-in text family from an artifact directory, verifying it.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        Self::from_artifact(&ModelArtifact::load(dir)?)
    }
}
