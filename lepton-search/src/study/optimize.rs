//! Running an objective on a study: one worker in `optimize`, several threads sharing a trial
//! budget, a study total or a deadline in `optimize_with_options`; a trial's errors, non-finite
//! values and panics fail that trial only.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use lepton_core::{Error, FrozenTrial, Result, Trial, TrialState};

use super::Study;
use super::optimize_options::{Observe, OptimizeOptions};
use super::run::{Observer, Run};

impl Study {
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

fn panic_message(panic: &(dyn std::any::Any + Send)) -> String {
    let text = panic
        .downcast_ref::<&str>()
        .map(|s| (*s).to_owned())
        .or_else(|| panic.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "unknown panic".into());
    format!("objective panicked: {text}")
}
