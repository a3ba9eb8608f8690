//! A trained MLP: prediction, and saving and restoring its weights exactly.

use std::marker::PhantomData;

use burn::module::Module;
use burn::tensor::Device;

use lepton_core::{Dataset, DetachedContext, Features, Predict, Prediction, Task};

use crate::backend::{Backend, Cpu};
use crate::burnpack;
use crate::error::{ModelError, Result};
use crate::head::Head;
use crate::mlp_net::{MlpConfig, MlpNet};
use crate::optimizer::Schedule;
use crate::predict::predict_rows;
use crate::rows::{Rows, Standardize};
use crate::training::train;
use crate::training_summary::TrainingSummary;

/// How a trained model is trained further on new examples (online learning): a few epochs
/// at a constant learning rate, from its current weights.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FineTuning {
    /// Passes over the examples (at least 1).
    pub epochs: usize,
    /// The optimizer's learning rate, constant, in `(0, 1]`.
    pub learning_rate: f64,
    /// Rows per mini-batch (at least 1).
    pub batch_size: usize,
    /// Seed for shuffling and dropout.
    pub seed: u64,
}

impl Default for FineTuning {
    /// Three epochs at 1e-3 in batches of 32.
    fn default() -> Self {
        FineTuning {
            epochs: 3,
            learning_rate: 1e-3,
            batch_size: 32,
            seed: 0,
        }
    }
}

/// A trained MLP, ready to predict; its weights can be saved and restored exactly.
#[derive(Debug, Clone)]
pub struct FittedMlp<B: Backend = Cpu> {
    net: MlpNet,
    config: MlpConfig,
    n_features: usize,
    head: Head,
    summary: TrainingSummary,
    device: Device,
    backend: PhantomData<B>,
}

impl<B: Backend> FittedMlp<B> {
    pub(crate) fn new(
        net: MlpNet,
        config: MlpConfig,
        n_features: usize,
        head: Head,
        summary: TrainingSummary,
        device: Device,
    ) -> Self {
        FittedMlp {
            net,
            config,
            n_features,
            head,
            summary,
            device,
            backend: PhantomData,
        }
    }

    /// The configuration it was trained with.
    pub fn config(&self) -> &MlpConfig {
        &self.config
    }

    /// What happened during training.
    pub fn summary(&self) -> &TrainingSummary {
        &self.summary
    }

    /// Input width.
    pub fn n_features(&self) -> usize {
        self.n_features
    }

    /// What the outputs mean (classes, or a value and its scale).
    pub fn head(&self) -> Head {
        self.head
    }

    /// The weights in burn's burnpack format.
    pub fn weights_to_bytes(&self) -> Result<Vec<u8>> {
        burnpack::to_bytes(&self.net)
    }

    /// Rebuilds a fitted MLP from its configuration, shape and saved weights; refuses weights
    /// that do not fit the network the configuration describes. The shape is checked before
    /// the network is allocated: at most 2^20 inputs, and no more parameters than the weights
    /// have bytes.
    pub fn from_weights(
        config: MlpConfig,
        n_features: usize,
        head: Head,
        summary: TrainingSummary,
        weights: Vec<u8>,
    ) -> Result<Self> {
        config.check()?;
        let head_ok = match head {
            Head::Classes { count } => count >= 2,
            Head::Value { mean, sd } => mean.is_finite() && sd.is_finite() && sd > 0.0,
        };
        if n_features == 0 || !head_ok {
            return Err(ModelError::Weights(format!(
                "{n_features} features and head {head:?} do not make a model"
            )));
        }
        let parameters = linear_parameters(&config, n_features, head.outputs());
        if n_features > MAX_FEATURES || parameters.is_none_or(|p| p > weights.len()) {
            return Err(ModelError::Weights(format!(
                "{n_features} features (at most {MAX_FEATURES}) and head {head:?} need more \
                 parameters than {} bytes of weights can hold",
                weights.len()
            )));
        }
        let device = B::device();
        let net =
            burnpack::load(config.init(n_features, head.outputs(), &device), weights)?.valid();
        Ok(Self::new(net, config, n_features, head, summary, device))
    }
}

/// The widest input a saved MLP may declare.
const MAX_FEATURES: usize = 1 << 20;

/// The weights of the linear layers of the network `config` describes (biases and norms
/// aside: a lower bound of what its saved weights hold), or `None` past `usize`.
fn linear_parameters(config: &MlpConfig, n_features: usize, outputs: usize) -> Option<usize> {
    let (hidden, output) = config.linear_shapes(n_features, outputs);
    hidden
        .iter()
        .chain([&output])
        .try_fold(0usize, |total, &(from, to)| {
            total.checked_add(from.checked_mul(to)?)
        })
}

impl<B: Backend> FittedMlp<B> {
    /// A copy trained further on `data` as `tuning` says; this model is unchanged. The data
    /// must have this model's width and task (a regression keeps the original target scale).
    /// Its training summary counts the extra epochs.
    pub fn fine_tune(&self, data: &dyn Dataset, tuning: FineTuning) -> Result<Self> {
        let ok = tuning.epochs >= 1
            && tuning.batch_size >= 1
            && tuning.learning_rate > 0.0
            && tuning.learning_rate <= 1.0;
        if !ok {
            return Err(ModelError::Core(lepton_core::Error::InvalidInput(format!(
                "fine-tuning {tuning:?}: epochs and batch size must be at least 1, the learning \
                 rate in (0, 1]"
            ))));
        }
        let rows = match (self.head, &data.schema().task) {
            (Head::Classes { count }, Task::Classification { classes })
                if classes.len() == count =>
            {
                Rows::classes(data, self.n_features, count)?
            }
            (Head::Value { mean, sd }, Task::Regression) => {
                Rows::values(data, self.n_features, Standardize { mean, sd })?
            }
            (head, task) => {
                return Err(ModelError::InvalidData(format!(
                    "examples for {task:?} cannot fine-tune a model with head {head:?}"
                )));
            }
        };
        let mut setup = self.config.setup();
        setup.learning_rate = tuning.learning_rate;
        setup.batch_size = tuning.batch_size;
        setup.max_epochs = tuning.epochs;
        setup.patience = tuning.epochs;
        setup.seed = tuning.seed;
        setup.optimizer.schedule = Schedule::Constant;
        let no_validation = Rows::empty(self.n_features, self.head);
        self.device.seed(tuning.seed);
        let (net, tuned) = train(
            self.net.clone(),
            &rows,
            &no_validation,
            &setup,
            &self.device,
            &mut DetachedContext::new(),
        )?;
        let mut summary = self.summary.clone();
        summary.epochs_run += tuned.epochs_run;
        summary.final_train_loss = tuned.final_train_loss;
        summary.train_seconds += tuned.train_seconds;
        Ok(Self::new(
            net,
            self.config.clone(),
            self.n_features,
            self.head,
            summary,
            self.device.clone(),
        ))
    }
}

impl<B: Backend> Predict for FittedMlp<B> {
    fn predict(&self, x: Features<'_>) -> lepton_core::Result<Vec<Prediction>> {
        predict_rows(&self.net, self.head, self.n_features, &self.device, x)
    }
}
