//! The convolutional image classifier: trains the network of `cnn_net` on any [`Dataset`]
//! whose rows are the pixels of `height x width` greyscale images (an
//! [`ImageDataset`](lepton_data::ImageDataset), row-major), and can shift training images at
//! random as augmentation.

use std::marker::PhantomData;
use std::path::PathBuf;
use std::time::Duration;

use lepton_core::{Dataset, Model, Task, TrialContext};

use crate::backend::{Backend, Cpu};
use crate::cnn_net::CnnConfig;
use crate::error::{ModelError, Result};
use crate::fitted_cnn::FittedCnn;
use crate::head::Head;
use crate::training::{Rows, RunOptions, train};

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

    /// Checkpoints every epoch into `dir`, and resumes from the checkpoint there if one of
    /// the same configuration exists (see [`checkpoint`](crate::checkpoint)). Dropout masks
    /// after a resume are drawn afresh; with no dropout a resumed run ends exactly as an
    /// uninterrupted one.
    pub fn with_checkpoints(mut self, dir: impl Into<PathBuf>) -> Self {
        self.run.checkpoints = Some(dir.into());
        self
    }

    /// Starts no new epoch once `limit` has passed since training began; the best weights
    /// so far are kept (a search can compare candidates at equal time).
    pub fn with_time_limit(mut self, limit: Duration) -> Self {
        self.run.time_limit = Some(limit);
        self
    }

    /// Trains only up to epoch `epochs` of the configured `max_epochs`, as a budget within
    /// the longer run: the learning-rate schedule still spans `max_epochs`, so with
    /// [`with_checkpoints`](Self::with_checkpoints) a later call with a larger budget resumes
    /// where this one stopped (a trial promoted by successive halving need not start over).
    pub fn with_epoch_budget(mut self, epochs: usize) -> Self {
        self.run.epoch_budget = Some(epochs);
        self
    }

    /// Trains data-parallel on `devices` devices of `B` (see [`Backend::devices`]): every
    /// batch is split into equal shards, each device computes its shard's gradients on a
    /// copy of the network, and the main device sums them and takes the optimiser step, so
    /// the update is the whole batch's. Batch norm normalises each shard by its own
    /// statistics, and its running statistics average the shards' (a step late); dropout
    /// masks come from the backend's one generator, drawn by several threads, so a run with
    /// dropout does not repeat exactly. 0 is refused when training; a device that fails ends
    /// it with [`ModelError::Device`].
    pub fn with_data_parallel(mut self, devices: usize) -> Self {
        self.run.data_parallel = Some(devices);
        self
    }

    /// Validates and reports to the trial `k` times an epoch instead of once, after as nearly
    /// equal numbers of its batches as can be (the `j`-th after `ceil(j * batches / k)`): the
    /// `j`-th report of epoch `e` is step `(e - 1) * k + j`, so a pruner can stop a poor run
    /// within its first epoch (as Lightning's `val_check_interval` does for validation). The
    /// best weights may then come from within an epoch (and count as that epoch's for the
    /// patience); checkpoints, [`with_epoch_budget`](Self::with_epoch_budget) and the time
    /// limit stay in epochs, and a run resumed from a checkpoint should keep the same `k`
    /// (steps would change units). 0, or more reports than an epoch has batches, is refused
    /// when training.
    pub fn with_reports_per_epoch(mut self, k: usize) -> Self {
        self.run.reports_per_epoch = Some(k);
        self
    }

    /// The configuration.
    pub fn config(&self) -> &CnnConfig {
        &self.config
    }

    /// Trains on `train`, validating on `valid` after every epoch, or `k` times an epoch with
    /// [`with_reports_per_epoch`](Self::with_reports_per_epoch) (`valid` may be empty: then
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
