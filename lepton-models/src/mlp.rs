//! The multi-layer perceptron: its configuration, its network, and the classifier and
//! regressor built on them.

use std::borrow::Borrow;
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use burn::module::Module;
use burn::nn::activation::{Activation, ActivationConfig};
use burn::nn::{BatchNorm, BatchNormConfig, Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

use lepton_core::{Dataset, Model, ParamValue, Task, TrialContext};

use crate::backend::{Backend, Cpu};
use crate::error::{ModelError, Result};
use crate::fitted_mlp::FittedMlp;
use crate::head::Head;
use crate::net::Net;
use crate::optimisation::Optimisation;
use crate::param;
use crate::training::{Rows, RunOptions, Standardise, TrainingSetup, train};

/// The hyper-parameters of an [`MlpClassifier`] or [`MlpRegressor`]. Serialisable; checked
/// before any work starts.
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
    /// Batch normalisation after each hidden layer's linear map, before its activation.
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
    /// The optimiser (Adam by default), weight decay, gradient clipping and learning-rate
    /// schedule; `learning_rate` is the schedule's peak.
    #[serde(default)]
    pub optimisation: Optimisation,
    /// Seed for weight initialisation, shuffling and dropout.
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
            optimisation: Optimisation::default(),
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
        self.optimisation.check()
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
                other => return self.optimisation.set_param(other, value),
            }
            Ok(true)
        })?;
        self.check()?;
        Ok(self)
    }

    pub(crate) fn setup(&self) -> TrainingSetup {
        TrainingSetup {
            learning_rate: self.learning_rate,
            batch_size: self.batch_size,
            max_epochs: self.max_epochs,
            patience: self.patience,
            seed: self.seed,
            shift: None,
            optimisation: self.optimisation,
            checkpoints: None,
            time_limit: None,
            epoch_budget: None,
            replicas: Vec::new(),
            reports_per_epoch: 1,
        }
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
            let scale = standardise(train_data)?;
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
fn standardise(d: &dyn Dataset) -> Result<Standardise> {
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
    Ok(Standardise {
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

            /// Checkpoints every epoch into `dir`, and resumes from the checkpoint there if
            /// one of the same configuration exists (see [`checkpoint`](crate::checkpoint)).
            pub fn with_checkpoints(mut self, dir: impl Into<PathBuf>) -> Self {
                self.run.checkpoints = Some(dir.into());
                self
            }

            /// Starts no new epoch once `limit` has passed since training began; the best
            /// weights so far are kept (a search can compare candidates at equal time).
            pub fn with_time_limit(mut self, limit: Duration) -> Self {
                self.run.time_limit = Some(limit);
                self
            }

            /// Trains only up to epoch `epochs` of the configured `max_epochs`, as a budget
            /// within the longer run: the learning-rate schedule still spans `max_epochs`, so
            /// with [`with_checkpoints`](Self::with_checkpoints) a later call with a larger
            /// budget resumes where this one stopped and goes on as an uninterrupted run
            /// would (a trial promoted by successive halving need not start over).
            pub fn with_epoch_budget(mut self, epochs: usize) -> Self {
                self.run.epoch_budget = Some(epochs);
                self
            }

            /// Trains data-parallel on `devices` devices of `B` (see [`Backend::devices`]):
            /// every batch is split into equal shards, each device computes its shard's
            /// gradients on a copy of the network, and the main device sums them and takes
            /// the optimiser step, so the update is the whole batch's. Batch norm normalises
            /// each shard by its own statistics, and its running statistics average the
            /// shards' (a step late); dropout masks come from the backend's one generator,
            /// drawn by several threads, so a run with dropout does not repeat exactly. 0 is
            /// refused when training; a device that fails ends it with
            /// [`ModelError::Device`].
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
    "An MLP regressor trained on backend `B` (squared error of the standardised target, \
     scored by R²)."
);
