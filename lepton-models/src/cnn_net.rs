//! The convolutional classifier's configuration and its burn network. LeNet-style (the
//! default): two blocks of convolution, ReLU and 2x2 max-pooling, then a hidden dense layer
//! with dropout and the class logits. With `residual_blocks > 0`, a small residual net: each
//! convolution is batch-normed and followed by that many residual blocks (two batch-normed
//! convolutions and a skip connection) before its pooling.

use std::borrow::Borrow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use burn::module::Module;
use burn::nn::conv::{Conv2d, Conv2dConfig};
use burn::nn::pool::{MaxPool2d, MaxPool2dConfig};
use burn::nn::{
    BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig2d,
};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

use lepton_core::ParamValue;

use crate::error::Result;
use crate::net::Net;
use crate::optimizer::Optimizer;
use crate::param;
use crate::rows::ImageShift;
use crate::training::TrainingSetup;

/// The hyper-parameters of a [`CnnClassifier`](crate::CnnClassifier). Serializable; checked
/// before any work starts.
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
    /// The optimizer (Adam by default), weight decay, gradient clipping and learning-rate
    /// schedule; `learning_rate` is the schedule's peak.
    /// (Artifacts saved before it was renamed hold it as `optimisation`.)
    #[serde(default, alias = "optimisation")]
    pub optimizer: Optimizer,
    /// Seed for weight initialization, shuffling, shifts and dropout.
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
            optimizer: Optimizer::default(),
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
        self.setup().check()?;
        if self.max_shift * 4 >= self.height.min(self.width) {
            return bad(
                "max_shift",
                format!(
                    "{} is not below a quarter of the {}x{} image",
                    self.max_shift, self.height, self.width
                ),
            );
        }
        self.optimizer.check()
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
                other => return self.optimizer.set_param(other, value),
            }
            Ok(true)
        })?;
        self.check()?;
        Ok(self)
    }

    pub(crate) fn setup(&self) -> TrainingSetup {
        TrainingSetup {
            shift: (self.max_shift > 0).then_some(ImageShift {
                height: self.height,
                width: self.width,
                max: self.max_shift,
            }),
            ..TrainingSetup::new(
                self.learning_rate,
                self.batch_size,
                self.max_epochs,
                self.patience,
                self.seed,
                self.optimizer,
            )
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
