//! Convolutional classifiers for greyscale images. LeNet-style (the default): two blocks of
//! convolution, ReLU and 2x2 max-pooling, then a hidden dense layer with dropout and the class
//! logits. With `residual_blocks > 0`, a small residual net: each convolution is batch-normed
//! and followed by that many residual blocks (two batch-normed convolutions and a skip
//! connection) before its pooling.
//! It reads any [`Dataset`] whose rows are the pixels of `height x width` images (an
//! [`ImageDataset`](lepton_data::ImageDataset), row-major), and can shift training images at
//! random as augmentation.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig2d,
};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use lepton_core::{Dataset, Model, ParamValue, Task, TrialContext};

use crate::backend::{Backend, Cpu};
use crate::error::{ModelError, Result};
use crate::fitted_cnn::FittedCnn;
use crate::head::Head;
use crate::net::Net;
use crate::optimisation::Optimisation;
use crate::param;
use crate::training::{ImageShift, Rows, RunOptions, TrainingSetup, train};

/// The hyper-parameters of a [`CnnClassifier`]. Serialisable; checked before any work starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CnnConfig {
    /// Image height in pixels (at least 4: two 2x2 poolings).
    pub height: usize,
    /// Image width in pixels (at least 4).
    pub width: usize,
    /// Channels of the first convolution (1..=256).
    pub channels1: usize,
    /// Channels of the second convolution (1..=512).
    pub channels2: usize,
    /// Side of the square convolution kernels: 3, 5 or 7 (padded to keep the image size).
    pub kernel: usize,
    /// Residual blocks after each of the two convolutions (0..=8; 0: LeNet-style, no batch
    /// norm).
    #[serde(default)]
    pub residual_blocks: usize,
    /// Units of the hidden dense layer (1..=4096).
    pub hidden: usize,
    /// Dropout probability before the output layer, in `[0, 1)`.
    pub dropout: f64,
    /// Adam's learning rate, in `(0, 1]`.
    pub learning_rate: f64,
    /// Images per mini-batch (at least 1).
    pub batch_size: usize,
    /// Most epochs to train (at least 1).
    pub max_epochs: usize,
    /// Epochs without validation improvement before stopping early (at least 1).
    pub patience: usize,
    /// Largest random shift of a training image, in pixels along each axis (0: none; below a
    /// quarter of the smaller side).
    pub max_shift: usize,
    /// The optimiser (Adam by default), weight decay, gradient clipping and learning-rate
    /// schedule; `learning_rate` is the schedule's peak.
    #[serde(default)]
    pub optimisation: Optimisation,
    /// Seed for weight initialisation, shuffling, shifts and dropout.
    pub seed: u64,
}

impl Default for CnnConfig {
    /// LeNet-style on MNIST-sized images: conv 32 - pool - conv 64 - pool - 128 - classes.
    fn default() -> Self {
        CnnConfig {
            height: 28,
            width: 28,
            channels1: 32,
            channels2: 64,
            kernel: 5,
            residual_blocks: 0,
            hidden: 128,
            dropout: 0.25,
            learning_rate: 1e-3,
            batch_size: 64,
            max_epochs: 10,
            patience: 3,
            max_shift: 0,
            optimisation: Optimisation::default(),
            seed: 0,
        }
    }
}

impl CnnConfig {
    /// Sets the image size.
    pub fn with_image_size(mut self, height: usize, width: usize) -> Self {
        (self.height, self.width) = (height, width);
        self
    }

    /// Sets the most epochs.
    pub fn with_max_epochs(mut self, v: usize) -> Self {
        self.max_epochs = v;
        self
    }

    /// Sets the patience of early stopping.
    pub fn with_patience(mut self, v: usize) -> Self {
        self.patience = v;
        self
    }

    /// Sets the largest random shift of training images.
    pub fn with_max_shift(mut self, v: usize) -> Self {
        self.max_shift = v;
        self
    }

    /// Sets the seed.
    pub fn with_seed(mut self, v: u64) -> Self {
        self.seed = v;
        self
    }

    /// Refuses values that would make training fail or panic.
    pub fn check(&self) -> Result<()> {
        let bad = |name: &str, reason: String| Err(param::invalid(name, reason));
        for (name, v, max) in [
            ("height", self.height, 4096),
            ("width", self.width, 4096),
            ("channels1", self.channels1, 256),
            ("channels2", self.channels2, 512),
            ("hidden", self.hidden, 4096),
        ] {
            let min = if name == "height" || name == "width" {
                4
            } else {
                1
            };
            if !(min..=max).contains(&v) {
                return bad(name, format!("{v} is outside {min}..={max}"));
            }
        }
        if self.residual_blocks > 8 {
            return bad(
                "residual_blocks",
                format!("{} is above 8", self.residual_blocks),
            );
        }
        if ![3, 5, 7].contains(&self.kernel) {
            return bad("kernel", format!("{} is not 3, 5 or 7", self.kernel));
        }
        if !(self.dropout.is_finite() && (0.0..1.0).contains(&self.dropout)) {
            return bad("dropout", format!("{} is outside [0, 1)", self.dropout));
        }
        if !(self.learning_rate.is_finite()
            && self.learning_rate > 0.0
            && self.learning_rate <= 1.0)
        {
            return bad(
                "learning_rate",
                format!("{} is outside (0, 1]", self.learning_rate),
            );
        }
        for (name, v) in [
            ("batch_size", self.batch_size),
            ("max_epochs", self.max_epochs),
            ("patience", self.patience),
        ] {
            if v == 0 {
                return bad(name, "must be at least 1".into());
            }
        }
        if self.max_shift * 4 >= self.height.min(self.width) {
            return bad(
                "max_shift",
                format!(
                    "{} is not below a quarter of the {}x{} image",
                    self.max_shift, self.height, self.width
                ),
            );
        }
        self.optimisation.check()
    }

