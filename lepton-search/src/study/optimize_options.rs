//! The options of [`Study::optimize_with_options`](super::Study::optimize_with_options): how
//! many trials, for how long, on how many threads, and which trials the observer sees.

use std::time::Duration;

use lepton_core::{Error, Result};

/// When an optimization hands a finished trial to its observer (the modes of argmin's
/// observers). Only trials whose outcome was recorded count; a trial a sweep failed while it
/// ran does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Observe {
    /// Never: the observer is not called.
    Never,
    /// After every finished trial.
    #[default]
    Always,
    /// After every `n`-th finished trial of the run (`n` at least 1).
    Every(usize),
    /// After a complete trial strictly better than every complete trial before it,
    /// including those the study had before the run started.
    NewBest,
}

/// How [`Study::optimize_with_options`](super::Study::optimize_with_options) runs: how many
/// trials, for how long, on how many threads, and when the observer is called.
///
/// At least one of `n_trials` and `timeout` must be set. Build one with
/// [`OptimizeOptions::trials`] or [`OptimizeOptions::timeout`], then the `with_*` methods.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct OptimizeOptions {
    /// Trials started in all by this run, across its workers (`None`: no such bound).
    pub n_trials: Option<usize>,
    /// The number of trials the study itself should hold, counting those of every worker on
    /// every machine and of earlier runs, failed ones excepted (`None`: no such bound). Workers
    /// sharing one storage with the same total fill the study to exactly this many trials: a
    /// worker that finds it full waits while trials of its own run are running (one may fail
    /// and free its place) and, with a heartbeat, while any trial in the storage is running,
    /// so it takes the place of one that a dead worker left.
    pub study_total: Option<u64>,
    /// No trial starts after this much time has passed; running ones finish
    /// (`None`: until `n_trials` are done).
    pub timeout: Option<Duration>,
    /// Threads asking and running trials at once, the calling thread included (at least 1).
    pub n_workers: usize,
    /// When the observer sees a finished trial.
    pub observe: Observe,
}

impl OptimizeOptions {
    /// `n_trials` trials on one worker, every one observed.
    pub fn trials(n_trials: usize) -> Self {
        OptimizeOptions {
            n_trials: Some(n_trials),
            study_total: None,
            timeout: None,
            n_workers: 1,
            observe: Observe::Always,
        }
    }

    /// As many trials as `timeout` allows, on one worker, every one observed.
    pub fn timeout(timeout: Duration) -> Self {
        OptimizeOptions {
            n_trials: None,
            study_total: None,
            timeout: Some(timeout),
            n_workers: 1,
            observe: Observe::Always,
        }
    }

    /// Sets the number of trials started in all.
    pub fn with_trials(mut self, n_trials: usize) -> Self {
        self.n_trials = Some(n_trials);
        self
    }

    /// Until the study holds `total` trials (failed ones excepted), whoever runs them, on one
    /// worker, every one observed: what each of many worker processes on one storage runs.
    pub fn study_total(total: u64) -> Self {
        OptimizeOptions {
            n_trials: None,
            study_total: Some(total),
            timeout: None,
            n_workers: 1,
            observe: Observe::Always,
        }
    }

    /// Sets the number of trials the study should hold in all.
    pub fn with_study_total(mut self, total: u64) -> Self {
        self.study_total = Some(total);
        self
    }

    /// Sets the time after which no trial starts.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Sets the number of worker threads.
    pub fn with_workers(mut self, n_workers: usize) -> Self {
        self.n_workers = n_workers;
        self
    }

    /// Sets when the observer is called.
    pub fn with_observe(mut self, observe: Observe) -> Self {
        self.observe = observe;
        self
    }

    /// Checks the options: at least one worker, a trial budget, a study total or a timeout (or the run
    /// would never end), and `Observe::Every(n)` with `n` at least 1.
    pub fn validate(&self) -> Result<()> {
        let refuse = |name: &str, reason: &str| {
            Err(Error::InvalidParameter {
                name: name.to_owned(),
                reason: reason.to_owned(),
            })
        };
        if self.n_workers == 0 {
            return refuse("n_workers", "at least one worker is needed");
        }
        if self.n_trials.is_none() && self.study_total.is_none() && self.timeout.is_none() {
            return refuse(
                "n_trials",
                "neither a trial count, a study total nor a timeout is set: the run would never end",
            );
        }
        if self.observe == Observe::Every(0) {
            return refuse("observe", "Observe::Every needs a period of at least 1");
        }
        Ok(())
    }
}
