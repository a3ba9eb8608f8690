//! The storage stage: the study's source of truth.

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::direction::Direction;
use crate::error::{Error, Result};
use crate::frozen_trial::FrozenTrial;
use crate::param::{Distribution, ParamValue};
use crate::trial_state::TrialState;

/// Where studies and their trials live. Every write is immediate, so a study can always be
/// resumed from its storage; implementations must be safe to share between worker threads.
///
/// Illegal changes (finishing a finished trial, writing to an unknown study or trial) are
/// refused with a typed error and change nothing.
///
/// A storage that keeps one study in a `Mutex`:
///
/// ```
/// use std::sync::Mutex;
/// use lepton_core::*;
///
/// #[derive(Default)]
/// struct OneStudy(Mutex<Vec<FrozenTrial>>);
///
/// impl Storage for OneStudy {
///     fn create_study(&self, _: &str, _: Direction) -> Result<()> { Ok(()) }
///     fn delete_study(&self, _: &str) -> Result<()> { Ok(self.0.lock().unwrap().clear()) }
///     fn study_direction(&self, _: &str) -> Result<Direction> { Ok(Direction::Minimize) }
///     fn study_names(&self) -> Result<Vec<String>> { Ok(vec!["only".into()]) }
///     fn create_trial(&self, _: &str) -> Result<u64> {
///         let mut t = self.0.lock().unwrap();
///         let n = t.len() as u64;
///         t.push(FrozenTrial::new(n));
///         Ok(n)
///     }
///     fn create_trial_within(&self, s: &str, limit: u64) -> Result<Option<u64>> {
///         let mut t = self.0.lock().unwrap();
///         if t.iter().filter(|t| t.state != TrialState::Failed).count() as u64 >= limit {
///             return Ok(None);
///         }
///         let n = t.len() as u64;
///         t.push(FrozenTrial::new(n));
///         Ok(Some(n))
///     }
///     fn set_param(&self, s: &str, n: u64, name: &str, d: &Distribution, v: &ParamValue) -> Result<()> {
///         let mut t = self.0.lock().unwrap();
///         let t = t.get_mut(n as usize).ok_or(Error::UnknownTrial { study: s.into(), number: n })?;
///         t.distributions.insert(name.into(), d.clone());
///         t.params.insert(name.into(), v.clone());
///         Ok(())
///     }
///     fn set_user_attr(&self, s: &str, n: u64, k: &str, v: &ParamValue) -> Result<()> {
///         let mut t = self.0.lock().unwrap();
///         let t = t.get_mut(n as usize).ok_or(Error::UnknownTrial { study: s.into(), number: n })?;
///         t.user_attrs.insert(k.into(), v.clone());
///         Ok(())
///     }
///     fn report(&self, s: &str, n: u64, step: u64, v: f64) -> Result<()> {
///         let mut t = self.0.lock().unwrap();
///         let t = t.get_mut(n as usize).ok_or(Error::UnknownTrial { study: s.into(), number: n })?;
///         t.intermediate_values.insert(step, v);
///         Ok(())
///     }
///     // This storage has no queue: nothing is ever waiting.
///     fn enqueue_trial(&self, _: &str, _: &std::collections::BTreeMap<String, ParamValue>) -> Result<u64> {
///         Err(Error::InvalidInput("no queue".into()))
///     }
///     fn claim_waiting_trial(&self, _: &str)
///         -> Result<Option<(u64, std::collections::BTreeMap<String, ParamValue>)>> { Ok(None) }
///     // This storage keeps no clock: no trial ever goes stale.
///     fn heartbeat(&self, _: &str, _: u64) -> Result<()> { Ok(()) }
///     fn fail_stale_trials(&self, _: &str, _: std::time::Duration) -> Result<Vec<u64>> { Ok(vec![]) }
///     fn enqueue_retry(&self, _: &str, _: u64) -> Result<Option<u64>> {
///         Err(Error::InvalidInput("no queue".into()))
///     }
///     fn finish_trial(&self, s: &str, n: u64, state: TrialState, v: Option<f64>) -> Result<()> {
///         let mut t = self.0.lock().unwrap();
///         let t = t.get_mut(n as usize).ok_or(Error::UnknownTrial { study: s.into(), number: n })?;
///         if t.state.is_finished() {
///             return Err(Error::IllegalTransition { number: n, from: t.state, to: state });
///         }
///         t.state = state;
///         t.value = v;
///         Ok(())
///     }
///     fn trials(&self, _: &str) -> Result<Vec<FrozenTrial>> { Ok(self.0.lock().unwrap().clone()) }
/// }
///
/// let s = OneStudy::default();
/// let n = s.create_trial("only")?;
/// s.finish_trial("only", n, TrialState::Complete, Some(1.0))?;
/// assert!(s.finish_trial("only", n, TrialState::Complete, Some(2.0)).is_err());
/// # Ok::<(), lepton_core::Error>(())
/// ```
pub trait Storage: Send + Sync {
    /// Creates an empty study; [`Error::StudyExists`](crate::Error::StudyExists) if the name is
    /// taken.
    fn create_study(&self, name: &str, direction: Direction) -> Result<()>;
    /// Deletes a study and all its trials.
    fn delete_study(&self, name: &str) -> Result<()>;
    /// The direction of an existing study.
    fn study_direction(&self, name: &str) -> Result<Direction>;
    /// The names of every study.
    fn study_names(&self) -> Result<Vec<String>>;
    /// Creates a running trial and returns its number (unique and contiguous from 0).
    fn create_trial(&self, study: &str) -> Result<u64>;
    /// Creates a running trial, as [`create_trial`](Storage::create_trial) does, unless the
    /// study already holds `limit` trials that count toward a budget: every trial but the
    /// failed ones (waiting, running, complete, pruned). Returns `None` when the study is full.
    /// The count and the creation are one atomic step, so workers sharing a study never take
    /// it past `limit`, and a failed trial frees its place for another.
    fn create_trial_within(&self, study: &str, limit: u64) -> Result<Option<u64>>;
    /// Records a suggested parameter of a running trial.
    fn set_param(
        &self,
        study: &str,
        number: u64,
        name: &str,
        distribution: &Distribution,
        value: &ParamValue,
    ) -> Result<()>;
    /// Records a user attribute of a waiting or running trial.
    fn set_user_attr(&self, study: &str, number: u64, key: &str, value: &ParamValue) -> Result<()>;
    /// Records an intermediate value of a running trial.
    fn report(&self, study: &str, number: u64, step: u64, value: f64) -> Result<()>;
    /// Creates a waiting trial whose parameters are fixed in advance (a known-good
    /// configuration to try) and returns its number.
    fn enqueue_trial(&self, study: &str, params: &BTreeMap<String, ParamValue>) -> Result<u64>;
    /// Moves the oldest waiting trial to running and returns its number and fixed parameters;
    /// each waiting trial is claimed exactly once, whatever the number of workers.
    fn claim_waiting_trial(
        &self,
        study: &str,
    ) -> Result<Option<(u64, BTreeMap<String, ParamValue>)>>;
    /// Records that the worker running trial `number` is alive (creation counts as the first
    /// heartbeat).
    fn heartbeat(&self, study: &str, number: u64) -> Result<()>;
    /// Marks failed every running trial whose last heartbeat is older than `grace` (its worker
    /// is presumed dead), records on each the user attribute [`STALE_ATTR`] = `true` in the
    /// same step, and returns their numbers.
    fn fail_stale_trials(&self, study: &str, grace: std::time::Duration) -> Result<Vec<u64>>;
    /// Enqueues failed trial `number`'s parameters again: a waiting trial with the user
    /// attributes [`RETRY_OF_ATTR`] = `number` and [`RETRIES_ATTR`] = the failed trial's own
    /// count plus one. Returns its number, or `None` if a retry of `number` exists already.
    /// One atomic step: however many workers try, a trial is retried once. A trial that is not
    /// failed is refused with [`Error::IllegalTransition`].
    fn enqueue_retry(&self, study: &str, number: u64) -> Result<Option<u64>>;
    /// Moves a running trial to a finished state, with its value for complete trials.
    fn finish_trial(
        &self,
        study: &str,
        number: u64,
        state: TrialState,
        value: Option<f64>,
    ) -> Result<()>;
    /// Every trial of a study, in number order.
    fn trials(&self, study: &str) -> Result<Vec<FrozenTrial>>;

