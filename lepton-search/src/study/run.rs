//! The state the workers of one optimization share: the trial budget and deadline, the first
//! error or panic that stops them all, and the observer that sees finished trials.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use lepton_core::{Direction, Error, FrozenTrial, Result, TrialState};

use super::optimize_options::Observe;

/// The state the workers of one optimization share.
pub(super) struct Run<O> {
    /// Trials to start in all, if bounded.
    budget: Option<usize>,
    /// Trials the study should hold, if bounded.
    pub(super) study_total: Option<u64>,
    /// No trial starts after this instant, if bounded.
    deadline: Option<Instant>,
    /// Trials claimed so far (it may count past the budget: claims beyond it are refused).
    claimed: AtomicUsize,
    /// Trials of this run between ask and tell.
    pub(super) in_flight: AtomicUsize,
    /// Set when a worker hit an error or a panic: the others start no more trials.
    halted: AtomicBool,
    /// The first error a worker hit.
    error: Mutex<Option<Error>>,
    /// The first panic a worker caught outside an objective, resumed on the caller.
    panic: Mutex<Option<Box<dyn Any + Send>>>,
    observer: Mutex<Observer<O>>,
}

impl<O: FnMut(&FrozenTrial)> Run<O> {
    pub(super) fn new(
        budget: Option<usize>,
        deadline: Option<Instant>,
        observer: Observer<O>,
    ) -> Self {
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
    pub(super) fn with_study_total(mut self, total: Option<u64>) -> Self {
        self.study_total = total;
        self
    }

    pub(super) fn halted(&self) -> bool {
        self.halted.load(Ordering::Acquire)
    }

    pub(super) fn past_deadline(&self) -> bool {
        self.deadline.is_some_and(|d| Instant::now() >= d)
    }

    /// Whether the caller may start one more trial (and counts it if so).
    pub(super) fn claim(&self) -> bool {
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
    pub(super) fn observe(&self, record: &FrozenTrial) -> bool {
        match self.observer.lock() {
            Ok(mut observer) => {
                observer.see(record);
                true
            }
            Err(_poisoned) => false,
        }
    }

    /// Stops the run for `error`, kept if it is the first.
    pub(super) fn fail(&self, error: Error) {
        self.halted.store(true, Ordering::Release);
        lock(&self.error).get_or_insert(error);
    }

    /// Runs a worker, catching a panic that escapes it (an observer's, a sampler's) so that
    /// the run stops and the panic resumes on the calling thread.
    pub(super) fn guard(&self, worker: impl FnOnce()) {
        if let Err(panic) = catch_unwind(AssertUnwindSafe(worker)) {
            self.halted.store(true, Ordering::Release);
            lock(&self.panic).get_or_insert(panic);
        }
    }

    /// The run's result once every worker has stopped.
    pub(super) fn outcome(self) -> Result<()> {
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
pub(super) struct Observer<O> {
    mode: Observe,
    direction: Direction,
    /// Trials seen so far in this run.
    seen: usize,
    /// The best complete value so far, the study's before the run included.
    best: Option<f64>,
    on_trial: O,
}

impl<O: FnMut(&FrozenTrial)> Observer<O> {
    pub(super) fn new(mode: Observe, direction: Direction, best: Option<f64>, on_trial: O) -> Self {
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
