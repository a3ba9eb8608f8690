//! The families Lepton ships: linear models, MLPs, CNNs (images), forests and boosted trees,
//! each a [`ModelFamily`] on a burn backend.

use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use lepton_core::{
    Error as CoreError, ParamValue, Result as CoreResult, Schema, SearchSpace, Task, Trial,
    TrialContext,
};
use lepton_data::{CategoricalEncoding, Imputation, Preprocessor, Scaling};
use lepton_models::{
    Backend, BoostedConfig, BoostedModel, BoostedSpace, CnnClassifier, CnnConfig, CnnSpace,
    ForestConfig, ForestModel, ForestSpace, LinearSpace, MlpClassifier, MlpConfig, MlpRegressor,
    MlpSpace, TrainingRun,
};

use crate::error::{Error, Result};
use crate::family::{Fitted, ModelFamily, TrainRequest};
use crate::fitted_model::FittedModel;

/// A model family Lepton ships (each is a [`ModelFamily`] through [`Family::on`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Logistic or least-squares regression ([`LinearSpace`]).
    Linear,
    /// A multi-layer perceptron ([`MlpSpace`]).
    Mlp,
    /// A convolutional network for images, classification only ([`CnnSpace`]).
    Cnn,
    /// A random forest or extra trees ([`ForestSpace`]).
    Forest,
    /// Gradient-boosted trees, usually the strongest on tables ([`BoostedSpace`]).
    Boosted,
}

impl Family {
    /// Every family.
    pub const ALL: [Family; 5] = [
        Family::Linear,
        Family::Mlp,
        Family::Cnn,
        Family::Forest,
        Family::Boosted,
    ];

    /// The name used in the search space and in artifacts.
    pub fn name(self) -> &'static str {
        match self {
            Family::Linear => "linear",
            Family::Mlp => "mlp",
            Family::Cnn => "cnn",
            Family::Forest => "forest",
            Family::Boosted => "boosted",
        }
    }

    /// The family called `name`.
    pub fn parse(name: &str) -> Option<Family> {
        Family::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The family on backend `B`; a CNN takes `image` (height, width) rows.
    pub fn on<B: Backend>(self, image: Option<(usize, usize)>) -> Arc<dyn ModelFamily> {
        Arc::new(BuiltinFamily::<B> {
            family: self,
            image,
            backend: PhantomData,
        })
    }

    /// Every family on backend `B`, as artifacts need them to load (a CNN's image size is in
    /// its configuration).
    pub fn all_on<B: Backend>() -> Vec<Arc<dyn ModelFamily>> {
        Family::ALL.into_iter().map(|f| f.on::<B>(None)).collect()
    }
}

/// A built-in family on backend `B`.
struct BuiltinFamily<B: Backend> {
    family: Family,
    image: Option<(usize, usize)>,
    backend: PhantomData<fn() -> B>,
}

impl<B: Backend> BuiltinFamily<B> {
    /// The configuration for `request`'s parameters, epochs and seed.
    fn candidate(&self, request: &TrainRequest<'_>) -> lepton_models::Result<Candidate> {
        let params = &request.params;
        let (epochs, patience) = (request.max_epochs, request.patience);
        Ok(match self.family {
            Family::Linear | Family::Mlp => {
                let mut c = if self.family == Family::Linear {
                    LinearSpace::config()
                } else {
                    MlpConfig::default()
                };
                c.optimizer.schedule = request.schedule;
                Candidate::Mlp(
                    c.with_params(params)?
                        .with_max_epochs(epochs)
                        .with_patience(patience)
                        .with_seed(request.seed),
                )
            }
            Family::Cnn => {
                let (h, w) = self.image.unwrap_or((0, 0));
                let mut c = CnnConfig::default().with_image_size(h, w);
                c.optimizer.schedule = request.schedule;
                Candidate::Cnn(
                    c.with_params(params)?
                        .with_max_epochs(epochs)
                        .with_patience(patience)
                        .with_seed(request.seed),
                )
            }
            // Trees are grown once: there are no epochs.
            Family::Forest => Candidate::Forest(
                ForestConfig::default()
                    .with_params(params)?
                    .with_seed(request.seed),
            ),
            // A round is an epoch: early stopping picks the rounds on validation rows; without
            // them (a refit), the request's epochs are the rounds.
            Family::Boosted => {
                let mut c = BoostedConfig::default()
                    .with_params(params)?
                    .with_seed(request.seed);
                if request.valid.is_empty() {
                    c.max_rounds = epochs.clamp(1, c.max_rounds);
                }
                Candidate::Boosted(c)
            }
        })
    }
}

/// A family's configuration, ready to train.
enum Candidate {
    Mlp(MlpConfig),
    Cnn(CnnConfig),
    Forest(ForestConfig),
    Boosted(BoostedConfig),
}

impl<B: Backend> ModelFamily for BuiltinFamily<B> {
    fn name(&self) -> &str {
        self.family.name()
    }

