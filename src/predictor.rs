//! A fitted model of any family and the preprocessing fitted with it: raw rows in, predictions
//! in the original labels out. It saves to and loads from one model artifact.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use lepton_core::{Features, Predict, Prediction, Schema, Target, Task};
use lepton_data::{Column, FittedPreprocessor, Table};
use lepton_deploy::ModelArtifact;
use lepton_models::{Cpu, Head};

use crate::builtin_family::Family;
use crate::ensemble::{ENSEMBLE, Ensemble};
use crate::error::{Error, Result};
use crate::family::{Fitted, ModelFamily, features_for};
use crate::scores::{Scores, score_predictions};

/// A model behind its fitted preprocessor (none for models that take numbers as they are,
/// such as images). This is exactly what serving runs.
#[derive(Debug)]
pub struct Predictor {
    preprocessor: Option<FittedPreprocessor>,
    model: Box<dyn Fitted>,
    schema: Schema,
}

impl Predictor {
    /// A model that takes raw table rows through `preprocessor`; refuses a model whose width
    /// or head does not fit the preprocessor's output.
    pub fn tabular(preprocessor: FittedPreprocessor, model: Box<dyn Fitted>) -> Result<Self> {
        let schema = Schema {
            features: preprocessor
                .inputs()
                .iter()
                .map(|(n, _)| (*n).to_owned())
                .collect(),
            target: preprocessor.target().to_owned(),
            task: preprocessor.task().clone(),
        };
        check_shape(model.as_ref(), preprocessor.features().len(), &schema.task)?;
        Ok(Predictor {
            preprocessor: Some(preprocessor),
            model,
            schema,
        })
    }

    /// A model that takes the numbers of `schema`'s columns as they are; refuses a model
    /// whose width or head does not fit the schema.
    pub fn numeric(model: Box<dyn Fitted>, schema: Schema) -> Result<Self> {
        check_shape(model.as_ref(), schema.features.len(), &schema.task)?;
        Ok(Predictor {
            preprocessor: None,
            model,
            schema,
        })
    }

    /// The raw input columns (with the target and the task) this predictor expects.
    pub fn input_schema(&self) -> &Schema {
        &self.schema
    }

    /// The fitted preprocessor, if the model has one.
    pub fn preprocessor(&self) -> Option<&FittedPreprocessor> {
        self.preprocessor.as_ref()
    }

    /// The fitted model.
    pub fn model(&self) -> &dyn Fitted {
        self.model.as_ref()
    }

    /// The model's input width (after preprocessing).
    pub fn width(&self) -> usize {
        self.model.shape().0
    }

    /// Predicts every row of a raw table (with or without its target column; other columns
    /// than the inputs are refused, naming them).
    pub fn predict_table(&self, table: &Table) -> Result<Vec<Prediction>> {
        let features = self.encode_table(table)?;
        self.predict_encoded(&features)
    }

    /// Predicts raw records given as text by column name (a JSON body, a CSV row).
    pub fn predict_records(&self, records: &[BTreeMap<String, String>]) -> Result<Vec<Prediction>> {
        let mut features = Vec::with_capacity(records.len() * self.width());
        for (row, record) in records.iter().enumerate() {
            match &self.preprocessor {
                Some(p) => features.extend(p.transform_record(record)?),
                None => {
                    for name in &self.schema.features {
                        let text = record.get(name).map(|t| t.trim()).unwrap_or_default();
                        let x: f32 = text
                            .parse()
                            .ok()
                            .filter(|x: &f32| x.is_finite())
                            .ok_or_else(|| {
                                invalid(format!(
                                    "record {row}, column `{name}`: `{text}` is not a finite number"
                                ))
                            })?;
                        features.push(x);
                    }
                }
            }
        }
        self.predict_encoded(&features)
    }

    /// Predicts rows already encoded as the model takes them (the preprocessor's output;
    /// NaN, a missing value, only for a model that [accepts](Fitted::accepts_missing) it).
    pub fn predict_encoded(&self, features: &[f32]) -> Result<Vec<Prediction>> {
        let x = features_for(self.model.as_ref(), features, self.width())?;
        Ok(self.model.predict(x)?)
    }