    /// Every trial of a study, shared rather than copied: what a study reads before each
    /// `ask`. The default wraps [`trials`](Storage::trials); a storage that keeps its trials
    /// in memory can hand out its own references and make a long study's `ask` cheap.
    fn trials_shared(&self, study: &str) -> Result<Vec<Arc<FrozenTrial>>> {
        Ok(self.trials(study)?.into_iter().map(Arc::new).collect())
    }

    /// Keeps `bytes` under `key` for trial `number` while the trial is waiting or running,
    /// apart from its record: a result too large for a user attribute (a trial's out-of-fold
    /// predictions), which [`trials`](Storage::trials) does not read. Replaces what `key`
    /// held. Returns whether the storage keeps such blobs; one that keeps none (the default)
    /// answers `false` and drops them.
    fn set_trial_blob(&self, study: &str, number: u64, key: &str, bytes: &[u8]) -> Result<bool> {
        let _ = (study, number, key, bytes);
        Ok(false)
    }

    /// The bytes kept under `key` for trial `number` ([`set_trial_blob`]), if any.
    ///
    /// [`set_trial_blob`]: Storage::set_trial_blob
    fn trial_blob(&self, study: &str, number: u64, key: &str) -> Result<Option<Vec<u8>>> {
        let _ = (study, number, key);
        Ok(None)
    }

