//! The supervised training loop shared by Lepton's burn networks: the configured optimizer
//! and learning-rate schedule, shuffled (optionally shifted) mini-batches, validation reported
//! to the trial after every epoch (or several times an epoch), early stopping that keeps the
//! best weights, and pruning. Classification minimizes cross-entropy and scores accuracy;
//! regression minimizes the squared error of standardized targets and scores R².

use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use serde::{Deserialize, Serialize};

use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{GradientsAccumulator, GradientsParams};
use burn::tensor::{Device, Int, Tensor, TensorData};

use lepton_core::{Dataset, Error, Target, TrialContext};

use crate::checkpoint::Checkpoints;
use crate::error::{ModelError, Result};
use crate::head::Head;
use crate::metrics::ConfusionMatrix;
use crate::net::Net;
use crate::optimizer::Optimizer;
use crate::param;
use crate::training_summary::TrainingSummary;

/// The training hyper-parameters the loop needs.
#[derive(Debug, Clone)]
pub(crate) struct TrainingSetup {
    pub learning_rate: f64,
    pub batch_size: usize,
    pub max_epochs: usize,
    pub patience: usize,
    pub seed: u64,
    /// Random shifts of training images, if the rows are images.
    pub shift: Option<ImageShift>,
    /// The optimizer, weight decay, clipping and learning-rate schedule.
    pub optimizer: Optimizer,
    /// Where to checkpoint every epoch and resume from, if anywhere.
    pub checkpoints: Option<Checkpoints>,
    /// Wall time after which no new epoch starts (the best weights so far are kept).
    pub time_limit: Option<Duration>,
    /// The last epoch this run trains, when it is a budget within a longer run of
    /// `max_epochs` (the schedule still spans `max_epochs`, so a run resumed from its
    /// checkpoint with a larger budget goes on as an uninterrupted one would).
    pub epoch_budget: Option<usize>,
    /// Further devices that each take an equal share of every batch (data-parallel
    /// training); empty trains on the main device alone.
    pub replicas: Vec<Device>,
    /// How many times an epoch is validated and reported, after as nearly equal numbers of
    /// batches as can be (the last at its end); see
    /// [`TrainingRun::with_reports_per_epoch`](crate::TrainingRun::with_reports_per_epoch).
    pub reports_per_epoch: usize,
}

/// Random translations of training images (simple augmentation): each image is moved by up
/// to `max` pixels along each axis, zeros shifted in, a new draw per image and epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ImageShift {
    pub height: usize,
    pub width: usize,
    pub max: usize,
}

/// Appends `image` (`height x width`, row-major) moved down by `dy` and right by `dx` pixels
/// to `out`; pixels moved in from outside are 0.
fn push_shifted(image: &[f32], height: usize, width: usize, dy: i64, dx: i64, out: &mut Vec<f32>) {
    for y in 0..height as i64 {
        let sy = y - dy;
        for x in 0..width as i64 {
            let sx = x - dx;
            let inside = (0..height as i64).contains(&sy) && (0..width as i64).contains(&sx);
            out.push(if inside {
                image[(sy * width as i64 + sx) as usize]
            } else {
                0.0
            });
        }
    }
}

/// Targets ready for batching.
pub(crate) enum Targets {
    /// Class indices.
    Classes(Vec<i64>),
    /// Standardized real values.
    Values(Vec<f32>),
}

/// A dataset flattened for batching: row-major features and targets.
pub(crate) struct Rows {
    pub x: Vec<f32>,
    pub targets: Targets,
    pub width: usize,
}

/// Where the targets of a regression are moved to before training: `(y - mean) / sd`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub(crate) struct Standardize {
    pub mean: f64,
    pub sd: f64,
}

impl Rows {
    /// Rows of class targets below `n_classes`.
    pub fn classes(d: &dyn Dataset, width: usize, n_classes: usize) -> Result<Self> {
        let mut y = Vec::with_capacity(d.len());
        let x = features(d, width, |i, t| match t {
            Some(Target::Class(c)) if c < n_classes => {
                y.push(c as i64);
                Ok(())
            }
            other => Err(ModelError::InvalidData(format!(
                "row {i}: target {other:?} is not one of {n_classes} classes"
            ))),
        })?;
        Ok(Rows {
            x,
            targets: Targets::Classes(y),
            width,
        })
    }

