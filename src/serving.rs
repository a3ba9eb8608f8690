//! Serving the models Lepton trains: [`ArtifactLoader`] turns any artifact this crate writes
//! (a [`Predictor`] of a built-in family, or a [`TextPredictor`] taking raw texts) into a
//! model the prediction server
//! ([`lepton_deploy::server`]) can answer with, and fine-tune online (MLPs and linear
//! models, and ensembles of them such as bagged fold models, each member on its slice of the
//! input; CNNs and trees are served but do not learn online yet).

use std::collections::BTreeMap;
use std::sync::Arc;

use lepton_core::{Features, Predict, Prediction, Schema};
use lepton_deploy::{Cell, Examples, ModelArtifact, ModelLoader, Servable, Tuning, encode_numbers};
use lepton_models::{Cpu, FineTuning};

use crate::{Ensemble, Fitted, FittedModel, Predictor, TextPredictor};

/// Loads the artifacts Lepton writes, of the built-in families, for serving on the CPU
/// backend: a [`Predictor`] with its preprocessor (raw rows, categories and missing values
/// as the preprocessor handles them) or without one (numbers in the schema's column order).
#[derive(Debug, Clone, Copy, Default)]
pub struct ArtifactLoader;

impl ModelLoader for ArtifactLoader {
    fn load(&self, artifact: &ModelArtifact) -> lepton_core::Result<Arc<dyn Servable>> {
        if TextPredictor::is_text_artifact(artifact.manifest()) {
            let predictor = TextPredictor::from_artifact(artifact).map_err(core)?;
            return Ok(Arc::new(ServedText(predictor)));
        }
        let predictor = Predictor::from_artifact(artifact).map_err(core)?;
        Ok(Arc::new(Served(predictor)))
    }
}

fn core(e: crate::Error) -> lepton_core::Error {
    lepton_core::Error::stage(e)
}

fn fine_tuning(t: &Tuning) -> FineTuning {
    FineTuning {
        epochs: t.epochs,
        learning_rate: t.learning_rate,
        batch_size: t.batch_size,
        seed: t.seed,
    }
}

/// `model` fine-tuned on `examples`, when it is an MLP or a linear model.
fn fine_tuned(
    model: &dyn Fitted,
    examples: &Examples,
    tuning: &Tuning,
) -> lepton_core::Result<Box<dyn Fitted>> {
    let Some(FittedModel::<Cpu>::Mlp(mlp)) = model.as_any().downcast_ref::<FittedModel<Cpu>>()
    else {
        return Err(lepton_core::Error::InvalidInput(format!(
            "a {} model does not learn online (only MLP and linear models, and ensembles of \
             them, do)",
            model.family()
        )));
    };
    Ok(Box::new(FittedModel::<Cpu>::Mlp(Box::new(
        mlp.fine_tune(examples, fine_tuning(tuning))?,
    ))))
}

/// A predictor being served.
struct Served(Predictor);

impl Predict for Served {
    fn predict(&self, x: Features<'_>) -> lepton_core::Result<Vec<Prediction>> {
        self.0.predict(x)
    }
}

impl Servable for Served {
    fn schema(&self) -> &Schema {
        self.0.input_schema()
    }
    fn width(&self) -> usize {
        self.0.width()
    }
    fn encode(&self, row: &[Cell], out: &mut Vec<f32>) -> lepton_core::Result<()> {
        let Some(preprocessor) = self.0.preprocessor() else {
            return encode_numbers(self.schema(), row, out);
        };
        // The preprocessor reads records as text, the way a CSV row or a form gives them.
        let record: BTreeMap<String, String> = self
            .schema()
            .features
            .iter()
            .zip(row)
            .map(|(name, cell)| {
                let text = match cell {
                    Cell::Number(x) => x.to_string(),
                    Cell::Text(t) => t.clone(),
                    Cell::Missing => String::new(),
                };
                (name.clone(), text)
            })
            .collect();
        let features = preprocessor
            .transform_record(&record)
            .map_err(lepton_core::Error::stage)?;
        out.extend(features);
        Ok(())
    }

    fn accepts_missing(&self) -> bool {
        self.0.model().accepts_missing()
    }

    fn fine_tune(
        &self,
        examples: &Examples,
        tuning: &Tuning,
    ) -> lepton_core::Result<ModelArtifact> {
        let model = self.0.model();
        let tuned: Box<dyn Fitted> = match model.as_any().downcast_ref::<Ensemble>() {
            Some(ensemble) => Box::new(
                ensemble
                    .remade(|member, columns| {
                        fine_tuned(member, &examples.columns(columns), tuning)
                            .map_err(crate::Error::from)
                    })
                    .map_err(core)?,
            ),
            None => fine_tuned(model, examples, tuning)?,
        };
        let predictor = match self.0.preprocessor() {
            Some(p) => Predictor::tabular(p.clone(), tuned),
            None => Predictor::numeric(tuned, self.schema().clone()),
        };
        predictor
            .and_then(|p| p.to_artifact(BTreeMap::new()))
            .map_err(core)
    }
}

/// A text predictor being served: each request row is one raw text.
struct ServedText(TextPredictor);

/// What a text model says when asked for numbers.
fn texts_only() -> lepton_core::Error {
    lepton_core::Error::InvalidInput("a text model reads raw texts, not numbers".into())
}

impl Predict for ServedText {
    fn predict(&self, _: Features<'_>) -> lepton_core::Result<Vec<Prediction>> {
        Err(texts_only())
    }
}

impl Servable for ServedText {
    fn schema(&self) -> &Schema {
        self.0.input_schema()
    }
    /// Its one column, the text.
    fn width(&self) -> usize {
        1
    }
    fn encode(&self, _: &[Cell], _: &mut Vec<f32>) -> lepton_core::Result<()> {
        Err(texts_only())
    }
    fn takes_texts(&self) -> bool {
        true
    }
    fn predict_texts(&self, texts: &[String]) -> lepton_core::Result<Vec<Prediction>> {
        self.0.predict(texts).map_err(core)
    }
}
