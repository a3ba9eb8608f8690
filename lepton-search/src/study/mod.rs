//! A study: ask-and-tell over a sampler, a pruner and a storage. This file holds the
//! [`Study`] itself (asking, telling, reading its trials); its submodules add how one is
//! built (`builder`), how workers run an objective on it (`optimize`, with the options of
//! `optimize_options` and the shared state of `run`), and how heartbeats keep running
//! trials alive and fail those of dead workers (`heartbeat`).

mod builder;
mod heartbeat;
mod optimize;
mod optimize_options;
mod run;
#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use lepton_core::{
    Direction, Error, FrozenTrial, History, JointSample, ParamValue, Pruner, Result, Sampler,
    Storage, Trial, TrialState,
};

use crate::export;

pub use builder::StudyBuilder;
use heartbeat::Heartbeat;
pub use heartbeat::{DEFAULT_HEARTBEAT_GRACE, DEFAULT_HEARTBEAT_INTERVAL};
pub use optimize_options::{Observe, OptimizeOptions};

/// A search: trials asked from a sampler, told back with their outcome, kept in a
/// storage. Safe to share between threads (`ask` and `tell` take `&self`).
pub struct Study {
    name: String,
    direction: Direction,
    sampler: Arc<dyn Sampler>,
    pruner: Arc<dyn Pruner>,
    storage: Arc<dyn Storage>,
    heartbeat: Option<Heartbeat>,
    /// When this process last failed stale trials before an ask: a trial cannot go stale
    /// faster than a heartbeat interval, so once an interval is enough (the sweep is a write
    /// transaction on SQLite, a round trip on PostgreSQL).
    last_sweep: std::sync::Mutex<Option<std::time::Instant>>,
}

impl std::fmt::Debug for Study {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Study")
            .field("name", &self.name)
            .field("direction", &self.direction)
            .finish_non_exhaustive()
    }
}

impl Study {
    /// The study's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The study's direction.
    pub fn direction(&self) -> Direction {
        self.direction
    }

    /// Creates a running trial (an enqueued one first, with its fixed parameters); suggest its
    /// parameters, then [`tell`](Self::tell) its outcome.
    pub fn ask(&self) -> Result<Trial> {
        let history = self.history_for_ask()?;
        let (number, fixed) = match self.storage.claim_waiting_trial(&self.name)? {
            Some(claimed) => claimed,
            None => (self.storage.create_trial(&self.name)?, BTreeMap::new()),
        };
        self.start(history, number, fixed)
    }

    /// [`ask`](Self::ask), unless the study already holds `limit` trials that count toward a
    /// budget (all but the failed ones): `None` then. Workers on many machines that each ask
    /// within the same limit fill the study to exactly `limit` trials between them.
    pub fn ask_within(&self, limit: u64) -> Result<Option<Trial>> {
        let history = self.history_for_ask()?;
        let (number, fixed) = match self.storage.claim_waiting_trial(&self.name)? {
            Some(claimed) => claimed,
            None => match self.storage.create_trial_within(&self.name, limit)? {
                Some(number) => (number, BTreeMap::new()),
                None => return Ok(None),
            },
        };
        self.start(history, number, fixed).map(Some)
    }

    /// What a new trial is sampled from; with a heartbeat, stale trials are failed (and
    /// retried) first, so that a dead worker's trial neither blocks the study nor misleads
    /// the sampler as a running one.
    fn history_for_ask(&self) -> Result<Arc<History>> {
        if let Some(h) = self.heartbeat {
            let mut last = self
                .last_sweep
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if last.is_none_or(|t| t.elapsed() >= h.interval) {
                self.storage.fail_stale_trials(&self.name, h.grace)?;
                *last = Some(std::time::Instant::now());
            }
        }
        let trials = self.storage.trials_shared(&self.name)?;
        self.retry_stale(&trials)?;
        Ok(Arc::new(History::shared(self.direction, trials)))
    }

    /// Hands out trial `number`, sampling its parameters jointly unless they are fixed.
    fn start(
        &self,
        history: Arc<History>,
        number: u64,
        fixed: BTreeMap<String, ParamValue>,
    ) -> Result<Trial> {
        // An enqueued configuration is tried as given; only a fresh trial is modelled jointly.
        let joint = if fixed.is_empty() {
            match self.sampler.sample_joint(&history, number) {
                Ok(joint) => joint,
                Err(e) => {
                    // The trial exists already: end it, so no worker waits on it.
                    self.storage
                        .finish_trial(&self.name, number, TrialState::Failed, None)?;
                    return Err(e);
                }
            }
        } else {
            JointSample::new()
        };
        Ok(Trial::new(
            self.name.clone(),
            number,
            history,
            Arc::clone(&self.sampler),
            Arc::clone(&self.pruner),
            Arc::clone(&self.storage),
        )
        .with_fixed_params(fixed)
        .with_joint_sample(joint))
    }