    fn supports(&self, schema: &Schema) -> Result<bool> {
        if self.family != Family::Cnn {
            return Ok(true);
        }
        let Some((h, w)) = self.image else {
            return Err(CoreError::InvalidParameter {
                name: "families".into(),
                reason: "the CNN needs an image size (AutoMl::for_images)".into(),
            }
            .into());
        };
        if schema.features.len() != h * w {
            return Err(CoreError::InvalidInput(format!(
                "rows have {} values, {h}x{w} images need {}",
                schema.features.len(),
                h * w
            ))
            .into());
        }
        // CNNs here classify; a regression searches the others.
        Ok(matches!(schema.task, Task::Classification { .. }))
    }

    fn suggest(&self, trial: &mut Trial) -> CoreResult<()> {
        match self.family {
            Family::Linear => LinearSpace.suggest(trial),
            Family::Mlp => MlpSpace.suggest(trial),
            Family::Cnn => CnnSpace.suggest(trial),
            Family::Forest => ForestSpace.suggest(trial),
            Family::Boosted => BoostedSpace.suggest(trial),
        }
    }

    fn defaults(&self) -> BTreeMap<String, ParamValue> {
        match self.family {
            Family::Linear => LinearSpace::defaults(),
            Family::Mlp => MlpSpace::defaults(),
            Family::Cnn => CnnSpace::defaults(),
            Family::Forest => ForestSpace::defaults(),
            Family::Boosted => BoostedSpace::defaults(),
        }
    }

    fn preprocessing(&self, run: &Preprocessor) -> Preprocessor {
        match self.family {
            // Missing values and categories go to the trees as they are (NaN, category
            // codes); the binning keeps a column's most frequent categories (every one up to
            // 255, then until they cover 99 % of its values, at most 4,095).
            Family::Forest | Family::Boosted => Preprocessor {
                imputation: Imputation::Keep,
                missing_indicators: false,
                scaling: Scaling::None,
                categorical: CategoricalEncoding::Native,
                max_categories: usize::MAX,
                ..run.clone()
            },
            _ => run.clone(),
        }
    }

    fn train(
        &self,
        request: &TrainRequest<'_>,
        ctx: &mut dyn TrialContext,
    ) -> CoreResult<Box<dyn Fitted>> {
        let candidate = self.candidate(request)?;
        // No limit: one longer than any run.
        let limit = request.time_limit.unwrap_or(Duration::MAX);
        let (train, valid) = (request.train, request.valid);
        let model: FittedModel<B> = match candidate {
            Candidate::Mlp(c) => match train.schema().task {
                Task::Classification { .. } => FittedModel::Mlp(Box::new(
                    limited(MlpClassifier::<B>::new(c)?, limit, request)
                        .train(train, valid, ctx)?,
                )),
                Task::Regression => FittedModel::Mlp(Box::new(
                    limited(MlpRegressor::<B>::new(c)?, limit, request).train(train, valid, ctx)?,
                )),
            },
            Candidate::Cnn(c) => FittedModel::Cnn(Box::new(
                limited(CnnClassifier::<B>::new(c)?, limit, request).train(train, valid, ctx)?,
            )),
            Candidate::Forest(c) => FittedModel::Forest(Box::new(
                ForestModel::new(c)?
                    .with_categorical(request.categorical.clone())
                    .with_time_limit(request.time_limit)
                    .train(train, valid, ctx)?,
            )),
            Candidate::Boosted(c) => FittedModel::Boosted(Box::new(
                BoostedModel::new(c)?
                    .with_categorical(request.categorical.clone())
                    .with_time_limit(request.time_limit)
                    .train(train, valid, ctx)?,
            )),
        };
        Ok(Box::new(model))
    }

    fn load(&self, config: &serde_json::Value, weights: &[u8]) -> Result<Box<dyn Fitted>> {
        let model = FittedModel::<B>::from_parts(config, weights.to_vec())?;
        if !self.loads(model.family()) {
            return Err(Error::IncompatibleArtifact(format!(
                "a {} model is not of family `{}`",
                model.family(),
                self.name()
            )));
        }
        Ok(Box::new(model))
    }

    fn loads(&self, family: &str) -> bool {
        // A linear model is an MLP without hidden layers: either family reads the other's.
        match self.family {
            Family::Linear | Family::Mlp => family == "linear" || family == "mlp",
            other => family == other.name(),
        }
    }
}

/// `model` with `limit` on its training time, on the request's devices and, when the
/// request is scheduled, with its epoch budget and checkpoints.
fn limited<M: TrainingRun>(model: M, limit: Duration, request: &TrainRequest<'_>) -> M {
    let model = model
        .with_time_limit(limit)
        .with_data_parallel(request.devices);
    match request.resume {
        Some((epochs, checkpoints)) => model
            .with_epoch_budget(epochs)
            .with_checkpoints(checkpoints),
        None => model,
    }
}
