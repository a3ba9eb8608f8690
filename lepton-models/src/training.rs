//! The supervised training loop shared by Lepton's burn classifiers: Adam, shuffled
//! mini-batches, per-epoch validation reported to the trial, early stopping that keeps the
//! best weights, and pruning.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};

use lepton_core::{Dataset, Error, Target, TrialContext};

use crate::error::{ModelError, Result};

/// A network that maps a batch of feature rows to class logits.
pub(crate) trait ClassifierNet: Module {
    fn forward(&self, x: Tensor<2>) -> Tensor<2>;
}

/// The training hyper-parameters the loop needs.
#[derive(Debug, Clone)]
pub(crate) struct TrainingSetup {
    pub learning_rate: f64,
    pub batch_size: usize,
    pub max_epochs: usize,
    pub patience: usize,
    pub seed: u64,
}

/// What happened during training.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainingSummary {
    /// Epochs actually run (fewer than the maximum when stopped early).
    pub epochs_run: usize,
    /// The epoch whose weights were kept (the last one when there is no validation set).
    pub best_epoch: usize,
    /// Validation accuracy of the kept weights, when there was a validation set.
    pub best_valid_accuracy: Option<f64>,
    /// Validation cross-entropy of the kept weights, when there was a validation set.
    pub best_valid_loss: Option<f64>,
    /// Mean training loss of the last epoch.
    pub final_train_loss: f64,
}

/// A dataset flattened for batching: row-major features and class indices.
pub(crate) struct ClassRows {
    pub x: Vec<f32>,
    pub y: Vec<i64>,
    pub width: usize,
}

impl ClassRows {
    pub fn from_dataset(d: &dyn Dataset, width: usize, n_classes: usize) -> Result<Self> {
        let mut x = Vec::with_capacity(d.len() * width);
        let mut y = Vec::with_capacity(d.len());
        for i in 0..d.len() {
            let row = d
                .features(i)
                .ok_or_else(|| ModelError::InvalidData(format!("row {i} is missing")))?;
            if row.len() != width {
                return Err(ModelError::InvalidData(format!(
                    "row {i} has {} features, the model expects {width}",
                    row.len()
                )));
            }
            match d.target(i) {
                Some(Target::Class(c)) if c < n_classes => y.push(c as i64),
                other => {
                    return Err(ModelError::InvalidData(format!(
                        "row {i}: target {other:?} is not one of {n_classes} classes"
                    )));
                }
            }
            x.extend_from_slice(row);
        }
        Ok(ClassRows { x, y, width })
    }

    pub fn len(&self) -> usize {
        self.y.len()
    }

    fn batch(&self, rows: &[usize], device: &Device) -> (Tensor<2>, Tensor<1, Int>) {
        let mut xb = Vec::with_capacity(rows.len() * self.width);
        let mut yb = Vec::with_capacity(rows.len());
        for &r in rows {
            xb.extend_from_slice(&self.x[r * self.width..(r + 1) * self.width]);
            yb.push(self.y[r]);
        }
        (
            Tensor::from_data(TensorData::new(xb, [rows.len(), self.width]), device),
            Tensor::from_data(TensorData::new(yb, [rows.len()]), device),
        )
    }
}

/// Trains `net` (created on `device`) and returns it in inference mode on `device`.
pub(crate) fn train_classifier<M: ClassifierNet>(
    net: M,
    train: &ClassRows,
    valid: &ClassRows,
    setup: &TrainingSetup,
    device: &Device,
    ctx: &mut dyn TrialContext,
) -> Result<(M, TrainingSummary)> {
    if train.len() == 0 {
        return Err(ModelError::InvalidData("no training rows".into()));
    }
    let ad = device.clone().autodiff();
    // `train` turns gradient tracking on: a net built on a plain device has none.
    let mut net = net.fork(&ad).train();
    let mut optim = AdamConfig::new().init();
    let loss_fn = CrossEntropyLossConfig::new().init(&ad);
    let mut rng = StdRng::seed_from_u64(setup.seed);
    let mut order: Vec<usize> = (0..train.len()).collect();

    let mut best: Option<(M, f64, f64, usize)> = None; // (weights, accuracy, loss, epoch)
    let mut summary = TrainingSummary {
        epochs_run: 0,
        best_epoch: 0,
        best_valid_accuracy: None,
        best_valid_loss: None,
        final_train_loss: f64::NAN,
    };
    for epoch in 1..=setup.max_epochs {
        order.shuffle(&mut rng);
        let mut loss_sum = 0.0;
        let mut batches = 0usize;
        for rows in order.chunks(setup.batch_size) {
            let (x, y) = train.batch(rows, &ad);
            let loss = loss_fn.forward(net.forward(x), y).mean();
            let value = f64::from(loss.clone().into_scalar::<f32>());
            if !value.is_finite() {
                return Err(ModelError::Diverged { epoch, loss: value });
            }
            loss_sum += value;
            batches += 1;
            let grads = GradientsParams::from_grads(loss.backward(), &net);
            net = optim.step(setup.learning_rate, net, grads);
        }
        summary.epochs_run = epoch;
        summary.final_train_loss = loss_sum / batches.max(1) as f64;

        if valid.len() == 0 {
            continue;
        }
        let inference = net.valid();
        let (accuracy, loss) = evaluate(&inference, valid, device);
        if !loss.is_finite() {
            return Err(ModelError::Diverged { epoch, loss });
        }
        tracing::debug!(
            epoch,
            train_loss = summary.final_train_loss,
            valid_accuracy = accuracy,
            valid_loss = loss,
            "epoch done"
        );
        ctx.report(epoch as u64, accuracy)?;
        let improved = match &best {
            None => true,
            Some((_, a, l, _)) => accuracy > *a || (accuracy == *a && loss < *l),
        };
        if improved {
            best = Some((inference, accuracy, loss, epoch));
        }
        if ctx.should_prune() {
            return Err(Error::Pruned { step: epoch as u64 }.into());
        }
        if let Some((_, _, _, best_epoch)) = &best
            && epoch - best_epoch >= setup.patience
        {
            tracing::debug!(epoch, best_epoch, "early stopping");
            break;
        }
    }
    Ok(match best {
        Some((weights, accuracy, loss, epoch)) => {
            summary.best_epoch = epoch;
            summary.best_valid_accuracy = Some(accuracy);
            summary.best_valid_loss = Some(loss);
            (weights, summary)
        }
        None => {
            summary.best_epoch = summary.epochs_run;
            (net.valid(), summary)
        }
    })
}

/// Accuracy and mean cross-entropy of `net` (in inference mode) on `data`.
fn evaluate<M: ClassifierNet>(net: &M, data: &ClassRows, device: &Device) -> (f64, f64) {
    let rows: Vec<usize> = (0..data.len()).collect();
    let (mut correct, mut loss_sum) = (0usize, 0.0f64);
    let loss_fn = CrossEntropyLossConfig::new().init(device);
    for chunk in rows.chunks(1024) {
        let (x, y) = data.batch(chunk, device);
        let logits = net.forward(x);
        let loss = loss_fn.forward(logits.clone(), y.clone()).mean();
        loss_sum += f64::from(loss.into_scalar::<f32>()) * chunk.len() as f64;
        let hits = logits.argmax(1).flatten::<1>(0, 1).equal(y);
        correct += hits.int().sum().into_scalar::<i64>() as usize;
    }
    let n = data.len() as f64;
    (correct as f64 / n, loss_sum / n)
}
