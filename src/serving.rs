//! Serving the models Lepton trains: [`ArtifactLoader`] turns any artifact this crate writes
//! (a [`FittedModel`] or a [`TabularPredictor`]) into a model the prediction server
//! ([`lepton_deploy::server`]) can answer with, and fine-tune online (MLPs and linear
//! models; CNNs and forests are served but do not learn online yet).

use std::collections::BTreeMap;
use std::sync::Arc;

use lepton_core::{Features, Predict, Prediction, Schema};
use lepton_deploy::{Cell, Examples, ModelArtifact, ModelLoader, Servable, Tuning, encode_numbers};
use lepton_models::{Cpu, FineTuning};

use crate::{FittedModel, TabularPredictor};

/// Loads the artifacts Lepton writes for serving on the CPU backend: one with a fitted
/// preprocessor becomes a [`TabularPredictor`] (raw rows, categories and missing values
/// as the preprocessor handles them), one without a [`FittedModel`] (numbers in the schema's
/// column order).
#[derive(Debug, Clone, Copy, Default)]
pub struct ArtifactLoader;

impl ModelLoader for ArtifactLoader {
    fn load(&self, artifact: &ModelArtifact) -> lepton_core::Result<Arc<dyn Servable>> {
        let schema = artifact.manifest().input_schema.clone();
        if artifact.manifest().preprocessor.is_null() {
            let model = FittedModel::<Cpu>::from_artifact(artifact).map_err(core)?;
            Ok(Arc::new(ServedModel { model, schema }))
        } else {
            let predictor = TabularPredictor::<Cpu>::from_artifact(artifact).map_err(core)?;
            Ok(Arc::new(ServedPredictor { predictor, schema }))
        }
    }
}

fn core(e: crate::Error) -> lepton_core::Error {
    lepton_core::Error::stage(e)
}

/// A model that takes numbers as they come.
struct ServedModel {
    model: FittedModel<Cpu>,
    schema: Schema,
}

impl Predict for ServedModel {
    fn predict(&self, x: Features<'_>) -> lepton_core::Result<Vec<Prediction>> {
        self.model.predict(x)
    }
}

impl Servable for ServedModel {
    fn schema(&self) -> &Schema {
        &self.schema
    }
    fn width(&self) -> usize {
        self.schema.features.len()
    }
    fn encode(&self, row: &[Cell], out: &mut Vec<f32>) -> lepton_core::Result<()> {
        encode_numbers(&self.schema, row, out)
    }

    fn fine_tune(
        &self,
        examples: &Examples,
        tuning: &Tuning,
    ) -> lepton_core::Result<ModelArtifact> {
        let FittedModel::Mlp(mlp) = &self.model else {
            return Err(lepton_core::Error::InvalidInput(format!(
                "a {} model does not learn online (only MLP and linear models do)",
                self.model.family()
            )));
        };
        let tuned =
            FittedModel::<Cpu>::Mlp(Box::new(mlp.fine_tune(examples, fine_tuning(tuning))?));
        tuned
            .to_artifact(self.schema.clone(), BTreeMap::new())
            .map_err(core)
    }
}

fn fine_tuning(t: &Tuning) -> FineTuning {
    FineTuning {
        epochs: t.epochs,
        learning_rate: t.learning_rate,
        batch_size: t.batch_size,
        seed: t.seed,
    }
}

/// A model behind its fitted preprocessor.
struct ServedPredictor {
    predictor: TabularPredictor<Cpu>,
    schema: Schema,
}

impl Predict for ServedPredictor {
    fn predict(&self, x: Features<'_>) -> lepton_core::Result<Vec<Prediction>> {
        self.predictor.model().predict(x)
    }
}

impl Servable for ServedPredictor {
    fn schema(&self) -> &Schema {
        &self.schema
    }
    fn width(&self) -> usize {
        self.predictor.model().n_features()
    }
    fn encode(&self, row: &[Cell], out: &mut Vec<f32>) -> lepton_core::Result<()> {
        // The preprocessor reads records as text, the way a CSV row or a form gives them.
        let record: BTreeMap<String, String> = self
            .schema
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
        let features = self
            .predictor
            .preprocessor()
            .transform_record(&record)
            .map_err(lepton_core::Error::stage)?;
        out.extend(features);
        Ok(())
    }

    fn fine_tune(
        &self,
        examples: &Examples,
        tuning: &Tuning,
    ) -> lepton_core::Result<ModelArtifact> {
        let tuned = self
            .predictor
            .model()
            .fine_tune(examples, fine_tuning(tuning))?;
        TabularPredictor::new(self.predictor.preprocessor().clone(), tuned)
            .and_then(|p| p.to_artifact(BTreeMap::new()))
            .map_err(core)
    }
}
