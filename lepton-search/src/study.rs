//! A study: ask-and-tell over a sampler, a pruner and a storage.

use std::any::Any;
use std::collections::BTreeMap;
use std::io::Write;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use lepton_core::{
    Direction, Error, FrozenTrial, History, JointSample, NopPruner, ParamValue, Pruner,
    RETRIES_ATTR, RETRY_OF_ATTR, Result, STALE_ATTR, Sampler, Storage, Trial, TrialState,
};

use crate::export;
use crate::samplers::RandomSampler;
use crate::storage::InMemoryStorage;

/// How often a study on a persistent storage refreshes a running trial's heartbeat, unless
/// told otherwise (`lepton worker`'s default too).
pub const DEFAULT_HEARTBEAT_INTERVAL: Duration = Duration::from_secs(1);
/// How old a running trial's heartbeat may be, on a persistent storage with the default
/// heartbeat, before the trial is failed as its worker's (`lepton worker`'s default too).
pub const DEFAULT_HEARTBEAT_GRACE: Duration = Duration::from_secs(10);

/// Builds a [`Study`]; every part has a working default (random sampler, no pruning,
/// in-memory storage, minimization, and a heartbeat when the storage is persistent).
pub struct StudyBuilder {
    name: String,
    direction: Direction,
    sampler: Arc<dyn Sampler>,
    pruner: Arc<dyn Pruner>,
    storage: Arc<dyn Storage>,
    heartbeat: HeartbeatChoice,
    /// The grace period, when set (else twice a chosen interval, or the default grace).
    grace: Option<Duration>,
    retries: u32,
}

/// Whether a study keeps heartbeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HeartbeatChoice {
    /// Every [`DEFAULT_HEARTBEAT_INTERVAL`] on a persistent storage; none in memory.
    Default,
    /// None.
    Off,
    /// At this interval.
    Every(Duration),
}

/// How a study keeps its running trials alive and deals with those whose worker died.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Heartbeat {
    /// How often a running trial's heartbeat is refreshed.
    interval: Duration,
    /// How old a running trial's heartbeat may be before the trial is failed.
    grace: Duration,
    /// How many times the configuration of a trial failed for a silent worker is tried again.
    retries: u32,
}

impl StudyBuilder {
    /// Sets whether the objective is minimized or maximized.
    pub fn with_direction(mut self, direction: Direction) -> Self {
        self.direction = direction;
        self
    }

    /// Sets the sampler.
    pub fn with_sampler(mut self, sampler: impl Sampler + 'static) -> Self {
        self.sampler = Arc::new(sampler);
        self
    }

    /// Sets the pruner.
    pub fn with_pruner(mut self, pruner: impl Pruner + 'static) -> Self {
        self.pruner = Arc::new(pruner);
        self
    }

    /// Sets the storage (shared, so several studies or workers can use one).
    pub fn with_storage(mut self, storage: Arc<dyn Storage>) -> Self {
        self.storage = storage;
        self
    }

    /// Makes the study refresh each running trial's heartbeat every `interval` while its
    /// objective runs, and fail, before each `ask`, the running trials whose heartbeat is
    /// older than a grace period (twice the interval, as Optuna's default; see
    /// [`with_heartbeat_grace`](Self::with_heartbeat_grace)): their workers died, and the
    /// study goes on without them.
    ///
    /// On a persistent storage (SQLite, PostgreSQL: [`Storage::is_persistent`]) a study has
    /// a heartbeat even without this call: every [`DEFAULT_HEARTBEAT_INTERVAL`], with a grace
    /// of [`DEFAULT_HEARTBEAT_GRACE`], so that a process killed mid-trial leaves no trial
    /// running for ever. Heartbeats are refreshed while [`Study::optimize`] (and the
    /// Hyperband scheduler) run an objective; code that asks and tells by hand and holds a
    /// trial longer than the grace while other asks happen should set a longer grace or call
    /// [`without_heartbeat`](Self::without_heartbeat).
    pub fn with_heartbeat(mut self, interval: Duration) -> Self {
        self.heartbeat = HeartbeatChoice::Every(interval);
        self
    }

    /// No heartbeat, even on a persistent storage: a trial whose process dies stays running
    /// until a sweep (`lepton study sweep`, [`Study::fail_stale_trials`]) fails it.
    pub fn without_heartbeat(mut self) -> Self {
        self.heartbeat = HeartbeatChoice::Off;
        self
    }

    /// Sets the grace period after which a silent running trial is failed (at least the
    /// heartbeat interval; ignored without a heartbeat).
    pub fn with_heartbeat_grace(mut self, grace: Duration) -> Self {
        self.grace = Some(grace);
        self
    }

