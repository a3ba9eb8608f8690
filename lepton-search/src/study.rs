//! A study: ask-and-tell over a sampler, a pruner and a storage.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::mpsc::RecvTimeoutError;
use std::time::Duration;

use lepton_core::{
    Direction, Error, FrozenTrial, History, JointSample, NopPruner, ParamValue, Pruner, Result,
    Sampler, Storage, Trial, TrialState,
};

use crate::samplers::RandomSampler;
use crate::storage::InMemoryStorage;

/// Builds a [`Study`]; every part has a working default (random sampler, no pruning,
/// in-memory storage, minimisation).
pub struct StudyBuilder {
    name: String,
    direction: Direction,
    sampler: Arc<dyn Sampler>,
    pruner: Arc<dyn Pruner>,
    storage: Arc<dyn Storage>,
    heartbeat: Option<Duration>,
}

impl StudyBuilder {
    /// Sets whether the objective is minimised or maximised.
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

    /// Makes `optimize` refresh the running trial's heartbeat every `interval`, so that a
    /// sweep with [`Study::fail_stale_trials`] fails only trials whose worker died.
    pub fn with_heartbeat(mut self, interval: Duration) -> Self {
        self.heartbeat = Some(interval);
        self
    }

    /// Creates the study in its storage, or loads it if it exists with the same direction.
    pub fn build(self) -> Result<Study> {
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
            heartbeat: self.heartbeat,
        })
    }
}

/// An optimisation: trials asked from a sampler, told back with their outcome, kept in a
/// storage. Safe to share between threads (`ask` and `tell` take `&self`).
pub struct Study {
    name: String,
    direction: Direction,
    sampler: Arc<dyn Sampler>,
    pruner: Arc<dyn Pruner>,
    storage: Arc<dyn Storage>,
    heartbeat: Option<Duration>,
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
            heartbeat: None,
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
        let history = Arc::new(History::shared(
            self.direction,
            self.storage.trials_shared(&self.name)?,
        ));
        let (number, fixed) = match self.storage.claim_waiting_trial(&self.name)? {
            Some(claimed) => claimed,
            None => (self.storage.create_trial(&self.name)?, BTreeMap::new()),
        };
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
    fn finish(&self, trial: Trial, outcome: Result<f64>) -> Result<FrozenTrial> {
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
    pub fn optimize_with<F, O>(
        &self,
        n_trials: usize,
        mut objective: F,
        mut on_trial: O,
    ) -> Result<()>
    where
        F: FnMut(&mut Trial) -> Result<f64>,
        O: FnMut(&FrozenTrial),
    {
        let span = tracing::info_span!("study", name = %self.name);
        let _enter = span.enter();
        for _ in 0..n_trials {
            let mut trial = self.ask()?;
            let span = tracing::info_span!("trial", number = trial.number());
            let _enter = span.enter();
            let number = trial.number();
            let outcome = self.beating_while(number, || {
                catch_unwind(AssertUnwindSafe(|| objective(&mut trial)))
                    .unwrap_or_else(|panic| Err(Error::stage(panic_message(&panic))))
            });
            match self.finish(trial, outcome) {
                Ok(record) => {
                    tracing::debug!(state = ?record.state, "trial finished");
                    on_trial(&record);
                }
                // A sweep failed this trial while it ran (its heartbeat was late): the result
                // is dropped and the study goes on.
                Err(Error::IllegalTransition { from, .. }) => {
                    tracing::warn!(
                        trial = number,
                        ?from,
                        "trial was finished elsewhere; result dropped"
                    );
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// Runs `work`, refreshing trial `number`'s heartbeat meanwhile when the study has one.
    fn beating_while<T>(&self, number: u64, work: impl FnOnce() -> T) -> T {
        let Some(interval) = self.heartbeat else {
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
    /// presumed dead) and returns their numbers.
    pub fn fail_stale_trials(&self, grace: Duration) -> Result<Vec<u64>> {
        self.storage.fail_stale_trials(&self.name, grace)
    }

    /// Every trial of the study, in number order.
    pub fn trials(&self) -> Result<Vec<FrozenTrial>> {
        self.storage.trials(&self.name)
    }

    /// The best complete trial so far, if any.
    pub fn best_trial(&self) -> Result<Option<FrozenTrial>> {
        Ok(History::new(self.direction, self.trials()?).best().cloned())
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
}
