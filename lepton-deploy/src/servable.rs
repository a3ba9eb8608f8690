//! What the prediction server needs from a model: its schema, a way to turn raw request rows
//! into model inputs, and prediction on a batch of those inputs. The server knows nothing of
//! burn; the `lepton` crate implements [`ModelLoader`] for the models it trains, and any other
//! model can be served by implementing these two traits.

use std::sync::Arc;

use lepton_core::{Features, Predict, Prediction, Schema};

use crate::artifact::ModelArtifact;
use crate::labelled::Examples;

/// One value of a request row, as JSON gave it.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// A JSON number.
    Number(f64),
    /// A JSON string (a category, a boolean, or a number written as text).
    Text(String),
    /// JSON `null` or an absent column: a missing value.
    Missing,
}

/// The rows of requests as a model takes them.
#[derive(Debug, Clone, PartialEq)]
pub enum Inputs {
    /// [`Servable::width`] numbers per row, as [`Servable::encode`] makes them.
    Numbers(Vec<f32>),
    /// One raw text per row, for a model that [takes texts](Servable::takes_texts).
    Texts(Vec<String>),
}

impl Inputs {
    /// The predictions of `model` for these rows (checked: numbers must have the model's
    /// width and, unless it accepts them, no missing value).
    pub fn predict(&self, model: &dyn Servable) -> lepton_core::Result<Vec<Prediction>> {
        match self {
            Inputs::Numbers(values) => model.predict(Features::checked(
                values,
                model.width(),
                model.accepts_missing(),
            )?),
            Inputs::Texts(texts) => model.predict_texts(texts),
        }
    }
}

/// A model the server can serve.
///
/// Encoding is separate from prediction so that the server can check each request's rows on
/// its own (a bad row fails its request, not its batch) and then run the rows of many
/// requests through the model as one batch.
///
/// A model of raw texts (its schema one text column) says it [takes texts](Self::takes_texts):
/// the server then gives it each row's text through [`predict_texts`](Self::predict_texts),
/// and never calls its [`encode`](Self::encode) or [`Predict::predict`].
pub trait Servable: Predict + Send + Sync {
    /// The raw input columns (in the order [`encode`](Servable::encode) takes them), the
    /// target, and the class labels.
    fn schema(&self) -> &Schema;
    /// The number of model inputs one encoded row has.
    fn width(&self) -> usize;
    /// Appends the model inputs of one raw row (cells in schema order) to `out`, or says
    /// what is wrong with it (a missing value the model cannot take, text where a number
    /// belongs, a non-finite number, an unknown category).
    fn encode(&self, row: &[Cell], out: &mut Vec<f32>) -> lepton_core::Result<()>;
    /// Whether encoded rows may hold NaN, a missing value the model splits on itself
    /// (boosted trees); otherwise the server refuses such rows before prediction.
    fn accepts_missing(&self) -> bool {
        false
    }

    /// Whether each row is one raw text (the schema's single column), predicted by
    /// [`predict_texts`](Self::predict_texts).
    fn takes_texts(&self) -> bool {
        false
    }

    /// Each raw text's prediction, for a model that [takes texts](Self::takes_texts); other
    /// models refuse texts (the default).
    fn predict_texts(&self, texts: &[String]) -> lepton_core::Result<Vec<Prediction>> {
        let _ = texts;
        Err(lepton_core::Error::InvalidInput(
            "this model does not read raw texts".into(),
        ))
    }

    /// A copy trained further on `examples` (encoded rows, as [`encode`](Servable::encode)
    /// makes them), packed as an artifact with this model's schema and preprocessing; this
    /// model is unchanged. Models that cannot learn online say so (the default).
    fn fine_tune(
        &self,
        examples: &Examples,
        tuning: &Tuning,
    ) -> lepton_core::Result<ModelArtifact> {
        let _ = (examples, tuning);
        Err(lepton_core::Error::InvalidInput(
            "this model does not support fine-tuning".into(),
        ))
    }
}

/// How a candidate is fine-tuned on feedback: a few epochs at a constant rate.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Tuning {
    /// Passes over the examples.
    pub epochs: usize,
    /// The optimizer's learning rate.
    pub learning_rate: f64,
    /// Rows per mini-batch.
    pub batch_size: usize,
    /// Seed for shuffling.
    pub seed: u64,
}

impl Default for Tuning {
    /// Three epochs at 1e-3 in batches of 32.
    fn default() -> Self {
        Tuning {
            epochs: 3,
            learning_rate: 1e-3,
            batch_size: 32,
            seed: 0,
        }
    }
}

/// Builds a servable model from a verified artifact.
pub trait ModelLoader: Send + Sync + 'static {
    /// The model the artifact holds, or why it cannot be served.
    fn load(&self, artifact: &ModelArtifact) -> lepton_core::Result<Arc<dyn Servable>>;
}

/// Encodes rows whose cells are all finite numbers, as a model without a preprocessor takes
/// them: the helper for [`Servable::encode`] of such models.
pub fn encode_numbers(
    schema: &Schema,
    row: &[Cell],
    out: &mut Vec<f32>,
) -> lepton_core::Result<()> {
    use lepton_core::Error;
    for (cell, name) in row.iter().zip(&schema.features) {
        let value = match cell {
            Cell::Number(x) => *x,
            Cell::Text(t) => t.trim().parse::<f64>().map_err(|_| {
                Error::InvalidInput(format!("column `{name}`: `{t}` is not a number"))
            })?,
            Cell::Missing => {
                return Err(Error::InvalidInput(format!(
                    "column `{name}`: missing value (this model has no imputation)"
                )));
            }
        };
        if !value.is_finite() || value.abs() > f64::from(f32::MAX) {
            return Err(Error::InvalidInput(format!(
                "column `{name}`: {value} is not a finite number"
            )));
        }
        out.push(value as f32);
    }
    Ok(())
}
