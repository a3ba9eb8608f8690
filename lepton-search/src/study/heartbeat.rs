//! Heartbeats: a running trial's heartbeat is refreshed while its objective runs, and the
//! running trials whose heartbeat is too old (their worker died) are failed and, when the
//! study says so, their configurations tried again.

use std::sync::Arc;
use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

use lepton_core::{
    FrozenTrial, ParamValue, RETRIES_ATTR, RETRY_OF_ATTR, Result, STALE_ATTR, TrialState,
};

use super::Study;

/// How often a study on a persistent storage refreshes a running trial's heartbeat, unless
/// told otherwise (`lepton worker`'s default too).
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
/// How old a running trial's heartbeat may be, on a persistent storage with the default
/// heartbeat, before the trial is failed as its worker's (`lepton worker`'s default too).
pub const DEFAULT_HEARTBEAT_GRACE: Duration = Duration::from_secs(10);

/// How a study keeps its running trials alive and deals with those whose worker died.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Heartbeat {
    /// How often a running trial's heartbeat is refreshed.
    pub(super) interval: Duration,
    /// How old a running trial's heartbeat may be before the trial is failed.
    pub(super) grace: Duration,
    /// How many times the configuration of a trial failed for a silent worker is tried again.
    pub(super) retries: u32,
}

impl Study {
    /// Runs `work`, refreshing trial `number`'s heartbeat meanwhile when the study has one.
    pub(crate) fn beating_while<T>(&self, number: u64, work: impl FnOnce() -> T) -> T {
        let Some(Heartbeat { interval, .. }) = self.heartbeat else {
            return work();
        };
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        std::thread::scope(|scope| {
            scope.spawn(move || {
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                    if let Err(e) = self.storage.heartbeat(&self.name, number) {
                        tracing::warn!(trial = number, error = %e, "heartbeat failed");
                    }
                }
            });
            let out = work();
            drop(stop);
            out
        })
    }

    /// Fails the running trials whose heartbeat is older than `grace` (their workers are
    /// presumed dead) and returns their numbers. With
    /// [`with_stale_retries`](super::StudyBuilder::with_stale_retries), each stale trial's
    /// configuration is enqueued again while it has retries left. Safe to call from many
    /// workers at once: each stale trial is failed by one of them and retried once.
    pub fn fail_stale_trials(&self, grace: Duration) -> Result<Vec<u64>> {
        let failed = self.storage.fail_stale_trials(&self.name, grace)?;
        if self.heartbeat.is_some_and(|h| h.retries > 0) {
            self.retry_stale(&self.storage.trials_shared(&self.name)?)?;
        }
        Ok(failed)
    }

    /// Enqueues again every trial failed for a silent heartbeat that has retries left and no
    /// retry yet. Run on every ask, so a retry that a sweeper died before enqueueing is
    /// enqueued by the next worker; the storage makes each retry happen once.
    pub(super) fn retry_stale(&self, trials: &[Arc<FrozenTrial>]) -> Result<()> {
        let Some(max) = self
            .heartbeat
            .map(|h| i64::from(h.retries))
            .filter(|&m| m > 0)
        else {
            return Ok(());
        };
        let int_attr = |t: &FrozenTrial, key: &str| match t.user_attrs.get(key) {
            Some(ParamValue::Int(n)) => Some(*n),
            _ => None,
        };
        let retried: std::collections::HashSet<i64> = trials
            .iter()
            .filter_map(|t| int_attr(t, RETRY_OF_ATTR))
            .collect();
        for t in trials {
            let stale = t.user_attrs.get(STALE_ATTR) == Some(&ParamValue::Bool(true));
            if t.state != TrialState::Failed
                || !stale
                || retried.contains(&(t.number as i64))
                || int_attr(t, RETRIES_ATTR).unwrap_or(0) >= max
            {
                continue;
            }
            if let Some(retry) = self.storage.enqueue_retry(&self.name, t.number)? {
                tracing::info!(trial = t.number, retry, "stale trial enqueued again");
            }
        }
        Ok(())
    }
}