    /// Retries the configuration of a trial failed for a silent worker, up to `retries`
    /// times (Optuna's `RetryFailedTrialCallback`, but exactly once per failure even when
    /// the worker that failed it dies too): it is enqueued again, with user attributes
    /// `retry_of` (the failed trial's number) and `retries` (how many times it has been
    /// retried). Needs a heartbeat ([`with_heartbeat`](Self::with_heartbeat), or a
    /// persistent storage's default one).
    pub fn with_stale_retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// Creates the study in its storage, or loads it if it exists with the same direction.
    /// Refuses a zero heartbeat interval or a grace period shorter than the interval.
    pub fn build(self) -> Result<Study> {
        let (interval, grace) = match self.heartbeat {
            HeartbeatChoice::Every(interval) => (Some(interval), interval.saturating_mul(2)),
            HeartbeatChoice::Default if self.storage.is_persistent() => {
                (Some(DEFAULT_HEARTBEAT_INTERVAL), DEFAULT_HEARTBEAT_GRACE)
            }
            HeartbeatChoice::Default | HeartbeatChoice::Off => (None, Duration::ZERO),
        };
        let heartbeat = interval.map(|interval| Heartbeat {
            interval,
            grace: self.grace.unwrap_or(grace),
            retries: self.retries,
        });
        if let Some(h) = heartbeat {
            let reason = if h.interval.is_zero() {
                Some("the heartbeat interval must be positive")
            } else if h.grace < h.interval {
                Some("the grace period must be at least the heartbeat interval")
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(Error::InvalidParameter {
                    name: "heartbeat".into(),
                    reason: reason.into(),
                });
            }
        }
        match self.storage.create_study(&self.name, self.direction) {
            Ok(()) => {}
            Err(Error::StudyExists(_)) => {
                let stored = self.storage.study_direction(&self.name)?;
                if stored != self.direction {
                    return Err(Error::InvalidParameter {
                        name: "direction".into(),
                        reason: format!(
                            "study `{}` exists with direction {stored:?}, not {:?}",
                            self.name, self.direction
                        ),
                    });
                }
            }
            Err(e) => return Err(e),
        }
        Ok(Study {
            name: self.name,
            direction: self.direction,
            sampler: self.sampler,
            pruner: self.pruner,
            storage: self.storage,
            heartbeat,
            last_sweep: std::sync::Mutex::new(None),
        })
    }
}

