//! The supervised training loop shared by Lepton's burn networks: the configured optimizer
//! and learning-rate schedule, shuffled (optionally shifted) mini-batches, validation reported
//! to the trial after every epoch (or several times an epoch), early stopping that keeps the
//! best weights, and pruning. Classification minimizes cross-entropy and scores accuracy;
//! regression minimizes the squared error of standardized targets and scores R².

use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::optim::{GradientsAccumulator, GradientsParams, ModuleOptimizer};
use burn::tensor::{Device, Tensor, TensorData};

use lepton_core::{Error, TrialContext};

use crate::checkpoint::Checkpoints;
use crate::error::{ModelError, Result};
use crate::metrics::ConfusionMatrix;
use crate::net::Net;
use crate::optimizer::Optimizer;
use crate::param;
use crate::rows::{ImageShift, Rows, Targets};
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

impl TrainingSetup {
    /// The hyper-parameters every network shares, without shifts, checkpoints or limits.
    pub fn new(
        learning_rate: f64,
        batch_size: usize,
        max_epochs: usize,
        patience: usize,
        seed: u64,
        optimizer: Optimizer,
    ) -> Self {
        TrainingSetup {
            learning_rate,
            batch_size,
            max_epochs,
            patience,
            seed,
            shift: None,
            optimizer,
            checkpoints: None,
            time_limit: None,
            epoch_budget: None,
            replicas: Vec::new(),
            reports_per_epoch: 1,
        }
    }

    /// Refuses a learning rate outside `(0, 1]` and a batch size, epoch count or patience
    /// of 0: what a network's configuration checks of these (its optimizer is checked apart).
    pub fn check(&self) -> Result<()> {
        let lr = self.learning_rate;
        if !(lr.is_finite() && lr > 0.0 && lr <= 1.0) {
            return Err(param::invalid(
                "learning_rate",
                format!("{lr} is outside (0, 1]"),
            ));
        }
        for (name, v) in [
            ("batch_size", self.batch_size),
            ("max_epochs", self.max_epochs),
            ("patience", self.patience),
        ] {
            if v == 0 {
                return Err(param::invalid(name, "must be at least 1".into()));
            }
        }
        Ok(())
    }
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
    let steps_per_epoch = train.len().div_ceil(setup.batch_size.max(1));
    let run_started = Instant::now();
    let out_of_time = || setup.time_limit.is_some_and(|t| run_started.elapsed() >= t);
    let (mut state, first_epoch) = TrainingState::start(net, setup, steps_per_epoch, &ad)?;
    let last_epoch = setup
        .epoch_budget
        .map_or(setup.max_epochs, |b| b.min(setup.max_epochs));
    let reports = Reports::new(setup.reports_per_epoch, steps_per_epoch)?;
    let mut order: Vec<usize> = (0..train.len()).collect();
    let mut batches = Batches {
        train,
        order: &mut order,
        ad: &ad,
        replicas: &replicas,
    };
    for epoch in first_epoch..=last_epoch {
        state = state.train_epoch(epoch, &mut batches, valid, device, &reports, ctx)?;
        if valid.len() == 0 {
            state.checkpoint(epoch)?;
            if out_of_time() {
                tracing::debug!(epoch, "time limit reached");
                break;
            }
            continue;
        }
        let step = reports.at_end_of(epoch);
        let (score, loss) = state.validate(valid, device, epoch, step, ctx)?;
        tracing::info!(
            epoch,
            train_loss = state.summary.final_train_loss,
            valid_score = score,
            valid_loss = loss,
            "epoch done"
        );
        state.checkpoint(epoch)?;
        if ctx.should_prune() {
            return Err(Error::Pruned { step }.into());
        }
        if let Some((_, _, _, best_epoch)) = &state.best
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
    Ok(state.finish())
}

/// When an epoch's validation reports come: `per_epoch` of them, after as nearly equal numbers
/// of its `steps_per_epoch` batches as can be, the last at its end.
struct Reports {
    per_epoch: usize,
    steps_per_epoch: usize,
}

impl Reports {
    /// Refuses no report an epoch, or more reports than batches.
    fn new(per_epoch: usize, steps_per_epoch: usize) -> Result<Reports> {
        if per_epoch == 0 || per_epoch > steps_per_epoch {
            return Err(param::invalid(
                "reports_per_epoch",
                format!(
                    "{per_epoch} reports per epoch: an epoch needs at least 1 report, and at \
                     most one per batch (it has only {steps_per_epoch} batches)"
                ),
            ));
        }
        Ok(Reports {
            per_epoch,
            steps_per_epoch,
        })
    }