    /// Creates a running trial whose suggestions for the names in `params` return these
    /// values (a configuration tried again, such as one promoted to a larger budget), without
    /// going through the queue, so waiting trials keep their turn.
    pub fn ask_with(&self, params: BTreeMap<String, ParamValue>) -> Result<Trial> {
        let history = self.history_for_ask()?;
        let number = self.storage.create_trial(&self.name)?;
        self.start(history, number, params)
    }

    /// Enqueues a known-good configuration: the next `ask` (by any worker) returns a trial
    /// whose suggestions for these names return these values.
    pub fn enqueue(&self, params: BTreeMap<String, ParamValue>) -> Result<u64> {
        self.storage.enqueue_trial(&self.name, &params)
    }

    /// Records a trial's outcome: a finite value completes it, [`Error::Pruned`] prunes it,
    /// any other error or a non-finite value fails it. Returns the state it ended in.
    pub fn tell(&self, trial: Trial, outcome: Result<f64>) -> Result<TrialState> {
        Ok(self.finish(trial, outcome)?.state)
    }

    /// [`tell`](Self::tell), returning the trial's final record.
    pub(crate) fn finish(&self, trial: Trial, outcome: Result<f64>) -> Result<FrozenTrial> {
        let number = trial.number();
        let (state, value) = match outcome {
            Ok(v) if v.is_finite() => (TrialState::Complete, Some(v)),
            Ok(v) => {
                tracing::warn!(
                    trial = number,
                    value = v,
                    "objective returned a non-finite value"
                );
                (TrialState::Failed, None)
            }
            Err(Error::Pruned { step }) => {
                tracing::info!(trial = number, step, "trial pruned");
                (
                    TrialState::Pruned,
                    trial.record().last_step().map(|(_, v)| v),
                )
            }
            Err(e) => {
                tracing::warn!(trial = number, error = %e, "trial failed");
                (TrialState::Failed, None)
            }
        };
        self.storage
            .finish_trial(&self.name, number, state, value)?;
        let mut record = trial.record().clone();
        record.state = state;
        record.value = value;
        let params: Vec<String> = record
            .params
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        tracing::info!(
            trial = number,
            state = state.as_str(),
            value,
            params = %params.join(" "),
            "trial finished"
        );
        Ok(record)
    }

    /// Every trial of the study, in number order.
    pub fn trials(&self) -> Result<Vec<FrozenTrial>> {
        self.storage.trials(&self.name)
    }

    /// The bytes trial `number` kept under `key` apart from its record
    /// ([`Trial::set_blob`](lepton_core::Trial::set_blob)), if any.
    pub fn trial_blob(&self, number: u64, key: &str) -> Result<Option<Vec<u8>>> {
        self.storage.trial_blob(&self.name, number, key)
    }

    /// The best complete trial so far, if any.
    pub fn best_trial(&self) -> Result<Option<FrozenTrial>> {
        let history = History::shared(self.direction, self.storage.trials_shared(&self.name)?);
        Ok(history.best().cloned())
    }

    /// The best complete value so far, if any.
    fn best_value(&self) -> Result<Option<f64>> {
        let history = History::shared(self.direction, self.storage.trials_shared(&self.name)?);
        Ok(history.best().and_then(|t| t.value))
    }

    /// The `k` best complete trials, best first in the study's direction (the earlier trial
    /// first on ties); fewer when the study has fewer complete trials.
    pub fn best_trials(&self, k: usize) -> Result<Vec<FrozenTrial>> {
        let history = History::shared(self.direction, self.storage.trials_shared(&self.name)?);
        Ok(history.ranked().into_iter().take(k).cloned().collect())
    }

    /// Writes every trial as CSV: a header, then one row per trial in number order (see
    /// [`export::write_csv`](crate::export::write_csv) for the columns).
    pub fn export_csv(&self, writer: impl Write) -> Result<()> {
        export::write_csv(writer, &self.storage.trials_shared(&self.name)?)
    }

    /// Writes every trial as a JSON array of trial records, in number order (see
    /// [`export::write_json`](crate::export::write_json)).
    pub fn export_json(&self, writer: impl Write) -> Result<()> {
        export::write_json(writer, &self.storage.trials_shared(&self.name)?)
    }
}
