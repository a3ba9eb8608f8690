//! The multi-layer perceptron classifier.

use std::collections::BTreeMap;
use std::marker::PhantomData;

use serde::{Deserialize, Serialize};

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::store::ModuleRecord;
use burn::tensor::activation::{relu, softmax};
use burn::tensor::{Bytes, Device, Tensor, TensorData};

use lepton_core::{Dataset, Error, Features, Model, ParamValue, Predict, Prediction, TrialContext};

use crate::backend::{Backend, Cpu};
use crate::error::{ModelError, Result};
use crate::training::{ClassRows, ClassifierNet, TrainingSetup, TrainingSummary, train_classifier};

/// The hyper-parameters of an [`MlpClassifier`]. Serialisable; checked before any work starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlpConfig {
    /// Units in each hidden layer (1..=4096).
    pub hidden_width: usize,
    /// Number of hidden layers (0..=8; 0 is logistic regression).
    pub depth: usize,
    /// Dropout probability after each hidden layer, in `[0, 1)`.
    pub dropout: f64,
    /// Adam's learning rate, in `(0, 1]`.
    pub learning_rate: f64,
    /// Rows per mini-batch (at least 1).
    pub batch_size: usize,
    /// Most epochs to train (at least 1).
    pub max_epochs: usize,
    /// Epochs without validation improvement before stopping early (at least 1).
    pub patience: usize,
    /// Seed for weight initialisation, shuffling and dropout.
    pub seed: u64,
}

impl Default for MlpConfig {
    fn default() -> Self {
        MlpConfig {
            hidden_width: 64,
            depth: 1,
            dropout: 0.1,
            learning_rate: 1e-3,
            batch_size: 32,
            max_epochs: 200,
            patience: 20,
            seed: 0,
        }
    }
}

impl MlpConfig {
    /// Sets the hidden width.
    pub fn with_hidden_width(mut self, v: usize) -> Self {
        self.hidden_width = v;
        self
    }
    /// Sets the number of hidden layers.
    pub fn with_depth(mut self, v: usize) -> Self {
        self.depth = v;
        self
    }
    /// Sets the dropout probability.
    pub fn with_dropout(mut self, v: f64) -> Self {
        self.dropout = v;
        self
    }
    /// Sets the learning rate.
    pub fn with_learning_rate(mut self, v: f64) -> Self {
        self.learning_rate = v;
        self
    }
    /// Sets the batch size.
    pub fn with_batch_size(mut self, v: usize) -> Self {
        self.batch_size = v;
        self
    }
    /// Sets the maximum number of epochs.
    pub fn with_max_epochs(mut self, v: usize) -> Self {
        self.max_epochs = v;
        self
    }
    /// Sets the early-stopping patience.
    pub fn with_patience(mut self, v: usize) -> Self {
        self.patience = v;
        self
    }
    /// Sets the seed.
    pub fn with_seed(mut self, v: u64) -> Self {
        self.seed = v;
        self
    }

    /// Refuses values that would make training fail or panic.
    pub fn check(&self) -> Result<()> {
        let bad = |name: &str, reason: String| {
            Err(ModelError::Core(Error::InvalidParameter {
                name: name.to_owned(),
                reason,
            }))
        };
        if !(1..=4096).contains(&self.hidden_width) {
            return bad(
                "hidden_width",
                format!("{} is outside 1..=4096", self.hidden_width),
            );
        }
        if self.depth > 8 {
            return bad("depth", format!("{} is above 8", self.depth));
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
        if self.batch_size == 0 {
            return bad("batch_size", "must be at least 1".into());
        }
        if self.max_epochs == 0 {
            return bad("max_epochs", "must be at least 1".into());
        }
        if self.patience == 0 {
            return bad("patience", "must be at least 1".into());
        }
        Ok(())
    }

    /// This configuration with the values a trial suggested (names as in
    /// [`MlpSpace`](crate::MlpSpace)); other fields keep their values. Unknown names and
    /// values of the wrong type are refused.
    pub fn with_params(mut self, params: &BTreeMap<String, ParamValue>) -> Result<Self> {
        for (name, value) in params {
            let wrong = || {
                ModelError::Core(Error::InvalidParameter {
                    name: name.clone(),
                    reason: format!("`{value}` has the wrong type"),
                })
            };
            let as_usize = || {
                value
                    .as_i64()
                    .and_then(|v| usize::try_from(v).ok())
                    .ok_or_else(wrong)
            };
            match name.as_str() {
                "hidden_width" => self.hidden_width = as_usize()?,
                "depth" => self.depth = as_usize()?,
                "batch_size" => self.batch_size = as_usize()?,
                "max_epochs" => self.max_epochs = as_usize()?,
                "patience" => self.patience = as_usize()?,
                "dropout" => self.dropout = value.as_f64().ok_or_else(wrong)?,
                "learning_rate" => self.learning_rate = value.as_f64().ok_or_else(wrong)?,
                _ => {
                    return Err(ModelError::Core(Error::InvalidParameter {
                        name: name.clone(),
                        reason: "not a parameter of the MLP".into(),
                    }));
                }
            }
        }
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
        }
    }

    fn init(&self, n_features: usize, n_classes: usize, device: &Device) -> MlpNet {
        let mut hidden = Vec::with_capacity(self.depth);
        let mut width_in = n_features;
        for _ in 0..self.depth {
            hidden.push(LinearConfig::new(width_in, self.hidden_width).init(device));
            width_in = self.hidden_width;
        }
        MlpNet {
            hidden,
            output: LinearConfig::new(width_in, n_classes).init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
        }
    }
}