    /// This configuration with the values a trial suggested (names as in
    /// [`CnnSpace`](crate::CnnSpace)); other fields keep their values. Unknown names and
    /// values of the wrong type are refused.
    pub fn with_params<K: Borrow<str>>(mut self, params: &BTreeMap<K, ParamValue>) -> Result<Self> {
        param::apply(params, "CNN", |name, value| {
            let count = || param::usize_value(name, value);
            match name {
                "channels1" => self.channels1 = count()?,
                "channels2" => self.channels2 = count()?,
                "kernel" => self.kernel = count()?,
                "residual_blocks" => self.residual_blocks = count()?,
                "hidden" => self.hidden = count()?,
                "batch_size" => self.batch_size = count()?,
                "max_epochs" => self.max_epochs = count()?,
                "patience" => self.patience = count()?,
                "max_shift" => self.max_shift = count()?,
                "dropout" => self.dropout = param::f64_value(name, value)?,
                "learning_rate" => self.learning_rate = param::f64_value(name, value)?,
                other => return self.optimisation.set_param(other, value),
            }
            Ok(true)
        })?;
        self.check()?;
        Ok(self)
    }

    fn setup(&self) -> TrainingSetup {
        TrainingSetup {
            learning_rate: self.learning_rate,
            batch_size: self.batch_size,
            max_epochs: self.max_epochs,
            patience: self.patience,
            seed: self.seed,
            shift: (self.max_shift > 0).then_some(ImageShift {
                height: self.height,
                width: self.width,
                max: self.max_shift,
            }),
            optimisation: self.optimisation,
            checkpoints: None,
            time_limit: None,
            epoch_budget: None,
            replicas: Vec::new(),
            reports_per_epoch: 1,
        }
    }

    /// The features the convolutions hand the dense layers (two 2x2 poolings), saturating
    /// rather than overflowing for a shape no network could have.
    pub(crate) fn flat_features(&self) -> usize {
        self.channels2
            .saturating_mul(self.height / 4)
            .saturating_mul(self.width / 4)
    }

    pub(crate) fn init(&self, classes: usize, device: &Device) -> CnnNet {
        let conv = |from, to| {
            Conv2dConfig::new([from, to], [self.kernel, self.kernel])
                .with_padding(PaddingConfig2d::Same)
                .init(device)
        };
        let flat = self.flat_features();
        let residual = self.residual_blocks > 0;
        let norm = |channels| residual.then(|| BatchNormConfig::new(channels).init(device));
        let blocks = |channels| {
            (0..self.residual_blocks)
                .map(|_| ResidualBlock {
                    conv_a: conv(channels, channels),
                    norm_a: BatchNormConfig::new(channels).init(device),
                    conv_b: conv(channels, channels),
                    norm_b: BatchNormConfig::new(channels).init(device),
                })
                .collect()
        };
        CnnNet {
            conv1: conv(1, self.channels1),
            norm1: norm(self.channels1),
            blocks1: blocks(self.channels1),
            conv2: conv(self.channels1, self.channels2),
            norm2: norm(self.channels2),
            blocks2: blocks(self.channels2),
            pool: MaxPool2dConfig::new([2, 2]).init(),
            hidden: LinearConfig::new(flat, self.hidden).init(device),
            output: LinearConfig::new(self.hidden, classes).init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            height: self.height,
            width: self.width,
        }
    }
}

/// The burn network. Rows of `height * width` pixels come in and are viewed as
/// `[batch, 1, height, width]` images.
#[derive(Module, Debug)]
pub(crate) struct CnnNet {
    conv1: Conv2d,
    norm1: Option<BatchNorm>,
    blocks1: Vec<ResidualBlock>,
    conv2: Conv2d,
    norm2: Option<BatchNorm>,
    blocks2: Vec<ResidualBlock>,
    pool: MaxPool2d,
    hidden: Linear,
    output: Linear,
    dropout: Dropout,
    height: usize,
    width: usize,
}

/// Two batch-normed convolutions that keep the channels, added to the block's input.
#[derive(Module, Debug)]
pub(crate) struct ResidualBlock {
    conv_a: Conv2d,
    norm_a: BatchNorm,
    conv_b: Conv2d,
    norm_b: BatchNorm,
}

impl ResidualBlock {
    fn forward(&self, x: Tensor<4>) -> Tensor<4> {
        let y = relu(self.norm_a.forward(self.conv_a.forward(x.clone())));
        relu(x + self.norm_b.forward(self.conv_b.forward(y)))
    }
}

/// A convolution, its batch norm if any, ReLU, then residual blocks.
fn stage(
    x: Tensor<4>,
    conv: &Conv2d,
    norm: &Option<BatchNorm>,
    blocks: &[ResidualBlock],
) -> Tensor<4> {
    let mut x = conv.forward(x);
    if let Some(norm) = norm {
        x = norm.forward(x);
    }
    let mut x = relu(x);
    for block in blocks {
        x = block.forward(x);
    }
    x
}

impl Net for CnnNet {
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let [batch, _] = x.dims();
        let x = x.reshape([batch, 1, self.height, self.width]);
        let x = self
            .pool
            .forward(stage(x, &self.conv1, &self.norm1, &self.blocks1));
        let x = self
            .pool
            .forward(stage(x, &self.conv2, &self.norm2, &self.blocks2));
        let x = x.flatten::<2>(1, 3);
        let x = self.dropout.forward(relu(self.hidden.forward(x)));
        self.output.forward(x)
    }
}

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