/// An optimizer: trials asked from a sampler, told back with their outcome, kept in a
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
    /// Starts building a study called `name`.
    pub fn builder(name: impl Into<String>) -> StudyBuilder {
        StudyBuilder {
            name: name.into(),
            direction: Direction::Minimize,
            sampler: Arc::new(RandomSampler::default()),
            pruner: Arc::new(NopPruner),
            storage: Arc::new(InMemoryStorage::new()),
            heartbeat: HeartbeatChoice::Default,
            grace: None,
            retries: 0,
        }
    }

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

    /// Runs `n_trials` trials of `objective` one after another. A trial whose objective
    /// returns an error, a non-finite value or panics is marked failed and the study goes on;
    /// only a storage error stops it.
    pub fn optimize<F>(&self, n_trials: usize, objective: F) -> Result<()>
    where
        F: FnMut(&mut Trial) -> Result<f64>,
    {
        self.optimize_with(n_trials, objective, |_| {})
    }

    /// [`optimize`](Self::optimize), handing every finished trial's record to `on_trial`
    /// (progress display, logging) without reading the storage again.
    pub fn optimize_with<F, O>(&self, n_trials: usize, objective: F, on_trial: O) -> Result<()>
    where
        F: FnMut(&mut Trial) -> Result<f64>,
        O: FnMut(&FrozenTrial),
    {
        let span = tracing::info_span!("study", study = %self.name);
        let run = Run::new(
            Some(n_trials),
            None,
            Observer::new(Observe::Always, self.direction, None, on_trial),
        );
        span.in_scope(|| run.guard(|| self.work(&run, objective)));
        run.outcome()
    }

    /// Runs `objective` on trials as `options` say: up to `n_trials` trials in all and/or
    /// until `timeout` has passed (trials running then finish; no new one starts), spread
    /// over `n_workers` threads that ask and tell on this study concurrently. `on_trial`
    /// sees finished trials as [`Observe`] chooses, one at a time, in the order they finish.
    ///
    /// As in [`optimize`](Self::optimize), a trial whose objective errs, returns a
    /// non-finite value or panics is failed and the others go on. An error from the storage
    /// (or the sampler, when asking), or a failure to start a worker thread, stops every
    /// worker and is returned; a panic in `on_trial` or a sampler stops every worker and
    /// resumes on the calling thread.
    ///
    /// Refuses (with [`Error::InvalidParameter`]) options that
    /// [`OptimizeOptions::validate`] refuses, before starting any trial.
    ///
    /// ```
    /// use std::time::Duration;
    /// use lepton_core::Scale;
    /// use lepton_search::{Observe, OptimizeOptions, Study};
    ///
    /// let study = Study::builder("sphere").build()?;
    /// let options = OptimizeOptions::trials(40)
    ///     .with_timeout(Duration::from_secs(60))
    ///     .with_workers(4)
    ///     .with_observe(Observe::NewBest);
    /// study.optimize_with_options(
    ///     options,
    ///     |trial| {
    ///         let x = trial.suggest_float("x", -1.0, 1.0, Scale::Linear)?;
    ///         Ok(x * x)
    ///     },
    ///     |best| println!("trial {} improved to {:?}", best.number, best.value),
    /// )?;
    /// assert_eq!(study.trials()?.len(), 40);
    /// # Ok::<(), lepton_core::Error>(())
    /// ```
    pub fn optimize_with_options<F, O>(
        &self,
        options: OptimizeOptions,
        objective: F,
        on_trial: O,
    ) -> Result<()>
    where
        F: Fn(&mut Trial) -> Result<f64> + Sync,
        O: FnMut(&FrozenTrial) + Send,
    {
        options.validate()?;
        let best = match options.observe {
            Observe::NewBest => self.best_value()?,
            _ => None,
        };
        let run = Run::new(
            options.n_trials,
            // A timeout too long to represent is no deadline.
            options.timeout.and_then(|t| Instant::now().checked_add(t)),
            Observer::new(options.observe, self.direction, best, on_trial),
        )
        .with_study_total(options.study_total);
        let span = tracing::info_span!("study", study = %self.name, workers = options.n_workers);
        let (shared, objective) = (&run, &objective);
        std::thread::scope(|scope| {
            for i in 1..options.n_workers {
                let span = span.clone();
                let spawned = std::thread::Builder::new()
                    .name(format!("lepton-worker-{i}"))
                    .spawn_scoped(scope, move || {
                        span.in_scope(|| shared.guard(|| self.work(shared, objective)));
                    });
                if let Err(e) = spawned {
                    // The workers already started stop after their current trial.
                    shared.fail(Error::stage(e));
                    break;
                }
            }
            // The calling thread is a worker too.
            span.in_scope(|| shared.guard(|| self.work(shared, objective)));
        });
        run.outcome()
    }

    /// One worker's loop: claims a trial from the run's budget, runs it, hands the record to
    /// the observer; stops when the budget or the time is spent or the run halts.
    fn work<F, O>(&self, run: &Run<O>, mut objective: F)
    where
        F: FnMut(&mut Trial) -> Result<f64>,
        O: FnMut(&FrozenTrial),
    {
        while run.claim() {
            loop {
                match self.run_trial(&mut objective, run.study_total, &run.in_flight) {
                    Ok(Ran::Finished(record)) => {
                        tracing::debug!(trial = record.number, state = ?record.state, "trial finished");
                        if !run.observe(&record) {
                            return;
                        }
                        break;
                    }
                    Ok(Ran::Dropped) => break,
                    // Full: this worker is done unless a running trial may still fail.
                    Ok(Ran::Full) => match self.room_may_come(run) {
                        Ok(true) => continue,
                        Ok(false) => return,
                        Err(e) => return run.fail(e),
                    },
                    Err(e) => return run.fail(e),
                }
            }
        }
    }

    /// Whether a worker that found the study full should ask again: while trials of this run
    /// are still running (one may fail and free its place) or, with a heartbeat, trials of
    /// other workers (a dead worker's trial will be failed), and the run's time is not up.
    /// Waits a moment (a heartbeat interval, or 10 ms) before saying yes.
    fn room_may_come<O: FnMut(&FrozenTrial)>(&self, run: &Run<O>) -> Result<bool> {
        if run.halted() || run.past_deadline() {
            return Ok(false);
        }
        let ours = run.in_flight.load(Ordering::Acquire) > 0;
        let others = self.heartbeat.is_some()
            && self
                .storage
                .trials_shared(&self.name)?
                .iter()
                .any(|t| t.state == TrialState::Running);
        if !ours && !others {
            return Ok(false);
        }
        std::thread::sleep(
            self.heartbeat
                .map_or(Duration::from_millis(10), |h| h.interval),
        );
        Ok(true)
    }

    /// One trial from `ask` to `tell`. The objective's errors, non-finite values and panics
    /// fail the trial only; an error from asking or telling is returned.
    fn run_trial<F>(
        &self,
        objective: &mut F,
        study_total: Option<u64>,
        in_flight: &AtomicUsize,
    ) -> Result<Ran>
    where
        F: FnMut(&mut Trial) -> Result<f64>,
    {
        let mut trial = match study_total {
            None => self.ask()?,
            Some(limit) => match self.ask_within(limit)? {
                Some(trial) => trial,
                None => return Ok(Ran::Full),
            },
        };
        // Counted from ask to tell: workers that find the study full wait for these.
        in_flight.fetch_add(1, Ordering::AcqRel);
        let _counted = InFlight(in_flight);
        let number = trial.number();
        let span = tracing::info_span!("trial", number);
        let _enter = span.enter();
        let outcome = self.beating_while(number, || {
            catch_unwind(AssertUnwindSafe(|| objective(&mut trial)))
                .unwrap_or_else(|panic| Err(Error::stage(panic_message(&panic))))
        });
        match self.finish(trial, outcome) {
            Ok(record) => Ok(Ran::Finished(record)),
            Err(Error::IllegalTransition { from, .. }) => {
                tracing::warn!(
                    trial = number,
                    ?from,
                    "trial was finished elsewhere; result dropped"
                );
                Ok(Ran::Dropped)
            }
            Err(e) => Err(e),
        }
    }

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
    /// [`with_stale_retries`](StudyBuilder::with_stale_retries), each stale trial's
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
    fn retry_stale(&self, trials: &[Arc<FrozenTrial>]) -> Result<()> {
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

/// Takes a trial off the run's count of running trials when it is told (or unwinds).
struct InFlight<'a>(&'a AtomicUsize);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// What became of one attempt to run a trial.
enum Ran {
    /// The trial ran and its outcome was recorded.
    Finished(FrozenTrial),
    /// A sweep failed the trial while it ran (its heartbeat was late); its result was dropped.
    Dropped,
    /// The study holds its total of trials: none was started.
    Full,
}

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

/// How [`Study::optimize_with_options`] runs: how many trials, for how long, on how many
/// threads, and when the observer is called.
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

/// The state the workers of one optimization share.
struct Run<O> {
    /// Trials to start in all, if bounded.
    budget: Option<usize>,
    /// Trials the study should hold, if bounded.
    study_total: Option<u64>,
    /// No trial starts after this instant, if bounded.
    deadline: Option<Instant>,
    /// Trials claimed so far (it may count past the budget: claims beyond it are refused).
    claimed: AtomicUsize,
    /// Trials of this run between ask and tell.
    in_flight: AtomicUsize,
    /// Set when a worker hit an error or a panic: the others start no more trials.
    halted: AtomicBool,
    /// The first error a worker hit.
    error: Mutex<Option<Error>>,
    /// The first panic a worker caught outside an objective, resumed on the caller.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    observer: Mutex<Observer<O>>,
}