    /// Whether the trials outlive the process that writes them (a database file or server):
    /// a process killed mid-trial then leaves a running trial that others see, so studies on
    /// such a storage keep heartbeats by default. False unless a storage says otherwise.
    fn is_persistent(&self) -> bool {
        false
    }
}

/// The user attribute a storage records on a trial it failed for a silent heartbeat.
pub const STALE_ATTR: &str = "lepton.stale";
/// The user attribute of a retried trial naming the failed trial it repeats.
pub const RETRY_OF_ATTR: &str = "retry_of";
/// The user attribute of a retried trial counting the retries of its configuration so far.
pub const RETRIES_ATTR: &str = "retries";

/// The checks every storage makes before writing a parameter: a valid distribution and a
/// value inside it. Storages call this so that the rule lives in one place.
pub fn check_param(name: &str, distribution: &Distribution, value: &ParamValue) -> Result<()> {
    distribution.validate(name)?;
    if !distribution.contains(value) {
        return Err(Error::InvalidParameter {
            name: name.to_owned(),
            reason: format!("`{value}` is outside {distribution:?}"),
        });
    }
    Ok(())
}

/// The check every storage makes before recording an intermediate value: it must be finite.
pub fn check_report(value: f64) -> Result<()> {
    if value.is_finite() {
        Ok(())
    } else {
        Err(Error::InvalidInput(format!(
            "intermediate value {value} is not finite"
        )))
    }
}

/// The checks every storage makes before finishing trial `number`: the new state is a finished
/// one, and a complete trial has a finite value. (That the trial is still running is the
/// storage's own check, against what it holds.)
pub fn check_finish(number: u64, state: TrialState, value: Option<f64>) -> Result<()> {
    if !state.is_finished() {
        return Err(Error::IllegalTransition {
            number,
            from: TrialState::Running,
            to: state,
        });
    }
    if state == TrialState::Complete && !value.is_some_and(f64::is_finite) {
        return Err(Error::InvalidInput(format!(
            "a complete trial needs a finite value, got {value:?}"
        )));
    }
    Ok(())
}
