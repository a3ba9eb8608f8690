//! A trained CNN: prediction, and saving and restoring its weights exactly.

use std::marker::PhantomData;

use burn::module::Module;
use burn::tensor::Device;

use lepton_core::{Features, Predict, Prediction};

use crate::backend::{Backend, Cpu};
use crate::burnpack;
use crate::cnn_net::{CnnConfig, CnnNet};
use crate::error::{ModelError, Result};
use crate::head::Head;
use crate::predict::predict_rows;
use crate::training_summary::TrainingSummary;

/// A trained [`CnnClassifier`](crate::CnnClassifier), ready to predict rows of pixels; its
/// weights can be saved and restored exactly.
#[derive(Debug, Clone)]
pub struct FittedCnn<B: Backend = Cpu> {
    net: CnnNet,
    config: CnnConfig,
    head: Head,
    summary: TrainingSummary,
    device: Device,
    backend: PhantomData<B>,
}

impl<B: Backend> FittedCnn<B> {
    pub(crate) fn new(
        net: CnnNet,
        config: CnnConfig,
        head: Head,
        summary: TrainingSummary,
        device: Device,
    ) -> Self {
        FittedCnn {
            net,
            config,
            head,
            summary,
            device,
            backend: PhantomData,
        }
    }

    /// The configuration it was trained with.
    pub fn config(&self) -> &CnnConfig {
        &self.config
    }

    /// What happened during training.
    pub fn summary(&self) -> &TrainingSummary {
        &self.summary
    }

    /// The classes it predicts.
    pub fn head(&self) -> Head {
        self.head
    }

    /// The weights in burn's burnpack format.
    pub fn weights_to_bytes(&self) -> Result<Vec<u8>> {
        burnpack::to_bytes(&self.net)
    }

    /// Rebuilds a fitted CNN from its configuration, classes and saved weights; refuses
    /// weights that do not fit the network the configuration describes, and (before
    /// allocating it) a network with more parameters than the weights have bytes.
    pub fn from_weights(
        config: CnnConfig,
        head: Head,
        summary: TrainingSummary,
        weights: Vec<u8>,
    ) -> Result<Self> {
        config.check()?;
        let Head::Classes { count } = head else {
            return Err(ModelError::Weights(format!(
                "a CNN classifier has classes, not {head:?}"
            )));
        };
        if count < 2 {
            return Err(ModelError::Weights(format!("{count} classes")));
        }
        // Checked before the network is allocated: its dense layers alone have this many
        // weights, and every saved parameter takes at least a byte.
        let dense = config
            .flat_features()
            .checked_mul(config.hidden)
            .and_then(|d| d.checked_add(config.hidden.checked_mul(count)?));
        if dense.is_none_or(|p| p > weights.len()) {
            return Err(ModelError::Weights(format!(
                "a {}x{} image network with {count} classes needs more parameters than {} \
                 bytes of weights can hold",
                config.height,
                config.width,
                weights.len()
            )));
        }
        let device = B::device();
        let net = burnpack::load(config.init(count, &device), weights)?.valid();
        Ok(Self::new(net, config, head, summary, device))
    }
}

impl<B: Backend> Predict for FittedCnn<B> {
    fn predict(&self, x: Features<'_>) -> lepton_core::Result<Vec<Prediction>> {
        let pixels = self.config.height * self.config.width;
        predict_rows(&self.net, self.head, pixels, &self.device, x)
    }
}