    /// Rows of real targets, standardized by `scale`.
    pub fn values(d: &dyn Dataset, width: usize, scale: Standardize) -> Result<Self> {
        let mut y = Vec::with_capacity(d.len());
        let x = features(d, width, |i, t| match t {
            Some(Target::Value(v)) if v.is_finite() => {
                y.push(((v - scale.mean) / scale.sd) as f32);
                Ok(())
            }
            other => Err(ModelError::InvalidData(format!(
                "row {i}: target {other:?} is not a finite number"
            ))),
        })?;
        Ok(Rows {
            x,
            targets: Targets::Values(y),
            width,
        })
    }

    /// No rows, with the targets `head` describes (training without validation).
    pub fn empty(width: usize, head: Head) -> Self {
        let targets = match head {
            Head::Classes { .. } => Targets::Classes(Vec::new()),
            Head::Value { .. } => Targets::Values(Vec::new()),
        };
        Rows {
            x: Vec::new(),
            targets,
            width,
        }
    }

    pub fn len(&self) -> usize {
        self.x.len() / self.width.max(1)
    }

    /// The inputs of `rows` on `device`, as they are.
    fn inputs(&self, rows: &[usize], device: &Device) -> Tensor<2> {
        Tensor::from_data(self.batch_data(rows, None), device)
    }

    /// The inputs of `rows` as data on no device yet, each image moved at random (drawn from
    /// the generator, row by row) if `shift` is given.
    fn batch_data(
        &self,
        rows: &[usize],
        mut shift: Option<(ImageShift, &mut StdRng)>,
    ) -> TensorData {
        let mut xb = Vec::with_capacity(rows.len() * self.width);
        for &r in rows {
            let row = &self.x[r * self.width..(r + 1) * self.width];
            match &mut shift {
                Some((shift, rng)) => {
                    let m = shift.max as i64;
                    let (dy, dx) = (rng.random_range(-m..=m), rng.random_range(-m..=m));
                    push_shifted(row, shift.height, shift.width, dy, dx, &mut xb);
                }
                None => xb.extend_from_slice(row),
            }
        }
        TensorData::new(xb, [rows.len(), self.width])
    }

    /// Mean loss of `out` against the targets of `rows`.
    fn loss(&self, out: Tensor<2>, rows: &[usize], device: &Device) -> Tensor<1> {
        match &self.targets {
            Targets::Classes(y) => {
                let yb: Vec<i64> = rows.iter().map(|&r| y[r]).collect();
                let yb = Tensor::<1, Int>::from_data(TensorData::new(yb, [rows.len()]), device);
                CrossEntropyLossConfig::new()
                    .init(device)
                    .forward(out, yb)
                    .mean()
            }
            Targets::Values(y) => {
                let yb: Vec<f32> = rows.iter().map(|&r| y[r]).collect();
                let yb = Tensor::<2>::from_data(TensorData::new(yb, [rows.len(), 1]), device);
                (out - yb).powf_scalar(2.0).mean()
            }
        }
    }
}

/// Collects features of width `width`, handing each row's target to `take`.
fn features(
    d: &dyn Dataset,
    width: usize,
    mut take: impl FnMut(usize, Option<Target>) -> Result<()>,
) -> Result<Vec<f32>> {
    let mut x = Vec::with_capacity(d.len() * width);
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
        take(i, d.target(i))?;
        x.extend_from_slice(row);
    }
    Ok(x)
}