/// The burn network: `depth` x (linear, ReLU, dropout), then a linear layer to the logits.
#[derive(Module, Debug)]
pub(crate) struct MlpNet {
    hidden: Vec<Linear>,
    output: Linear,
    dropout: Dropout,
}

impl ClassifierNet for MlpNet {
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let mut x = x;
        for layer in &self.hidden {
            x = self.dropout.forward(relu(layer.forward(x)));
        }
        self.output.forward(x)
    }
}

/// An MLP classifier to be trained on backend `B`: the [`Model`] of tabular classification.
#[derive(Debug, Clone)]
pub struct MlpClassifier<B: Backend = Cpu> {
    config: MlpConfig,
    backend: PhantomData<B>,
}

impl<B: Backend> MlpClassifier<B> {
    /// A classifier with a checked configuration.
    pub fn new(config: MlpConfig) -> Result<Self> {
        config.check()?;
        Ok(MlpClassifier {
            config,
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
        let schema = train.schema();
        let n_features = schema.features.len();
        let n_classes = match schema.n_classes() {
            Some(k) if k >= 2 => k,
            Some(k) => {
                return Err(ModelError::InvalidData(format!(
                    "classification needs at least 2 classes, the data has {k}"
                )));
            }
            None => {
                return Err(ModelError::InvalidData(
                    "the MLP classifier needs a classification target".into(),
                ));
            }
        };
        if valid.schema() != schema && !valid.is_empty() {
            return Err(ModelError::InvalidData(
                "training and validation data have different schemas".into(),
            ));
        }
        let train_rows = ClassRows::from_dataset(train, n_features, n_classes)?;
        let valid_rows = ClassRows::from_dataset(valid, n_features, n_classes)?;
        let device = B::device();
        device.seed(self.config.seed);
        let net = self.config.init(n_features, n_classes, &device);
        let (net, summary) = train_classifier(
            net,
            &train_rows,
            &valid_rows,
            &self.config.setup(),
            &device,
            ctx,
        )?;
        Ok(FittedMlp {
            net,
            config: self.config.clone(),
            n_features,
            n_classes,
            summary,
            device,
            backend: PhantomData,
        })
    }
}

impl<B: Backend> Model for MlpClassifier<B> {
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

/// A trained MLP, ready to predict; its weights can be saved and restored exactly.
#[derive(Debug, Clone)]
pub struct FittedMlp<B: Backend = Cpu> {
    net: MlpNet,
    config: MlpConfig,
    n_features: usize,
    n_classes: usize,
    summary: TrainingSummary,
    device: Device,
    backend: PhantomData<B>,
}

impl<B: Backend> FittedMlp<B> {
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

    /// Number of classes.
    pub fn n_classes(&self) -> usize {
        self.n_classes
    }

    /// The weights in burn's burnpack format.
    pub fn weights_to_bytes(&self) -> Result<Vec<u8>> {
        let bytes = self
            .net
            .clone()
            .into_record()
            .into_bytes()
            .map_err(|e| ModelError::Weights(e.to_string()))?;
        Ok(bytes.to_vec())
    }

    /// Rebuilds a fitted MLP from its configuration, shape and saved weights; refuses weights
    /// that do not fit the network the configuration describes.
    pub fn from_weights(
        config: MlpConfig,
        n_features: usize,
        n_classes: usize,
        summary: TrainingSummary,
        weights: Vec<u8>,
    ) -> Result<Self> {
        config.check()?;
        if n_features == 0 || n_classes < 2 {
            return Err(ModelError::Weights(format!(
                "{n_features} features and {n_classes} classes do not make a classifier"
            )));
        }
        let device = B::device();
        let record = ModuleRecord::from_bytes(Bytes::from_bytes_vec(weights))
            .map_err(|e| ModelError::Weights(e.to_string()))?;
        let net = config
            .init(n_features, n_classes, &device)
            .try_load_record(record)
            .map_err(|e| ModelError::Weights(e.to_string()))?
            .valid();
        Ok(FittedMlp {
            net,
            config,
            n_features,
            n_classes,
            summary,
            device,
            backend: PhantomData,
        })
    }
}

impl<B: Backend> Predict for FittedMlp<B> {
    fn predict(&self, x: Features<'_>) -> lepton_core::Result<Vec<Prediction>> {
        if x.n_features() != self.n_features {
            return Err(Error::InvalidInput(format!(
                "rows have {} features, the model expects {}",
                x.n_features(),
                self.n_features
            )));
        }
        let mut out = Vec::with_capacity(x.n_rows());
        for chunk in x.values().chunks(1024 * self.n_features) {
            let rows = chunk.len() / self.n_features;
            let input = Tensor::<2>::from_data(
                TensorData::new(chunk.to_vec(), [rows, self.n_features]),
                &self.device,
            );
            let probs = softmax(self.net.forward(input), 1)
                .into_data()
                .try_into_vec::<f32>()
                .map_err(|e| Error::stage(ModelError::Weights(format!("{e:?}"))))?;
            for p in probs.chunks(self.n_classes) {
                let index = p
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map_or(0, |(i, _)| i);
                out.push(Prediction::Class {
                    index,
                    probabilities: p.to_vec(),
                });
            }
        }
        Ok(out)
    }
}
