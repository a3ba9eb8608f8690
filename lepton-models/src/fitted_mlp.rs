//! A trained MLP: prediction, and saving and restoring its weights exactly.

use std::marker::PhantomData;

use serde::{Deserialize, Serialize};

use burn::module::Module;
use burn::tensor::Device;

use lepton_core::{Features, Predict, Prediction};

use crate::backend::{Backend, Cpu};
use crate::burnpack;
use crate::error::{ModelError, Result};
use crate::mlp::{MlpConfig, MlpNet};
use crate::predict::predict_rows;
use crate::training::TrainingSummary;

/// What the network's outputs mean.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Head {
    /// Logits of `count` classes.
    Classes {
        /// Number of classes.
        count: usize,
    },
    /// One standardised value: the prediction is `output * sd + mean`.
    Value {
        /// Training target mean.
        mean: f64,
        /// Training target standard deviation.
        sd: f64,
    },
}

impl Head {
    /// Width of the output layer.
    pub fn outputs(&self) -> usize {
        match self {
            Head::Classes { count } => *count,
            Head::Value { .. } => 1,
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
    /// that do not fit the network the configuration describes.
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
        let device = B::device();
        let net =
            burnpack::load(config.init(n_features, head.outputs(), &device), weights)?.valid();
        Ok(Self::new(net, config, n_features, head, summary, device))
    }
}

impl<B: Backend> Predict for FittedMlp<B> {
    fn predict(&self, x: Features<'_>) -> lepton_core::Result<Vec<Prediction>> {
        predict_rows(&self.net, self.head, self.n_features, &self.device, x)
    }
}