/// Trains `net` and returns it in inference mode on `device`.
pub(crate) fn train<M: Net>(
    net: M,
    train: &Rows,
    valid: &Rows,
    setup: &TrainingSetup,
    device: &Device,
    ctx: &mut dyn TrialContext,
) -> Result<(M, TrainingSummary)> {
    if train.len() == 0 {
        return Err(ModelError::InvalidData("no training rows".into()));
    }
    let ad = device.clone().autodiff();
    let replicas: Vec<Device> = setup
        .replicas
        .iter()
        .map(|d| d.clone().autodiff())
        .collect();
    let inference_template = net.clone();
    // `train` turns gradient tracking on: a net built on a plain device has none.
    let mut net = net.fork(&ad).train();
    let mut optim = setup.optimizer.build();
    let steps_per_epoch = train.len().div_ceil(setup.batch_size.max(1));
    let mut schedule =
        setup
            .optimizer
            .scheduler(setup.learning_rate, steps_per_epoch, setup.max_epochs)?;
    let mut order: Vec<usize> = (0..train.len()).collect();
    let run_started = Instant::now();
    let out_of_time = || setup.time_limit.is_some_and(|t| run_started.elapsed() >= t);

    let mut best: Option<(M, f64, f64, usize)> = None; // (weights, score, loss, epoch)
    let mut summary = TrainingSummary {
        epochs_run: 0,
        best_epoch: 0,
        best_valid_score: None,
        best_valid_loss: None,
        best_valid_confusion: None,
        final_train_loss: f64::NAN,
        train_seconds: 0.0,
        valid_seconds: 0.0,
    };
    let mut first_epoch = 1;
    if let Some(checkpoints) = &setup.checkpoints
        && let Some(resumed) = checkpoints.load(net.clone(), inference_template, optim.clone())?
    {
        tracing::info!(epoch = resumed.epoch, "resuming from a checkpoint");
        (net, optim, summary, best) = (
            resumed.net,
            resumed.optimizer,
            resumed.summary,
            resumed.best,
        );
        first_epoch = resumed.epoch + 1;
        // The schedule is a function of the step: replay it to where the run stopped.
        for _ in 0..resumed.epoch * steps_per_epoch {
            schedule.step();
        }
    }
    let last_epoch = setup
        .epoch_budget
        .map_or(setup.max_epochs, |b| b.min(setup.max_epochs));
    let per_epoch = setup.reports_per_epoch;
    if per_epoch == 0 || per_epoch > steps_per_epoch {
        return Err(param::invalid(
            "reports_per_epoch",
            format!(
                "{per_epoch} reports per epoch: an epoch needs at least 1 report, and at most \
                 one per batch (it has only {steps_per_epoch} batches)"
            ),
        ));
    }
    // The number of batches after which an epoch's `j`-th report comes (its last at its end).
    let report_after = |j: usize| (j * steps_per_epoch).div_ceil(per_epoch);
    // Scores the weights, reports the score as `step` and keeps them if they are the best so
    // far; returns the score and the loss.
    let validate = |net: &M,
                    epoch: usize,
                    step: u64,
                    ctx: &mut dyn TrialContext,
                    best: &mut Option<(M, f64, f64, usize)>,
                    summary: &mut TrainingSummary|
     -> Result<(f64, f64)> {
        let started = Instant::now();
        let inference = net.valid();
        let (score, loss, confusion) = evaluate(&inference, valid, device)?;
        summary.valid_seconds += started.elapsed().as_secs_f64();
        if !loss.is_finite() || !score.is_finite() {
            return Err(ModelError::Diverged { epoch, loss });
        }
        ctx.report(step, score)?;
        let improved = match best {
            None => true,
            Some((_, s, l, _)) => score > *s || (score == *s && loss < *l),
        };
        if improved {
            *best = Some((inference, score, loss, epoch));
            summary.best_valid_confusion = confusion;
        }
        Ok((score, loss))
    };
    for epoch in first_epoch..=last_epoch {
        // Each epoch's shuffle and shifts come from its own seed, so a resumed run draws what
        // an uninterrupted one would have.
        let mut rng = StdRng::seed_from_u64(setup.seed ^ (epoch as u64).wrapping_mul(0x9e37_79b9));
        order.sort_unstable();
        order.shuffle(&mut rng);
        let mut loss_sum = 0.0;
        let mut batches = 0usize;
        let mut reports = 0usize;
        let mut started = Instant::now();
        for rows in order.chunks(setup.batch_size) {
            let (value, grads) = if replicas.is_empty() {
                let shift = setup.shift.map(|s| (s, &mut rng));
                let inputs = Tensor::from_data(train.batch_data(rows, shift), &ad);
                let loss = train.loss(net.forward(inputs), rows, &ad);
                let value = f64::from(loss.clone().into_scalar::<f32>());
                (value, GradientsParams::from_grads(loss.backward(), &net))
            } else {
                data_parallel_step(&net, train, rows, setup.shift, &mut rng, &ad, &replicas)?
            };
            if !value.is_finite() {
                return Err(ModelError::Diverged { epoch, loss: value });
            }
            loss_sum += value;
            batches += 1;
            net = optim.step(schedule.step(), net, grads);
            // The reports within the epoch; its last comes after the epoch's bookkeeping.
            if reports + 1 < per_epoch && batches == report_after(reports + 1) && valid.len() > 0 {
                reports += 1;
                summary.train_seconds += started.elapsed().as_secs_f64();
                let step = ((epoch - 1) * per_epoch + reports) as u64;
                let (score, loss) = validate(&net, epoch, step, ctx, &mut best, &mut summary)?;
                tracing::info!(
                    epoch,
                    step,
                    valid_score = score,
                    valid_loss = loss,
                    "validated"
                );
                if ctx.should_prune() {
                    return Err(Error::Pruned { step }.into());
                }
                started = Instant::now();
            }
        }
        summary.epochs_run = epoch;
        summary.final_train_loss = loss_sum / batches.max(1) as f64;
        summary.train_seconds += started.elapsed().as_secs_f64();

        if valid.len() == 0 {
            if let Some(c) = &setup.checkpoints {
                c.save(epoch, &net, &optim, &summary, best.as_ref())?;
            }
            if out_of_time() {
                tracing::debug!(epoch, "time limit reached");
                break;
            }
            continue;
        }
        let step = (epoch * per_epoch) as u64;
        let (score, loss) = validate(&net, epoch, step, ctx, &mut best, &mut summary)?;
        tracing::info!(
            epoch,
            train_loss = summary.final_train_loss,
            valid_score = score,
            valid_loss = loss,
            "epoch done"
        );
        if let Some(c) = &setup.checkpoints {
            c.save(epoch, &net, &optim, &summary, best.as_ref())?;
        }
        if ctx.should_prune() {
            return Err(Error::Pruned { step }.into());
        }
        if let Some((_, _, _, best_epoch)) = &best
            && epoch - best_epoch >= setup.patience
        {
            tracing::debug!(epoch, best_epoch, "early stopping");
            break;
        }
        if out_of_time() {
            tracing::debug!(epoch, "time limit reached");
            break;
        }
    }
    Ok(match best {
        Some((weights, score, loss, epoch)) => {
            summary.best_epoch = epoch;
            summary.best_valid_score = Some(score);
            summary.best_valid_loss = Some(loss);
            (weights, summary)
        }
        None => {
            summary.best_epoch = summary.epochs_run;
            (net.valid(), summary)
        }
    })
}

