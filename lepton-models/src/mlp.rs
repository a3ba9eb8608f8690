//! The multi-layer perceptron's classifier and regressor, built on its configuration and
//! network (`mlp_net`).

use std::marker::PhantomData;

use lepton_core::{Dataset, Model, Task, TrialContext};

use crate::backend::{Backend, Cpu};
use crate::error::{ModelError, Result};
use crate::fitted_mlp::FittedMlp;
use crate::head::Head;
use crate::mlp_net::MlpConfig;
use crate::rows::{Rows, Standardize};
use crate::training::train;
use crate::training_run::{RunOptions, TrainingRun};

/// Trains an MLP on backend `B` for the task of the training data's schema.
fn fit_mlp<B: Backend>(
    config: &MlpConfig,
    run: &RunOptions,
    train_data: &dyn Dataset,
    valid: &dyn Dataset,
    ctx: &mut dyn TrialContext,
) -> Result<FittedMlp<B>> {
    let schema = train_data.schema();
    if valid.schema() != schema && !valid.is_empty() {
        return Err(ModelError::InvalidData(
            "training and validation data have different schemas".into(),
        ));
    }
    let n_features = schema.features.len();
    let (head, train_rows, valid_rows) = match &schema.task {
        Task::Classification { classes } => {
            let k = classes.len();
            if k < 2 {
                return Err(ModelError::InvalidData(format!(
                    "classification needs at least 2 classes, the data has {k}"
                )));
            }
            (
                Head::Classes { count: k },
                Rows::classes(train_data, n_features, k)?,
                Rows::classes(valid, n_features, k)?,
            )
        }
        Task::Regression => {
            let scale = standardize(train_data)?;
            (
                Head::Value {
                    mean: scale.mean,
                    sd: scale.sd,
                },
                Rows::values(train_data, n_features, scale)?,
                Rows::values(valid, n_features, scale)?,
            )
        }
    };
    let devices = run.devices::<B>()?;
    let device = devices[0].clone();
    device.seed(config.seed);
    let net = config.init(n_features, head.outputs(), &device);
    let setup = run.apply(config.setup(), config, &devices)?;
    let (net, summary) = train(net, &train_rows, &valid_rows, &setup, &device, ctx)?;
    Ok(FittedMlp::new(
        net,
        config.clone(),
        n_features,
        head,
        summary,
        device,
    ))
}

/// The mean and standard deviation of the training targets (sd 1 for a constant target).
fn standardize(d: &dyn Dataset) -> Result<Standardize> {
    let ys: Vec<f64> = (0..d.len())
        .filter_map(|i| match d.target(i) {
            Some(lepton_core::Target::Value(v)) => Some(v),
            _ => None,
        })
        .collect();
    if ys.is_empty() {
        return Err(ModelError::InvalidData("no training targets".into()));
    }
    let n = ys.len() as f64;
    let mean = ys.iter().sum::<f64>() / n;
    let sd = (ys.iter().map(|y| (y - mean).powi(2)).sum::<f64>() / n).sqrt();
    Ok(Standardize {
        mean,
        sd: if sd > 1e-12 { sd } else { 1.0 },
    })
}

macro_rules! mlp_model {
    ($name:ident, $task:literal, $check:pat, $doc:literal) => {
        #[doc = $doc]
        #[derive(Debug, Clone)]
        pub struct $name<B: Backend = Cpu> {
            config: MlpConfig,
            run: RunOptions,
            backend: PhantomData<B>,
        }

        impl<B: Backend> $name<B> {
            /// A model with a checked configuration.
            pub fn new(config: MlpConfig) -> Result<Self> {
                config.check()?;
                Ok($name {
                    config,
                    run: RunOptions::default(),
                    backend: PhantomData,
                })
            }

            /// The configuration.
            pub fn config(&self) -> &MlpConfig {
                &self.config
            }

            /// Trains on `train`, validating on `valid` (which may be empty: then exactly
            /// `max_epochs` epochs run and the last weights are kept).
            pub fn train(
                &self,
                train: &dyn Dataset,
                valid: &dyn Dataset,
                ctx: &mut dyn TrialContext,
            ) -> Result<FittedMlp<B>> {
                if !matches!(train.schema().task, $check) {
                    return Err(ModelError::InvalidData(format!(
                        "the {} needs a {} target",
                        stringify!($name),
                        $task
                    )));
                }
                fit_mlp(&self.config, &self.run, train, valid, ctx)
            }
        }

        impl<B: Backend> TrainingRun for $name<B> {
            fn run_options(&mut self) -> &mut RunOptions {
                &mut self.run
            }
        }

        impl<B: Backend> Model for $name<B> {
            type Fitted = FittedMlp<B>;

            fn fit(
                &self,
                train: &dyn Dataset,
                valid: &dyn Dataset,
                ctx: &mut dyn TrialContext,
            ) -> lepton_core::Result<FittedMlp<B>> {
                Ok(self.train(train, valid, ctx)?)
            }
        }
    };
}

mlp_model!(
    MlpClassifier,
    "classification",
    Task::Classification { .. },
    "An MLP classifier trained on backend `B` (cross-entropy, scored by accuracy)."
);
mlp_model!(
    MlpRegressor,
    "regression",
    Task::Regression,
    "An MLP regressor trained on backend `B` (squared error of the standardized target, \
     scored by R²)."
);