    /// The original class labels of classification predictions.
    pub fn labels(&self, predictions: &[Prediction]) -> Result<Vec<String>> {
        let Task::Classification { classes } = &self.schema.task else {
            return Err(Error::IncompatibleArtifact("not a classification".into()));
        };
        class_names(classes, predictions)
    }

    /// Scores the predictor on a held-out table that has the target column.
    pub fn score(&self, table: &Table) -> Result<Scores> {
        let (targets, predictions) = self.predict_labelled(table)?;
        Ok(score_predictions(&self.schema.task, &targets, &predictions)?.0)
    }

    /// The targets of a table that has the target column, encoded as the model's, and the
    /// predictions of its rows: the table goes through the preprocessor once.
    pub fn predict_labelled(&self, table: &Table) -> Result<(Vec<Target>, Vec<Prediction>)> {
        let (features, targets) = match &self.preprocessor {
            Some(p) => {
                let data = p.transform(table)?;
                (data.feature_values().to_vec(), data.targets().to_vec())
            }
            None => (self.encode_table(table)?, self.numeric_targets(table)?),
        };
        Ok((targets, self.predict_encoded(&features)?))
    }

    /// The target column of a table for a model without a preprocessor.
    fn numeric_targets(&self, table: &Table) -> Result<Vec<Target>> {
        let column = table.column(&self.schema.target).ok_or_else(|| {
            invalid(format!(
                "{}: no target column `{}`",
                table.source(),
                self.schema.target
            ))
        })?;
        let missing = |row: usize| {
            invalid(format!(
                "{}, row {row}: the target `{}` is missing",
                table.source(),
                self.schema.target
            ))
        };
        match (&self.schema.task, column) {
            (Task::Regression, Column::Numeric(v)) => v
                .iter()
                .enumerate()
                .map(|(i, x)| x.map(Target::Value).ok_or_else(|| missing(i)))
                .collect(),
            (Task::Classification { classes }, Column::Numeric(v)) => v
                .iter()
                .enumerate()
                .map(|(i, x)| {
                    let x = x.ok_or_else(|| missing(i))?;
                    classes
                        .iter()
                        .position(|c| c.parse::<f64>().ok() == Some(x))
                        .map(Target::Class)
                        .ok_or_else(|| invalid(format!("row {i}: class {x} was not trained on")))
                })
                .collect(),
            (_, other) => Err(invalid(format!(
                "{}: target `{}` is {:?}",
                table.source(),
                self.schema.target,
                other.column_type()
            ))),
        }
    }

    fn encode_table(&self, table: &Table) -> Result<Vec<f32>> {
        if let Some(p) = &self.preprocessor {
            let has_target = table.column(p.target()).is_some();
            return Ok(if has_target {
                p.transform(table)?.feature_values().to_vec()
            } else {
                p.transform_features(table)?
            });
        }
        let rows = table.n_rows();
        let width = self.schema.features.len();
        let mut out = vec![0f32; rows * width];
        for (j, name) in self.schema.features.iter().enumerate() {
            let Some(Column::Numeric(values)) = table.column(name) else {
                return Err(invalid(format!(
                    "{}: column `{name}` is missing or not numeric",
                    table.source()
                )));
            };
            for (i, x) in values.iter().enumerate() {
                out[i * width + j] = x.ok_or_else(|| {
                    invalid(format!(
                        "{}, row {i}: `{name}` is missing (this model has no imputation)",
                        table.source()
                    ))
                })? as f32;
            }
        }
        Ok(out)
    }

    /// Packs the predictor into an artifact with its evaluation `metrics`. It carries no
    /// replay sample, which online learning needs: add one with
    /// [`ModelArtifact::with_replay`] ([`AutoMlRun::to_artifact`](crate::AutoMlRun::to_artifact)
    /// adds the run's).
    pub fn to_artifact(&self, metrics: BTreeMap<String, f64>) -> Result<ModelArtifact> {
        let config = self.model.config()?;
        Ok(ModelArtifact::new(
            self.model.family(),
            &config,
            &self.preprocessor,
            self.schema.clone(),
            metrics,
            self.model.weights()?,
        )?)
    }

