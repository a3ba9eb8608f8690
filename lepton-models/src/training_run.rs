//! The options of a network's training run apart from its configuration (where it
//! checkpoints, when it stops short of `max_epochs`, on how many devices, how often it reports),
//! and [`TrainingRun`], which sets them the same way on every network model.

use std::path::PathBuf;
use std::time::Duration;

use burn::tensor::Device;
use serde::Serialize;

use crate::backend::Backend;
use crate::checkpoint::Checkpoints;
use crate::error::Result;
use crate::param;
use crate::training::TrainingSetup;

/// How a network model's training is carried out, apart from its configuration; set through
/// [`TrainingRun`]'s methods. Every network model holds one (the default: no checkpoints, no
/// limit but `max_epochs`, one device, one report an epoch).
#[derive(Debug, Clone, Default)]
pub struct RunOptions {
    checkpoints: Option<PathBuf>,
    time_limit: Option<Duration>,
    epoch_budget: Option<usize>,
    /// How many devices of the backend share every batch (one when unset).
    data_parallel: Option<usize>,
    /// How many times each epoch is validated and reported to the trial (once when unset).
    reports_per_epoch: Option<usize>,
}

impl RunOptions {
    /// The devices a run on backend `B` trains on; the first (the main device) holds the
    /// weights and the optimizer, and validates.
    pub(crate) fn devices<B: Backend>(&self) -> Result<Vec<Device>> {
        match self.data_parallel {
            None => Ok(vec![B::device()]),
            Some(0) => Err(param::invalid(
                "data_parallel",
                "data-parallel training needs at least 1 device, not 0".into(),
            )),
            Some(n) => Ok(B::devices(n)),
        }
    }

    /// `setup` for a run of `config` on `devices` (from [`devices`](Self::devices)) with
    /// these options.
    pub(crate) fn apply(
        &self,
        mut setup: TrainingSetup,
        config: &impl Serialize,
        devices: &[Device],
    ) -> Result<TrainingSetup> {
        setup.time_limit = self.time_limit;
        setup.epoch_budget = self.epoch_budget;
        setup.replicas = devices.iter().skip(1).cloned().collect();
        setup.reports_per_epoch = self.reports_per_epoch.unwrap_or(1);
        if let Some(dir) = &self.checkpoints {
            setup.checkpoints = Some(Checkpoints::new(dir, config)?);
        }
        Ok(setup)
    }
}

/// The training-run setters of a network model ([`MlpClassifier`](crate::MlpClassifier),
/// [`MlpRegressor`](crate::MlpRegressor), [`CnnClassifier`](crate::CnnClassifier)), defined
/// once for all of them over the [`RunOptions`] each holds.
pub trait TrainingRun: Sized {
    /// The model's run options, for the setters.
    fn run_options(&mut self) -> &mut RunOptions;

    /// Checkpoints every epoch into `dir`, and resumes from the checkpoint there if one of
    /// the same configuration exists (see [`checkpoint`](crate::checkpoint)). Dropout masks
    /// after a resume are drawn afresh; with no dropout a resumed run ends exactly as an
    /// uninterrupted one.
    fn with_checkpoints(mut self, dir: impl Into<PathBuf>) -> Self {
        self.run_options().checkpoints = Some(dir.into());
        self
    }

    /// Starts no new epoch once `limit` has passed since training began; the best weights
    /// so far are kept (a search can compare candidates at equal time).
    fn with_time_limit(mut self, limit: Duration) -> Self {
        self.run_options().time_limit = Some(limit);
        self
    }

    /// Trains only up to epoch `epochs` of the configured `max_epochs`, as a budget within
    /// the longer run: the learning-rate schedule still spans `max_epochs`, so with
    /// [`with_checkpoints`](Self::with_checkpoints) a later call with a larger budget resumes
    /// where this one stopped and goes on as an uninterrupted run would (a trial promoted by
    /// successive halving need not start over).
    fn with_epoch_budget(mut self, epochs: usize) -> Self {
        self.run_options().epoch_budget = Some(epochs);
        self
    }

    /// Trains data-parallel on `devices` devices of the model's backend (see
    /// [`Backend::devices`]): every batch is split into equal shards, each device computes its
    /// shard's gradients on a copy of the network, and the main device sums them and takes
    /// the optimizer step, so the update is the whole batch's. Batch norm normalizes each
    /// shard by its own statistics, and its running statistics average the shards' (a step
    /// late); dropout masks come from the backend's one generator, drawn by several threads,
    /// so a run with dropout does not repeat exactly. 0 is refused when training; a device
    /// that fails ends it with [`ModelError::Device`](crate::ModelError::Device).
    fn with_data_parallel(mut self, devices: usize) -> Self {
        self.run_options().data_parallel = Some(devices);
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
    fn with_reports_per_epoch(mut self, k: usize) -> Self {
        self.run_options().reports_per_epoch = Some(k);
        self
    }
}