/// One step's mean loss and gradients with the batch `rows` split into equal shards, one per
/// device of `replicas` after `main`: each device runs a copy of `net` (burn's `fork`) on its
/// shard, the main device's on the calling thread and each other's in a thread of its own;
/// each shard's loss is weighted by its share of the batch, and the gradients are moved to
/// `main` and summed there (burn's `GradientsAccumulator`), which gives the gradient of the
/// whole batch's mean loss, as burn-train's multi-device strategy with the optimizer on the
/// main device does. burn 0.22's all-reduce (`DistributedContext`) would leave the gradients
/// on every device instead, but only its CUDA backend implements it (flex has no collective
/// operations, wgpu reports no device transport).
///
/// Batch norm's running statistics are burn's `RunningState`, shared by the copies: each
/// thread's update waits in it until a thread updates again, which merges (averages) all
/// waiting ones. The main shard runs on the same thread every step, so each step merges the
/// last step's updates from every shard; a device that fails (one that does not exist, say)
/// ends the run with [`ModelError::Device`].
fn data_parallel_step<M: Net>(
    net: &M,
    data: &Rows,
    rows: &[usize],
    shift: Option<ImageShift>,
    rng: &mut StdRng,
    main: &Device,
    replicas: &[Device],
) -> Result<(f64, GradientsParams)> {
    let devices: Vec<&Device> = std::iter::once(main).chain(replicas).collect();
    let size = rows.len().div_ceil(devices.len());
    let batch = rows.len() as f64;
    // The inputs are drawn in row order, so the random shifts are those of a one-device run.
    let mut shards = rows.chunks(size).zip(devices).map(|(shard, device)| {
        let inputs = data.batch_data(shard, shift.map(|s| (s, &mut *rng)));
        (shard, device, inputs, net.clone())
    });
    let shard_step = |(shard, device, inputs, replica): (&[usize], &Device, TensorData, M)| {
        let replica = replica.fork(device);
        let out = replica.forward(Tensor::from_data(inputs, device));
        let loss = data.loss(out, shard, device);
        let share = shard.len() as f64 / batch;
        let value = f64::from(loss.clone().into_scalar::<f32>()) * share;
        let grads = loss.mul_scalar(share as f32).backward();
        let grads = GradientsParams::from_grads(grads, &replica).to_device(main, &replica);
        (value, grads)
    };
    let first = shards
        .next()
        .ok_or_else(|| ModelError::InvalidData("a training batch without rows".into()))?;
    let shard_step = &shard_step;
    let results = std::thread::scope(|scope| {
        let others: Vec<_> = shards
            .map(|work| scope.spawn(move || shard_step(work)))
            .collect();
        let mut results = vec![Ok(shard_step(first))];
        for (i, handle) in others.into_iter().enumerate() {
            results.push(handle.join().map_err(|panic| {
                let why = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("no message");
                ModelError::Device(format!("replica {} failed: {why}", i + 1))
            }));
        }
        results
    });
    let mut value = 0.0;
    let mut sum = GradientsAccumulator::<M>::new();
    for result in results {
        let (shard_value, grads) = result?;
        value += shard_value;
        sum.accumulate(net, grads);
    }
    Ok((value, sum.grads()))
}