    /// Rebuilds a predictor of a built-in family (on the CPU) from an artifact.
    pub fn from_artifact(artifact: &ModelArtifact) -> Result<Self> {
        Self::from_artifact_with(artifact, &Family::all_on::<Cpu>())
    }

    /// Rebuilds a predictor from an artifact with the first of `families` that loads its
    /// `model_family` (pass your own families, and [`Family::all_on`] for the built-ins on
    /// a backend; an [`Ensemble`]'s members each with the first that loads it); refuses
    /// configurations that do not match the weights, and a schema whose width or classes
    /// disagree with the model.
    pub fn from_artifact_with(
        artifact: &ModelArtifact,
        families: &[Arc<dyn ModelFamily>],
    ) -> Result<Self> {
        let manifest = artifact.manifest();
        let model = if manifest.model_family == ENSEMBLE {
            Box::new(Ensemble::load(
                &manifest.model_config,
                artifact.weights(),
                families,
            )?)
        } else {
            let family = families
                .iter()
                .find(|f| f.loads(&manifest.model_family))
                .ok_or_else(|| {
                    Error::IncompatibleArtifact(format!(
                        "model family `{}`: none of the families given ({}) loads it",
                        manifest.model_family,
                        families
                            .iter()
                            .map(|f| f.name().to_owned())
                            .collect::<Vec<_>>()
                            .join(", ")
                    ))
                })?;
            family.load(&manifest.model_config, artifact.weights())?
        };
        if model.family() != manifest.model_family {
            return Err(Error::IncompatibleArtifact(format!(
                "the weights are of a {} model, the manifest says `{}`",
                model.family(),
                manifest.model_family
            )));
        }
        let predictor = if manifest.preprocessor.is_null() {
            Self::numeric(model, manifest.input_schema.clone())?
        } else {
            Self::tabular(artifact.preprocessor()?, model)?
        };
        if predictor.schema != manifest.input_schema {
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

    /// Loads a predictor of a built-in family from an artifact directory, verifying it.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        Self::from_artifact(&ModelArtifact::load(dir)?)
    }

    /// Loads a predictor with `families` (see [`from_artifact_with`](Self::from_artifact_with)).
    pub fn load_with(dir: impl AsRef<Path>, families: &[Arc<dyn ModelFamily>]) -> Result<Self> {
        Self::from_artifact_with(&ModelArtifact::load(dir)?, families)
    }
}

impl Predict for Predictor {
    /// Predicts rows encoded as the model takes them (see [`Predictor::predict_table`] for raw
    /// rows).
    fn predict(&self, x: Features<'_>) -> lepton_core::Result<Vec<Prediction>> {
        self.model.predict(x)
    }
}

/// The names among `classes` of classification predictions (an error for another kind, or
/// a class beyond them).
pub(crate) fn class_names(classes: &[String], predictions: &[Prediction]) -> Result<Vec<String>> {
    predictions
        .iter()
        .map(|p| {
            p.class()
                .and_then(|c| classes.get(c).cloned())
                .ok_or_else(|| Error::IncompatibleArtifact(format!("prediction {p:?}")))
        })
        .collect()
}

/// Refuses a model whose input width or output head does not fit `width` inputs and `task`.
fn check_shape(model: &dyn Fitted, width: usize, task: &Task) -> Result<()> {
    let (inputs, head) = model.shape();
    let head_ok = match (task, head) {
        (Task::Classification { classes }, Head::Classes { count }) => classes.len() == count,
        (Task::Regression, Head::Value { .. }) => true,
        _ => false,
    };
    if inputs != width || !head_ok {
        return Err(Error::IncompatibleArtifact(format!(
            "a {} model of {inputs} inputs and head {head:?} does not fit {width} input \
             features for {task:?}",
            model.family()
        )));
    }
    Ok(())
}

fn invalid(message: String) -> Error {
    lepton_core::Error::InvalidInput(message).into()
}