    /// Whether, with `reported` reports made in the epoch, the next is due once `ran` of its
    /// batches have run (the epoch's last report is made at its end, not here).
    fn due_within(&self, reported: usize, ran: usize) -> bool {
        reported + 1 < self.per_epoch
            && ran == ((reported + 1) * self.steps_per_epoch).div_ceil(self.per_epoch)
    }

    /// The step of epoch `epoch`'s `j`-th report within it.
    fn within(&self, epoch: usize, j: usize) -> u64 {
        ((epoch - 1) * self.per_epoch + j) as u64
    }

    /// The step of epoch `epoch`'s last report, at its end.
    fn at_end_of(&self, epoch: usize) -> u64 {
        (epoch * self.per_epoch) as u64
    }
}

/// Where the training batches come from: the rows, their order (shuffled every epoch), and the
/// autodiff devices that compute them.
struct Batches<'a> {
    train: &'a Rows,
    order: &'a mut Vec<usize>,
    ad: &'a Device,
    replicas: &'a [Device],
}

/// A training run between its epochs: the network being trained, its optimizer and
/// learning-rate schedule, the best weights so far (with their score, loss and epoch) and the
/// summary; restored from the last checkpoint when there is one.
struct TrainingState<'a, M: Net> {
    setup: &'a TrainingSetup,
    net: M,
    optim: ModuleOptimizer,
    schedule: ModuleLrScheduler,
    best: Option<(M, f64, f64, usize)>,
    summary: TrainingSummary,
}

impl<'a, M: Net> TrainingState<'a, M> {
    /// A fresh run on the autodiff device `ad`, or the one its checkpoint holds, with the
    /// first epoch to train.
    fn start(
        net: M,
        setup: &'a TrainingSetup,
        steps_per_epoch: usize,
        ad: &Device,
    ) -> Result<(Self, usize)> {
        let inference_template = net.clone();
        // `train` turns gradient tracking on: a net built on a plain device has none.
        let net = net.fork(ad).train();
        let optim = setup.optimizer.build();
        let schedule =
            setup
                .optimizer
                .scheduler(setup.learning_rate, steps_per_epoch, setup.max_epochs)?;
        let mut state = TrainingState {
            setup,
            net,
            optim,
            schedule,
            best: None,
            summary: TrainingSummary {
                epochs_run: 0,
                best_epoch: 0,
                best_valid_score: None,
                best_valid_loss: None,
                best_valid_confusion: None,
                final_train_loss: f64::NAN,
                train_seconds: 0.0,
                valid_seconds: 0.0,
            },
        };
        let mut first_epoch = 1;
        if let Some(checkpoints) = &setup.checkpoints
            && let Some(resumed) =
                checkpoints.load(state.net.clone(), inference_template, state.optim.clone())?
        {
            tracing::info!(epoch = resumed.epoch, "resuming from a checkpoint");
            state.net = resumed.net;
            state.optim = resumed.optimizer;
            state.summary = resumed.summary;
            state.best = resumed.best;
            first_epoch = resumed.epoch + 1;
            // The schedule is a function of the step: replay it to where the run stopped.
            for _ in 0..resumed.epoch * steps_per_epoch {
                state.schedule.step();
            }
        }
        Ok((state, first_epoch))
    }

