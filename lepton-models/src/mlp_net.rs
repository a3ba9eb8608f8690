//! The multi-layer perceptron's configuration and its burn network.

use std::borrow::Borrow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use burn::module::Module;
use burn::nn::activation::{Activation, ActivationConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

use lepton_core::ParamValue;

use crate::error::Result;
use crate::net::Net;
use crate::optimizer::Optimizer;
use crate::param;
use crate::training::TrainingSetup;

/// The hyper-parameters of an [`MlpClassifier`](crate::MlpClassifier) or
/// [`MlpRegressor`](crate::MlpRegressor). Serializable; checked before any work starts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MlpConfig {
    /// Units in each hidden layer (1..=4096).
    pub hidden_width: usize,
    /// Number of hidden layers (0..=8; 0 is logistic regression).
    pub depth: usize,
    /// Dropout probability after each hidden layer, in `[0, 1)`.
    pub dropout: f64,
    /// The hidden layers' activation (ReLU by default).
    #[serde(default)]
    pub activation: MlpActivation,
    /// Batch normalization after each hidden layer's linear map, before its activation.
    #[serde(default)]
    pub batch_norm: bool,
    /// Adam's learning rate, in `(0, 1]`.
    pub learning_rate: f64,
    /// Rows per mini-batch (at least 1).
    pub batch_size: usize,
    /// Most epochs to train (at least 1).
    pub max_epochs: usize,
    /// Epochs without validation improvement before stopping early (at least 1).
    pub patience: usize,
    /// The optimizer (Adam by default), weight decay, gradient clipping and learning-rate
    /// schedule; `learning_rate` is the schedule's peak.
    /// (Artifacts saved before it was renamed hold it as `optimisation`.)
    #[serde(default, alias = "optimisation")]
    pub optimizer: Optimizer,
    /// Seed for weight initialization, shuffling and dropout.
    pub seed: u64,
}

impl Default for MlpConfig {
    fn default() -> Self {
        MlpConfig {
            hidden_width: 64,
            depth: 1,
            dropout: 0.1,
            activation: MlpActivation::Relu,
            batch_norm: false,
            learning_rate: 1e-3,
            batch_size: 32,
            max_epochs: 200,
            patience: 20,
            optimizer: Optimizer::default(),
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
        let bad = |name: &str, reason: String| Err(param::invalid(name, reason));
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
        self.setup().check()?;
        self.optimizer.check()
    }

    /// This configuration with the values a trial suggested (names as in
    /// [`MlpSpace`](crate::MlpSpace)); other fields keep their values. Unknown names and
    /// values of the wrong type are refused. Takes a trial's parameters
    /// ([`FrozenTrial::params`](lepton_core::FrozenTrial::params), keyed by
    /// [`ParamName`](lepton_core::ParamName)) or any map keyed by strings.
    pub fn with_params<K: Borrow<str>>(mut self, params: &BTreeMap<K, ParamValue>) -> Result<Self> {
        param::apply(params, "MLP", |name, value| {
            let count = || param::usize_value(name, value);
            match name {
                "hidden_width" => self.hidden_width = count()?,
                "depth" => self.depth = count()?,
                "batch_size" => self.batch_size = count()?,
                "max_epochs" => self.max_epochs = count()?,
                "patience" => self.patience = count()?,
                "dropout" => self.dropout = param::f64_value(name, value)?,
                "learning_rate" => self.learning_rate = param::f64_value(name, value)?,
                "activation" => {
                    self.activation =
                        value
                            .as_str()
                            .and_then(MlpActivation::parse)
                            .ok_or_else(|| {
                                param::invalid(name, format!("`{value}` is not relu, gelu or tanh"))
                            })?;
                }
                "batch_norm" => {
                    let ParamValue::Bool(on) = value else {
                        return Err(param::invalid(
                            name,
                            format!("`{value}` is not true or false"),
                        ));
                    };
                    self.batch_norm = *on;
                }
                other => return self.optimizer.set_param(other, value),
            }
            Ok(true)
        })?;
        self.check()?;
        Ok(self)
    }

    pub(crate) fn setup(&self) -> TrainingSetup {
        TrainingSetup::new(
            self.learning_rate,
            self.batch_size,
            self.max_epochs,
            self.patience,
            self.seed,
            self.optimizer,
        )
    }

    /// The (inputs, outputs) of each hidden linear layer, and of the output layer.
    pub(crate) fn linear_shapes(
        &self,
        n_features: usize,
        outputs: usize,
    ) -> (Vec<(usize, usize)>, (usize, usize)) {
        let mut hidden = Vec::with_capacity(self.depth);
        let mut width_in = n_features;
        for _ in 0..self.depth {
            hidden.push((width_in, self.hidden_width));
            width_in = self.hidden_width;
        }
        (hidden, (width_in, outputs))
    }

    pub(crate) fn init(&self, n_features: usize, outputs: usize, device: &Device) -> MlpNet {
        let (hidden, output) = self.linear_shapes(n_features, outputs);
        let linear = |&(from, to): &(usize, usize)| LinearConfig::new(from, to).init(device);
        let (hidden, output) = (hidden.iter().map(linear).collect(), linear(&output));
        let norms = if self.batch_norm {
            (0..self.depth)
                .map(|_| BatchNormConfig::new(self.hidden_width).init(device))
                .collect()
        } else {
            Vec::new()
        };
        MlpNet {
            hidden,
            norms,
            activation: self.activation.config().init(device),
            output,
            dropout: DropoutConfig::new(self.dropout).init(),
        }
    }
}

/// The activation of an MLP's hidden layers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MlpActivation {
    /// max(0, x).
    #[default]
    Relu,
    /// The Gaussian error linear unit.
    Gelu,
    /// The hyperbolic tangent.
    Tanh,
}

impl MlpActivation {
    /// The activation called `name` (`relu`, `gelu`, `tanh`).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "relu" => Some(MlpActivation::Relu),
            "gelu" => Some(MlpActivation::Gelu),
            "tanh" => Some(MlpActivation::Tanh),
            _ => None,
        }
    }

    fn config(self) -> ActivationConfig {
        match self {
            MlpActivation::Relu => ActivationConfig::Relu,
            MlpActivation::Gelu => ActivationConfig::Gelu,
            MlpActivation::Tanh => ActivationConfig::Tanh,
        }
    }
}

/// The burn network: `depth` x (linear, batch norm if configured, activation, dropout), then a
/// linear layer to the outputs.
#[derive(Module, Debug)]
pub(crate) struct MlpNet {
    hidden: Vec<Linear>,
    norms: Vec<BatchNorm>,
    activation: Activation,
    output: Linear,
    dropout: Dropout,
}

impl Net for MlpNet {
    fn forward(&self, x: Tensor<2>) -> Tensor<2> {
        let mut x = x;
        for (i, layer) in self.hidden.iter().enumerate() {
            x = layer.forward(x);
            if let Some(norm) = self.norms.get(i) {
                x = norm.forward(x);
            }
            x = self.dropout.forward(self.activation.forward(x));
        }
        self.output.forward(x)
    }
}
