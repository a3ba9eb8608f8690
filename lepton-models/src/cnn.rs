//! The convolutional image classifier: trains the network of `cnn_net` on any [`Dataset`]
//! whose rows are the pixels of `height x width` greyscale images (an
//! [`ImageDataset`](lepton_data::ImageDataset), row-major), and can shift training images at
//! random as augmentation.

use std::marker::PhantomData;

use lepton_core::{Dataset, Model, Task, TrialContext};

use crate::backend::{Backend, Cpu};
use crate::cnn_net::CnnConfig;
use crate::error::{ModelError, Result};
use crate::fitted_cnn::FittedCnn;
use crate::head::Head;
use crate::rows::Rows;
use crate::training::train;
use crate::training_run::{RunOptions, TrainingRun};

/// A convolutional image classifier trained on backend `B` (cross-entropy, Adam, scored by
/// accuracy).
#[derive(Debug, Clone)]
pub struct CnnClassifier<B: Backend = Cpu> {
    config: CnnConfig,
    run: RunOptions,
    backend: PhantomData<B>,
}

impl<B: Backend> CnnClassifier<B> {
    /// A model with a checked configuration.
    pub fn new(config: CnnConfig) -> Result<Self> {
        config.check()?;
        Ok(CnnClassifier {
            config,
            run: RunOptions::default(),
            backend: PhantomData,
        })
    }

    /// The configuration.
    pub fn config(&self) -> &CnnConfig {
        &self.config
    }

    /// Trains on `train`, validating on `valid` after every epoch, or `k` times an epoch with
    /// [`with_reports_per_epoch`](TrainingRun::with_reports_per_epoch) (`valid` may be empty: then
    /// exactly `max_epochs` epochs run and the last weights are kept). Every row must be an
    /// image of the configured size, and the task a classification of at least 2 classes.
    pub fn train(
        &self,
        train_data: &dyn Dataset,
        valid: &dyn Dataset,
        ctx: &mut dyn TrialContext,
    ) -> Result<FittedCnn<B>> {
        let schema = train_data.schema();
        let Task::Classification { classes } = &schema.task else {
            return Err(ModelError::InvalidData(
                "the CnnClassifier needs a classification target".into(),
            ));
        };
        let k = classes.len();
        if k < 2 {
            return Err(ModelError::InvalidData(format!(
                "classification needs at least 2 classes, the data has {k}"
            )));
        }
        if valid.schema() != schema && !valid.is_empty() {
            return Err(ModelError::InvalidData(
                "training and validation data have different schemas".into(),
            ));
        }
        let pixels = self.config.height * self.config.width;
        if schema.features.len() != pixels {
            return Err(ModelError::InvalidData(format!(
                "rows have {} values, {}x{} images need {pixels}",
                schema.features.len(),
                self.config.height,
                self.config.width
            )));
        }
        let train_rows = Rows::classes(train_data, pixels, k)?;
        let valid_rows = Rows::classes(valid, pixels, k)?;
        let devices = self.run.devices::<B>()?;
        let device = devices[0].clone();
        device.seed(self.config.seed);
        let net = self.config.init(k, &device);
        let setup = self
            .run
            .apply(self.config.setup(), &self.config, &devices)?;
        let (net, summary) = train(net, &train_rows, &valid_rows, &setup, &device, ctx)?;
        Ok(FittedCnn::new(
            net,
            self.config.clone(),
            Head::Classes { count: k },
            summary,
            device,
        ))
    }
}

impl<B: Backend> TrainingRun for CnnClassifier<B> {
    fn run_options(&mut self) -> &mut RunOptions {
        &mut self.run
    }
}

impl<B: Backend> Model for CnnClassifier<B> {
    type Fitted = FittedCnn<B>;

    fn fit(
        &self,
        train: &dyn Dataset,
        valid: &dyn Dataset,
        ctx: &mut dyn TrialContext,
    ) -> lepton_core::Result<FittedCnn<B>> {
        Ok(self.train(train, valid, ctx)?)
    }
}