    /// Trains epoch `epoch` on every batch, validating and reporting within it when
    /// `reports` says so (a pruned run ends with [`Error::Pruned`]). Takes the state by value
    /// so that each optimizer step consumes the network, as burn's optimizers expect.
    fn train_epoch(
        mut self,
        epoch: usize,
        batches: &mut Batches<'_>,
        valid: &Rows,
        device: &Device,
        reports: &Reports,
        ctx: &mut dyn TrialContext,
    ) -> Result<Self> {
        let setup = self.setup;
        // Each epoch's shuffle and shifts come from its own seed, so a resumed run draws what
        // an uninterrupted one would have.
        let mut rng = StdRng::seed_from_u64(setup.seed ^ (epoch as u64).wrapping_mul(0x9e37_79b9));
        batches.order.sort_unstable();
        batches.order.shuffle(&mut rng);
        let (train, ad, replicas) = (batches.train, batches.ad, batches.replicas);
        let mut loss_sum = 0.0;
        let mut ran = 0usize;
        let mut reported = 0usize;
        let mut started = Instant::now();
        for rows in batches.order.chunks(setup.batch_size) {
            let (value, grads) = if replicas.is_empty() {
                let shift = setup.shift.map(|s| (s, &mut rng));
                let inputs = Tensor::from_data(train.batch_data(rows, shift), ad);
                let loss = train.loss(self.net.forward(inputs), rows, ad);
                let value = f64::from(loss.clone().into_scalar::<f32>());
                (
                    value,
                    GradientsParams::from_grads(loss.backward(), &self.net),
                )
            } else {
                data_parallel_step(&self.net, train, rows, setup.shift, &mut rng, ad, replicas)?
            };
            if !value.is_finite() {
                return Err(ModelError::Diverged { epoch, loss: value });
            }
            loss_sum += value;
            ran += 1;
            self.net = self.optim.step(self.schedule.step(), self.net, grads);
            // The reports within the epoch; its last comes after the epoch's bookkeeping.
            if reports.due_within(reported, ran) && valid.len() > 0 {
                reported += 1;
                self.summary.train_seconds += started.elapsed().as_secs_f64();
                let step = reports.within(epoch, reported);
                let (score, loss) = self.validate(valid, device, epoch, step, ctx)?;
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
        self.summary.epochs_run = epoch;
        self.summary.final_train_loss = loss_sum / ran.max(1) as f64;
        self.summary.train_seconds += started.elapsed().as_secs_f64();
        Ok(self)
    }

    /// Scores the weights on `valid`, reports the score as `step` and keeps the weights if
    /// they are the best so far; returns the score and the loss.
    fn validate(
        &mut self,
        valid: &Rows,
        device: &Device,
        epoch: usize,
        step: u64,
        ctx: &mut dyn TrialContext,
    ) -> Result<(f64, f64)> {
        let started = Instant::now();
        let inference = self.net.valid();
        let (score, loss, confusion) = evaluate(&inference, valid, device)?;
        self.summary.valid_seconds += started.elapsed().as_secs_f64();
        if !loss.is_finite() || !score.is_finite() {
            return Err(ModelError::Diverged { epoch, loss });
        }
        ctx.report(step, score)?;
        let improved = match &self.best {
            None => true,
            Some((_, s, l, _)) => score > *s || (score == *s && loss < *l),
        };
        if improved {
            self.best = Some((inference, score, loss, epoch));
            self.summary.best_valid_confusion = confusion;
        }
        Ok((score, loss))
    }

    /// Saves the run after epoch `epoch`, when it checkpoints.
    fn checkpoint(&self, epoch: usize) -> Result<()> {
        match &self.setup.checkpoints {
            Some(c) => c.save(
                epoch,
                &self.net,
                &self.optim,
                &self.summary,
                self.best.as_ref(),
            ),
            None => Ok(()),
        }
    }

    /// The best weights (the last when nothing was validated) in inference mode, and the
    /// summary.
    fn finish(self) -> (M, TrainingSummary) {
        let mut summary = self.summary;
        match self.best {
            Some((weights, score, loss, epoch)) => {
                summary.best_epoch = epoch;
                summary.best_valid_score = Some(score);
                summary.best_valid_loss = Some(loss);
                (weights, summary)
            }
            None => {
                summary.best_epoch = summary.epochs_run;
                (self.net.valid(), summary)
            }
        }
    }
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