/// Score and (classification) confusion matrix of `net` on `data`.
fn evaluate<M: Net>(
    net: &M,
    data: &Rows,
    device: &Device,
) -> Result<(f64, f64, Option<ConfusionMatrix>)> {
    let rows: Vec<usize> = (0..data.len()).collect();
    let (mut loss_sum, mut predicted, mut classes) = (0.0f64, Vec::new(), 0);
    for chunk in rows.chunks(1024) {
        let out = net.forward(data.inputs(chunk, device));
        let loss = data.loss(out.clone(), chunk, device);
        loss_sum += f64::from(loss.into_scalar::<f32>()) * chunk.len() as f64;
        if let Targets::Classes(_) = &data.targets {
            classes = out.dims()[1];
            let chosen = out.argmax(1).flatten::<1>(0, 1).into_data();
            predicted.extend(chosen.iter::<i64>().map(|c| c as usize));
        }
    }
    let confusion = match &data.targets {
        Targets::Classes(y) if !y.is_empty() => {
            let truth: Vec<usize> = y.iter().map(|&c| c as usize).collect();
            Some(ConfusionMatrix::new(classes, &truth, &predicted)?)
        }
        _ => None,
    };
    let n = data.len() as f64;
    let loss = loss_sum / n;
    let score = match (&data.targets, &confusion) {
        (Targets::Classes(_), Some(m)) => m.accuracy(),
        (Targets::Classes(_), None) => 0.0,
        (Targets::Values(y), _) => {
            // R² = 1 - SSE / SST, both on the standardized scale (R² is scale-free).
            let mean = y.iter().map(|&v| f64::from(v)).sum::<f64>() / n;
            let sst = y
                .iter()
                .map(|&v| (f64::from(v) - mean).powi(2))
                .sum::<f64>();
            if sst > 0.0 { 1.0 - loss * n / sst } else { 0.0 }
        }
    };
    Ok((score, loss, confusion))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shifted_images_move_and_fill_with_zeros() {
        let image = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]; // 2 x 3
        let shifted = |dy, dx| {
            let mut out = Vec::new();
            push_shifted(&image, 2, 3, dy, dx, &mut out);
            out
        };
        assert_eq!(shifted(0, 0), image);
        assert_eq!(shifted(0, 1), [0.0, 1.0, 2.0, 0.0, 4.0, 5.0]);
        assert_eq!(shifted(1, -1), [0.0, 0.0, 0.0, 2.0, 3.0, 0.0]);
        assert_eq!(shifted(2, 0), [0.0; 6]);
    }
}