impl<O: FnMut(&FrozenTrial)> Run<O> {
    fn new(budget: Option<usize>, deadline: Option<Instant>, observer: Observer<O>) -> Self {
        Run {
            budget,
            study_total: None,
            deadline,
            claimed: AtomicUsize::new(0),
            in_flight: AtomicUsize::new(0),
            halted: AtomicBool::new(false),
            error: Mutex::new(None),
            panic: Mutex::new(None),
            observer: Mutex::new(observer),
        }
    }

    /// Bounds the study's own number of trials.
    fn with_study_total(mut self, total: Option<u64>) -> Self {
        self.study_total = total;
        self
    }

    fn halted(&self) -> bool {
        self.halted.load(Ordering::Acquire)
    }

    fn past_deadline(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Whether the caller may start one more trial (and counts it if so).
    fn claim(&self) -> bool {
        if self.halted() || self.past_deadline() {
            return false;
        }
        match self.budget {
            Some(n) => self.claimed.fetch_add(1, Ordering::AcqRel) < n,
            None => true,
        }
    }

    /// Hands a finished trial to the observer; `false` when the run should stop (the observer
    /// panicked in another worker).
    fn observe(&self, record: &FrozenTrial) -> bool {
        match self.observer.lock() {
            Ok(mut observer) => {
                observer.see(record);
                true
            }
            Err(_poisoned) => false,
        }
    }

    /// Stops the run for `error`, kept if it is the first.
    fn fail(&self, error: Error) {
        self.halted.store(true, Ordering::Release);
        lock(&self.error).get_or_insert(error);
    }

    /// Runs a worker, catching a panic that escapes it (an observer's, a sampler's) so that
    /// the run stops and the panic resumes on the calling thread.
    fn guard(&self, worker: impl FnOnce()) {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(worker)) {
            self.halted.store(true, Ordering::Release);
            lock(&self.panic).get_or_insert(panic);
        }
    }

    /// The run's result once every worker has stopped.
    fn outcome(self) -> Result<()> {
        if let Some(panic) = lock(&self.panic).take() {
            std::panic::resume_unwind(panic);
        }
        match lock(&self.error).take() {
            Some(e) => Err(e),
            None => Ok(()),
        }
    }
}

/// Locks a mutex whose data stays consistent through a panic (each write is one assignment).
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Decides which finished trials the user's observer sees.
struct Observer<O> {
    mode: Observe,
    direction: Direction,
    /// Trials seen so far in this run.
    seen: usize,
    /// The best complete value so far, the study's before the run included.
    best: Option<f64>,
    on_trial: O,
}

impl<O: FnMut(&FrozenTrial)> Observer<O> {
    fn new(mode: Observe, direction: Direction, best: Option<f64>, on_trial: O) -> Self {
        Observer {
            mode,
            direction,
            seen: 0,
            best,
            on_trial,
        }
    }

    fn see(&mut self, record: &FrozenTrial) {
        self.seen += 1;
        let improved = match (record.state, record.value) {
            (TrialState::Complete, Some(v)) => {
                self.best.is_none_or(|b| self.direction.is_better(v, b))
            }
            _ => false,
        };
        if improved {
            self.best = record.value;
        }
        let call = match self.mode {
            Observe::Never => false,
            Observe::Always => true,
            Observe::Every(n) => self.seen.checked_rem(n) == Some(0),
            Observe::NewBest => improved,
        };
        if call {
            (self.on_trial)(record);
        }
    }
}

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    format!("objective panicked: {text}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use lepton_core::{Scale, TrialContext};

    #[test]
    fn failures_panics_and_nan_do_not_stop_the_study() {
        let study = Study::builder("s").build().unwrap();
        let mut calls = 0;
        study
            .optimize(5, |trial| {
                calls += 1;
                let x = trial.suggest_float("x", 0.0, 1.0, Scale::Linear)?;
                match trial.number() {
                    0 => Err(Error::InvalidInput("boom".into())),
                    1 => panic!("objective bug"),
                    2 => Ok(f64::NAN),
                    3 => Err(Error::Pruned { step: 0 }),
                    _ => Ok(x),
                }
            })
            .unwrap();
        assert_eq!(calls, 5);
        let states: Vec<_> = study.trials().unwrap().iter().map(|t| t.state).collect();
        use TrialState::*;
        assert_eq!(states, vec![Failed, Failed, Failed, Pruned, Complete]);
        assert_eq!(study.best_trial().unwrap().unwrap().number, 4);
    }

    #[test]
    fn ask_and_tell_by_hand() {
        let storage: Arc<dyn Storage> = Arc::new(InMemoryStorage::new());
        let study = Study::builder("s")
            .with_direction(Direction::Maximize)
            .with_storage(Arc::clone(&storage))
            .build()
            .unwrap();
        for v in [0.2, 0.9, 0.5] {
            let mut t = study.ask().unwrap();
            t.suggest_int("k", 1, 3, Scale::Linear).unwrap();
            t.report(1, v / 2.0).unwrap();
            assert_eq!(study.tell(t, Ok(v)).unwrap(), TrialState::Complete);
        }
        let best = study.best_trial().unwrap().unwrap();
        assert_eq!((best.number, best.value), (1, Some(0.9)));
        assert_eq!(best.intermediate_values.get(&1), Some(&0.45));
        // Loading the study again from the same storage resumes it.
        let again = Study::builder("s")
            .with_direction(Direction::Maximize)
            .with_storage(Arc::clone(&storage))
            .build()
            .unwrap();
        assert_eq!(again.trials().unwrap().len(), 3);
        assert_eq!(again.ask().unwrap().number(), 3);
        // ... but not with the opposite direction.
        assert!(Study::builder("s").with_storage(storage).build().is_err());
    }

    #[test]
    fn suggesting_twice_returns_the_same_value_and_conflicts_are_refused() {
        let study = Study::builder("s").build().unwrap();
        let mut t = study.ask().unwrap();
        let a = t.suggest_float("x", 0.0, 1.0, Scale::Linear).unwrap();
        let b = t.suggest_float("x", 0.0, 1.0, Scale::Linear).unwrap();
        assert_eq!(a, b);
        assert!(matches!(
            t.suggest_float("x", 0.0, 2.0, Scale::Linear),
            Err(Error::ParamConflict { .. })
        ));
        assert!(t.suggest_float("y", 1.0, 0.0, Scale::Linear).is_err());
    }

    #[test]
    fn studies_and_trials_cross_threads() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<Study>();
        send_sync::<Trial>();
        send_sync::<InMemoryStorage>();
        send_sync::<RandomSampler>();
    }

    #[test]
    fn heartbeats_keep_a_slow_trial_alive_and_silence_gets_it_failed() {
        for beat in [Some(Duration::from_millis(100)), None] {
            let storage: Arc<dyn Storage> = Arc::new(InMemoryStorage::new());
            let mut builder = Study::builder("slow").with_storage(Arc::clone(&storage));
            if let Some(b) = beat {
                builder = builder.with_heartbeat(b);
            }
            let study = builder.build().unwrap();
            let sweeper = Study::builder("slow")
                .with_storage(Arc::clone(&storage))
                .build()
                .unwrap();
            let swept = std::thread::scope(|scope| {
                let sweep = scope.spawn(|| {
                    std::thread::sleep(Duration::from_millis(800));
                    sweeper
                        .fail_stale_trials(Duration::from_millis(500))
                        .unwrap()
                });
                study
                    .optimize(1, |_| {
                        std::thread::sleep(Duration::from_millis(1200));
                        Ok(1.0)
                    })
                    .unwrap();
                sweep.join().unwrap()
            });
            let state = study.trials().unwrap()[0].state;
            if beat.is_some() {
                assert_eq!((swept, state), (vec![], TrialState::Complete));
            } else {
                // The silent trial was failed by the sweep; its late result was dropped.
                assert_eq!((swept, state), (vec![0], TrialState::Failed));
            }
        }
    }

    #[test]
    fn threads_fill_a_study_total_exactly_and_failed_trials_free_places() {
        let storage: Arc<dyn Storage> = Arc::new(InMemoryStorage::new());
        // Trials done before this run count toward the total.
        let earlier = Study::builder("total")
            .with_storage(Arc::clone(&storage))
            .build()
            .unwrap();
        earlier.optimize(5, sphere).unwrap();
        for heartbeat in [None, Some(Duration::from_millis(20))] {
            let mut builder = Study::builder("total").with_storage(Arc::clone(&storage));
            if let Some(h) = heartbeat {
                builder = builder.with_heartbeat(h);
            }
            let study = builder.build().unwrap();
            let total = if heartbeat.is_some() { 60 } else { 30 };
            study
                .optimize_with_options(
                    OptimizeOptions::study_total(total).with_workers(4),
                    |t| {
                        let u = t.suggest_float("u", -1.0, 1.0, Scale::Linear)?;
                        if u < -0.5 {
                            return Err(Error::InvalidInput("diverged".into()));
                        }
                        Ok(u * u)
                    },
                    |_| {},
                )
                .unwrap();
            let trials = study.trials().unwrap();
            let counted = trials
                .iter()
                .filter(|t| t.state != TrialState::Failed)
                .count();
            assert_eq!(counted as u64, total);
            assert!(trials.iter().all(|t| t.state.is_finished()));
            // A worker joining a full study runs nothing.
            study
                .optimize_with_options(OptimizeOptions::study_total(total), sphere, |_| {
                    panic!("no trial should run")
                })
                .unwrap();
            assert_eq!(study.trials().unwrap().len(), trials.len());
        }
    }

    #[test]
    fn a_dead_workers_trial_is_failed_retried_and_its_place_taken() {
        let storage: Arc<dyn Storage> = Arc::new(InMemoryStorage::new());
        let dead = Study::builder("crash")
            .with_storage(Arc::clone(&storage))
            .build()
            .unwrap();
        // A worker asks and dies: its trial stays running, with no heartbeat.
        let mut orphan = dead.ask().unwrap();
        let x = orphan.suggest_float("x", -1.0, 1.0, Scale::Linear).unwrap();
        drop(orphan);
        let study = Study::builder("crash")
            .with_storage(Arc::clone(&storage))
            .with_heartbeat(Duration::from_millis(20))
            .with_heartbeat_grace(Duration::from_millis(100))
            .with_stale_retries(1)
            .build()
            .unwrap();
        let started = Instant::now();
        study
            .optimize_with_options(OptimizeOptions::study_total(4), sphere, |_| {})
            .unwrap();
        // The worker waited for the orphan to go stale rather than stop short.
        assert!(started.elapsed() >= Duration::from_millis(100));
        let trials = study.trials().unwrap();
        assert_eq!(trials[0].state, TrialState::Failed);
        let retry = trials
            .iter()
            .find(|t| t.user_attrs.get("retry_of") == Some(&ParamValue::Int(0)))
            .expect("the orphan was retried");
        assert_eq!(retry.user_attrs["retries"], ParamValue::Int(1));
        assert_eq!(retry.params["x"], ParamValue::Float(x));
        assert_eq!(retry.state, TrialState::Complete);
        let complete = trials
            .iter()
            .filter(|t| t.state == TrialState::Complete)
            .count();
        assert_eq!((trials.len(), complete), (5, 4));
    }

    #[cfg(feature = "sqlite")]
    #[test]
    fn a_persistent_storage_has_a_heartbeat_by_default_and_memory_none() {
        let dir = tempfile::tempdir().unwrap();
        let sqlite: Arc<dyn Storage> =
            Arc::new(crate::SqliteStorage::open(dir.path().join("s.db")).unwrap());
        let heartbeat = |builder: StudyBuilder| builder.build().unwrap().heartbeat;
        let on_disk = || Study::builder("h").with_storage(Arc::clone(&sqlite));
        let default = Heartbeat {
            interval: DEFAULT_HEARTBEAT_INTERVAL,
            grace: DEFAULT_HEARTBEAT_GRACE,
            retries: 0,
        };
        assert_eq!(heartbeat(on_disk()), Some(default));
        assert_eq!(heartbeat(on_disk().without_heartbeat()), None);
        assert_eq!(heartbeat(Study::builder("h")), None);
        // Settings apply to the default heartbeat too, in any order.
        let tuned = on_disk()
            .with_stale_retries(2)
            .with_heartbeat_grace(Duration::from_secs(30));
        assert_eq!(
            heartbeat(tuned),
            Some(Heartbeat {
                grace: Duration::from_secs(30),
                retries: 2,
                ..default
            })
        );
        let chosen = on_disk()
            .with_heartbeat_grace(Duration::from_secs(5))
            .with_heartbeat(Duration::from_millis(100));
        assert_eq!(
            heartbeat(chosen).map(|h| (h.interval, h.grace)),
            Some((Duration::from_millis(100), Duration::from_secs(5)))
        );
    }

    #[test]
    fn heartbeat_settings_that_cannot_work_are_refused() {
        let zero = Study::builder("h").with_heartbeat(Duration::ZERO).build();
        assert!(matches!(zero, Err(Error::InvalidParameter { .. })));
        let short = Study::builder("h")
            .with_heartbeat(Duration::from_secs(1))
            .with_heartbeat_grace(Duration::from_millis(10))
            .build();
        assert!(matches!(short, Err(Error::InvalidParameter { .. })));
    }

    #[test]
    fn enqueued_configurations_are_tried_first() {
        let study = Study::builder("q").build().unwrap();
        study
            .enqueue(BTreeMap::from([("x".to_owned(), ParamValue::Float(0.25))]))
            .unwrap();
        study
            .optimize(3, |t| t.suggest_float("x", 0.0, 1.0, Scale::Linear))
            .unwrap();
        let trials = study.trials().unwrap();
        assert_eq!(trials[0].params["x"], ParamValue::Float(0.25));
        assert_eq!(trials.len(), 3);
        // An enqueued value outside the objective's range fails that trial only.
        study
            .enqueue(BTreeMap::from([("x".to_owned(), ParamValue::Float(7.0))]))
            .unwrap();
        study
            .optimize(1, |t| t.suggest_float("x", 0.0, 1.0, Scale::Linear))
            .unwrap();
        assert_eq!(study.trials().unwrap()[3].state, TrialState::Failed);
    }

    #[test]
    fn optimize_with_hands_over_the_stored_records() {
        let study = Study::builder("s").build().unwrap();
        let mut seen = Vec::new();
        study
            .optimize_with(
                4,
                |t| {
                    let x = t.suggest_float("x", 0.0, 1.0, Scale::Linear)?;
                    t.report(1, x)?;
                    match t.number() {
                        1 => Err(Error::Pruned { step: 1 }),
                        2 => Ok(f64::NAN),
                        _ => Ok(x),
                    }
                },
                |record| seen.push(record.clone()),
            )
            .unwrap();
        assert_eq!(seen, study.trials().unwrap());
    }

    #[test]
    fn random_search_is_reproducible() {
        let run = |seed| {
            let study = Study::builder("s")
                .with_sampler(RandomSampler::new(seed))
                .build()
                .unwrap();
            study
                .optimize(10, |t| t.suggest_float("x", -5.0, 5.0, Scale::Linear))
                .unwrap();
            study
                .trials()
                .unwrap()
                .into_iter()
                .map(|t| t.value)
                .collect::<Vec<_>>()
        };
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
    }

    fn sphere(t: &mut Trial) -> Result<f64> {
        let x = t.suggest_float("x", -5.0, 5.0, Scale::Linear)?;
        let y = t.suggest_float("y", -5.0, 5.0, Scale::Linear)?;
        Ok(x * x + y * y)
    }

    #[test]
    fn parallel_workers_start_exactly_the_budget() {
        let study = Study::builder("p").build().unwrap();
        let threads = Mutex::new(std::collections::HashSet::new());
        let mut seen = Vec::new();
        study
            .optimize_with_options(
                OptimizeOptions::trials(40).with_workers(4),
                |t| {
                    threads.lock().unwrap().insert(std::thread::current().id());
                    std::thread::sleep(Duration::from_millis(2));
                    sphere(t)
                },
                |record| seen.push(record.number),
            )
            .unwrap();
        let trials = study.trials().unwrap();
        assert_eq!(trials.len(), 40);
        assert!(trials.iter().all(|t| t.state == TrialState::Complete));
        let numbers: std::collections::BTreeSet<u64> = trials.iter().map(|t| t.number).collect();
        assert_eq!(numbers, (0..40).collect());
        seen.sort_unstable();
        assert_eq!(seen, (0..40).collect::<Vec<_>>());
        assert!(
            threads.into_inner().unwrap().len() > 1,
            "one thread did all"
        );
    }

    #[test]
    fn a_timeout_alone_stops_the_run_and_lets_running_trials_finish() {
        let study = Study::builder("t").build().unwrap();
        let started = Instant::now();
        study
            .optimize_with_options(
                OptimizeOptions::timeout(Duration::from_millis(300)).with_workers(2),
                |t| {
                    std::thread::sleep(Duration::from_millis(20));
                    sphere(t)
                },
                |_| {},
            )
            .unwrap();
        let elapsed = started.elapsed();
        let trials = study.trials().unwrap();
        assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
        assert!(elapsed < Duration::from_secs(3), "{elapsed:?}");
        assert!(trials.len() >= 2, "{} trials", trials.len());
        assert!(trials.iter().all(|t| t.state == TrialState::Complete));
        // A budget ends the run before the timeout does (even one too long to represent).
        study
            .optimize_with_options(
                OptimizeOptions::trials(3).with_timeout(Duration::MAX),
                sphere,
                |_| {},
            )
            .unwrap();
        assert_eq!(study.trials().unwrap().len(), trials.len() + 3);
    }

    #[test]
    fn a_panicking_objective_fails_its_trial_only_in_parallel() {
        let study = Study::builder("panics").build().unwrap();
        study
            .optimize_with_options(
                OptimizeOptions::trials(40).with_workers(4),
                |t| {
                    let v = sphere(t)?;
                    match t.number() % 4 {
                        0 => panic!("objective bug"),
                        1 => Ok(f64::NAN),
                        _ => Ok(v),
                    }
                },
                |_| {},
            )
            .unwrap();
        let trials = study.trials().unwrap();
        assert_eq!(trials.len(), 40);
        for t in &trials {
            let expected = match t.number % 4 {
                0 | 1 => TrialState::Failed,
                _ => TrialState::Complete,
            };
            assert_eq!(t.state, expected, "trial {}", t.number);
        }
    }

    #[test]
    fn tpe_in_parallel_still_improves_on_a_sphere() {
        let study = Study::builder("tpe")
            .with_sampler(crate::TpeSampler::new(3))
            .build()
            .unwrap();
        study
            .optimize_with_options(OptimizeOptions::trials(80).with_workers(4), sphere, |_| {})
            .unwrap();
        let values: Vec<f64> = study
            .trials()
            .unwrap()
            .iter()
            .map(|t| t.value.unwrap())
            .collect();
        let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
        // Start-up trials are uniform (mean 16.7 on this sphere); the model's are near 0.
        let (early, late) = (mean(&values[..10]), mean(&values[60..]));
        // Seeds 0..12 gave a ratio of 5.5 or more and a best under 0.03.
        assert!(late < early / 3.0, "early {early}, late {late}");
        let best = study.best_trial().unwrap().unwrap().value.unwrap();
        assert!(best < 0.5, "best {best}");
    }

    #[test]
    fn options_that_cannot_run_are_refused_before_any_trial() {
        let study = Study::builder("bad").build().unwrap();
        let refused =
            |options: OptimizeOptions| match study.optimize_with_options(options, sphere, |_| {}) {
                Err(Error::InvalidParameter { name, .. }) => name,
                other => panic!("{other:?}"),
            };
        assert_eq!(
            refused(OptimizeOptions::trials(5).with_workers(0)),
            "n_workers"
        );
        let mut endless = OptimizeOptions::trials(5);
        endless.n_trials = None;
        assert_eq!(refused(endless), "n_trials");
        assert_eq!(
            refused(OptimizeOptions::trials(5).with_observe(Observe::Every(0))),
            "observe"
        );
        assert!(study.trials().unwrap().is_empty());
    }

    #[test]
    fn a_storage_error_stops_every_worker_and_is_returned() {
        let storage: Arc<dyn Storage> = Arc::new(InMemoryStorage::new());
        let study = Study::builder("gone")
            .with_storage(Arc::clone(&storage))
            .build()
            .unwrap();
        let calls = AtomicUsize::new(0);
        let result = study.optimize_with_options(
            OptimizeOptions::trials(1000).with_workers(3),
            |t| {
                if calls.fetch_add(1, Ordering::SeqCst) == 10 {
                    storage.delete_study("gone")?;
                }
                sphere(t)
            },
            |_| {},
        );
        assert!(matches!(result, Err(Error::UnknownStudy(_))), "{result:?}");
        // At most one more trial per worker ran after the study vanished.
        assert!(calls.into_inner() <= 11 + 3);
    }

    #[test]
    fn a_panicking_observer_stops_the_run_and_resumes_on_the_caller() {
        let study = Study::builder("obs").build().unwrap();
        let caught = catch_unwind(AssertUnwindSafe(|| {
            study.optimize_with_options(
                OptimizeOptions::trials(1000).with_workers(2),
                sphere,
                |record| {
                    if record.number == 5 {
                        panic!("observer bug");
                    }
                },
            )
        }));
        let message = caught.unwrap_err();
        assert_eq!(message.downcast_ref::<&str>(), Some(&"observer bug"));
        assert!(study.trials().unwrap().len() < 100);
    }

    #[test]
    fn observers_see_every_trial_every_nth_new_bests_or_none() {
        // Trial n's value; 3 fails, so it counts as seen but is never a best.
        const VALUES: [f64; 8] = [5.0, 7.0, 3.0, f64::NAN, 3.0, 1.0, 2.0, 0.5];
        let run = |observe: Observe, study: &Study| {
            let mut seen = Vec::new();
            study
                .optimize_with_options(
                    OptimizeOptions::trials(8).with_observe(observe),
                    |t| Ok(VALUES[t.number() as usize % 8]),
                    |record| seen.push(record.number),
                )
                .unwrap();
            seen
        };
        let fresh = || Study::builder("o").build().unwrap();
        assert_eq!(run(Observe::Always, &fresh()), (0..8).collect::<Vec<_>>());
        assert_eq!(run(Observe::Every(3), &fresh()), vec![2, 5]);
        assert_eq!(run(Observe::NewBest, &fresh()), vec![0, 2, 5, 7]);
        assert_eq!(run(Observe::Never, &fresh()), Vec::<u64>::new());
        // A new best beats the study's best from before the run too.
        let resumed = fresh();
        run(Observe::Never, &resumed);
        assert_eq!(run(Observe::NewBest, &resumed), Vec::<u64>::new());
        let maximize = Study::builder("o")
            .with_direction(Direction::Maximize)
            .build()
            .unwrap();
        assert_eq!(run(Observe::NewBest, &maximize), vec![0, 1]);
    }

    #[test]
    fn best_trials_are_the_top_k_in_the_study_direction() {
        for (direction, expected) in [
            (Direction::Minimize, vec![5, 2, 4]),
            (Direction::Maximize, vec![1, 0, 2]),
        ] {
            let study = Study::builder("k")
                .with_direction(direction)
                .build()
                .unwrap();
            let values = [5.0, 7.0, 3.0, f64::NAN, 3.0, 1.0];
            study
                .optimize(7, |t| match t.number() {
                    // Pruned, its value the last one reported: never a best trial.
                    6 => {
                        t.report(1, 2.0)?;
                        Err(Error::Pruned { step: 1 })
                    }
                    n => Ok(values[n as usize]),
                })
                .unwrap();
            assert_eq!(study.trials().unwrap()[6].value, Some(2.0));
            let numbers = |k| -> Vec<u64> {
                study
                    .best_trials(k)
                    .unwrap()
                    .iter()
                    .map(|t| t.number)
                    .collect()
            };
            // Ties (trials 2 and 4 at 3.0) keep the earlier trial first.
            assert_eq!(numbers(3), expected);
            assert_eq!(numbers(0), Vec::<u64>::new());
            assert_eq!(numbers(10).len(), 5);
            assert_eq!(
                study.best_trials(1).unwrap()[0],
                study.best_trial().unwrap().unwrap()
            );
        }
    }

    /// Four trials, all with `x`: trial 1 alone has `depth` (a conditional parameter) and a
    /// user attribute; trial 2 is pruned, trial 3 failed.
    fn mixed_study() -> Study {
        let study = Study::builder("mixed").build().unwrap();
        study
            .optimize(4, |t| {
                let x = t.suggest_float("x", 0.0, 1.0, Scale::Linear)?;
                t.report(1, x)?;
                match t.number() {
                    0 => Ok(x),
                    1 => {
                        let depth = t.suggest_int("depth", 1, 8, Scale::Linear)?;
                        t.set_user_attr("note", "deep, \"really\"")?;
                        Ok(x + depth as f64)
                    }
                    2 => Err(Error::Pruned { step: 1 }),
                    _ => Ok(f64::NAN),
                }
            })
            .unwrap();
        study
    }

    #[test]
    fn csv_has_a_column_per_parameter_and_attribute_across_trials() {
        let study = mixed_study();
        let mut out = Vec::new();
        study.export_csv(&mut out).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "number,state,value,param_depth,param_x,attr_note,intermediate_values"
        );
        assert_eq!(lines.len(), 5);
        let trials = study.trials().unwrap();
        let x0 = trials[0].params["x"].as_f64().unwrap();
        // The conditional parameter and the attribute leave blank cells where absent.
        assert_eq!(
            lines[1],
            format!("0,complete,{x0},,{x0},,\"{{\"\"1\"\":{x0}}}\"")
        );
        let depth = trials[1].params["depth"].as_i64().unwrap();
        assert!(
            lines[2].starts_with(&format!("1,complete,{},{depth},", trials[1].value.unwrap())),
            "{}",
            lines[2]
        );
        assert!(
            lines[2].contains(",\"deep, \"\"really\"\"\","),
            "{}",
            lines[2]
        );
        assert!(lines[3].starts_with(&format!("2,pruned,{x}", x = trials[2].value.unwrap())));
        assert!(lines[4].starts_with("3,failed,,,"), "{}", lines[4]);
    }

    #[test]
    fn json_export_reads_back_as_the_trials() {
        let study = mixed_study();
        let mut out = Vec::new();
        study.export_json(&mut out).unwrap();
        let back: Vec<FrozenTrial> = serde_json::from_slice(&out).unwrap();
        assert_eq!(back, study.trials().unwrap());
        assert_eq!(
            back[1].user_attrs["note"],
            ParamValue::from("deep, \"really\"")
        );
        assert_eq!(back[0].intermediate_values.len(), 1);
    }
}
