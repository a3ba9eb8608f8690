//! The storage conformance suite (Optuna's `StorageTestCase` idea): every storage, Lepton's
//! or a user's, must pass it. Each check returns the first violated expectation as an error
//! message instead of panicking, so it can run inside any test harness.
//!
//! One file though long: it is one suite, read top to bottom by whoever implements a storage,
//! each check a short function beside the others.
//!
//! ```
//! use lepton_search::storage::{InMemoryStorage, conformance};
//!
//! conformance::run(&InMemoryStorage::new()).map_err(|e| e.to_string())?;
//! # Ok::<(), String>(())
//! ```

use std::collections::BTreeSet;

use lepton_core::{Direction, Distribution, Error, ParamValue, Scale, Storage, TrialState};

/// What a storage did wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("storage conformance: {0}")]
pub struct Violation(pub String);

fn expect(ok: bool, what: &str) -> Result<(), Violation> {
    if ok {
        Ok(())
    } else {
        Err(Violation(what.to_owned()))
    }
}

fn no_error<T>(r: lepton_core::Result<T>, what: &str) -> Result<T, Violation> {
    r.map_err(|e| Violation(format!("{what}: unexpected error {e}")))
}

/// Runs every check against `storage`, which must start empty of the studies it creates
/// (their names start with `conformance-`).
pub fn run(storage: &dyn Storage) -> Result<(), Violation> {
    studies(storage)?;
    lifecycle(storage)?;
    illegal_changes(storage)?;
    concurrent_numbers(storage)?;
    heartbeats(storage)?;
    queue(storage)?;
    budget(storage)?;
    retries(storage)?;
    blobs(storage)?;
    Ok(())
}

/// Trials' blobs: kept apart from the record and replaced by key, refused once a trial has
/// finished, gone with their study; a storage that keeps none says so and returns none.
pub fn blobs(s: &dyn Storage) -> Result<(), Violation> {
    let study = "conformance-blobs";
    no_error(s.create_study(study, Direction::Maximize), "create")?;
    let n = no_error(s.create_trial(study), "create a trial")?;
    let bytes: Vec<u8> = (0..=255).cycle().take(100_000).collect();
    let keeps = no_error(s.set_trial_blob(study, n, "oof", &bytes), "set a blob")?;
    let read = |key: &str| no_error(s.trial_blob(study, n, key), "read a blob");
    if !keeps {
        expect(
            read("oof")?.is_none(),
            "a storage that keeps no blobs returns none",
        )?;
        return no_error(s.delete_study(study), "clean up");
    }
    expect(
        read("oof")?.as_deref() == Some(&bytes[..]),
        "a blob reads back byte for byte",
    )?;
    no_error(
        s.set_trial_blob(study, n, "oof", b"again"),
        "replace a blob",
    )?;
    no_error(
        s.set_trial_blob(study, n, "empty", b""),
        "set an empty blob",
    )?;
    expect(
        read("oof")?.as_deref() == Some(&b"again"[..]),
        "a blob is replaced by key",
    )?;
    expect(
        read("empty")?.as_deref() == Some(&b""[..]),
        "an empty blob is kept",
    )?;
    expect(read("other")?.is_none(), "a key never set has no blob")?;
    let t = no_error(s.trials(study), "read trials")?;
    expect(t[0].user_attrs.is_empty(), "blobs are not user attributes")?;
    no_error(
        s.finish_trial(study, n, TrialState::Complete, Some(1.0)),
        "finish",
    )?;
    expect(
        matches!(
            s.set_trial_blob(study, n, "late", b"x"),
            Err(Error::IllegalTransition { .. })
        ),
        "a finished trial's blobs are refused with IllegalTransition",
    )?;
    expect(
        matches!(
            s.trial_blob("conformance-no-such-study", 0, "oof"),
            Err(Error::UnknownStudy(_))
        ),
        "a blob of an unknown study is refused with UnknownStudy",
    )?;
    no_error(s.delete_study(study), "delete")?;
    no_error(s.create_study(study, Direction::Maximize), "create again")?;
    let n = no_error(s.create_trial(study), "create a trial again")?;
    expect(
        no_error(s.trial_blob(study, n, "oof"), "read a blob")?.is_none(),
        "a deleted study's blobs are gone with it",
    )?;
    no_error(s.delete_study(study), "clean up")
}

/// Create, look up, list and delete studies.
pub fn studies(s: &dyn Storage) -> Result<(), Violation> {
    no_error(
        s.create_study("conformance-a", Direction::Maximize),
        "create a study",
    )?;
    expect(
        matches!(
            s.create_study("conformance-a", Direction::Minimize),
            Err(Error::StudyExists(_))
        ),
        "creating a study twice is refused with StudyExists",
    )?;
    expect(
        no_error(s.study_direction("conformance-a"), "read a direction")? == Direction::Maximize,
        "the direction is kept",
    )?;
    expect(
        no_error(s.study_names(), "list studies")?.contains(&"conformance-a".to_owned()),
        "a created study is listed",
    )?;
    expect(
        matches!(s.trials("conformance-none"), Err(Error::UnknownStudy(_))),
        "an unknown study is refused with UnknownStudy",
    )?;
    expect(
        s.create_trial("conformance-none").is_err(),
        "no trial in an unknown study",
    )?;
    no_error(s.create_trial("conformance-a"), "create a trial")?;
    no_error(s.delete_study("conformance-a"), "delete a study")?;
    expect(
        !no_error(s.study_names(), "list studies")?.contains(&"conformance-a".to_owned()),
        "a deleted study is gone",
    )?;
    expect(
        s.delete_study("conformance-a").is_err(),
        "deleting twice is refused",
    )?;
    no_error(
        s.create_study("conformance-a", Direction::Minimize),
        "re-create a study",
    )?;
    expect(
        no_error(s.trials("conformance-a"), "list trials")?.is_empty(),
        "a re-created study starts without the old trials",
    )?;
    no_error(s.delete_study("conformance-a"), "clean up")
}

/// A trial's whole life: numbers, params, reports, attributes, completion.
pub fn lifecycle(s: &dyn Storage) -> Result<(), Violation> {
    let study = "conformance-life";
    no_error(s.create_study(study, Direction::Minimize), "create")?;
    for expected in 0..3 {
        expect(
            no_error(s.create_trial(study), "create a trial")? == expected,
            "trial numbers are contiguous from 0",
        )?;
    }
    let d = Distribution::float(1e-4, 1.0, Scale::Log);
    let c = Distribution::categorical(["relu", "tanh"]);
    no_error(
        s.set_param(study, 1, "lr", &d, &ParamValue::Float(0.01)),
        "set a float",
    )?;
    no_error(
        s.set_param(study, 1, "act", &c, &ParamValue::from("tanh")),
        "set a choice",
    )?;
    no_error(s.report(study, 1, 1, 0.5), "report step 1")?;
    no_error(s.report(study, 1, 2, 0.25), "report step 2")?;
    no_error(
        s.set_user_attr(study, 1, "note", &ParamValue::Int(7)),
        "set an attribute",
    )?;
    no_error(
        s.finish_trial(study, 1, TrialState::Complete, Some(0.2)),
        "complete",
    )?;
    no_error(
        s.finish_trial(study, 0, TrialState::Pruned, Some(0.9)),
        "prune",
    )?;
    no_error(s.finish_trial(study, 2, TrialState::Failed, None), "fail")?;
    let trials = no_error(s.trials(study), "list trials")?;
    expect(trials.len() == 3, "three trials are listed")?;
    expect(
        trials.iter().map(|t| t.number).collect::<Vec<_>>() == [0, 1, 2],
        "trials come in number order",
    )?;
    let t = &trials[1];
    expect(
        t.state == TrialState::Complete && t.value == Some(0.2),
        "state and value are kept",
    )?;
    expect(
        t.params.get("lr") == Some(&ParamValue::Float(0.01)),
        "a float param is kept exactly",
    )?;
    expect(
        t.params.get("act") == Some(&ParamValue::from("tanh")),
        "a choice is kept",
    )?;
    expect(
        t.distributions.get("lr") == Some(&d),
        "a distribution is kept",
    )?;
    expect(
        t.intermediate_values
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect::<Vec<_>>()
            == [(1, 0.5), (2, 0.25)],
        "intermediate values are kept by step",
    )?;
    expect(
        t.user_attrs.get("note") == Some(&ParamValue::Int(7)),
        "attributes are kept",
    )?;
    expect(
        trials[0].state == TrialState::Pruned,
        "a pruned state is kept",
    )?;
    expect(
        trials[2].state == TrialState::Failed && trials[2].value.is_none(),
        "a failed trial has no value",
    )?;
    no_error(s.delete_study(study), "clean up")
}

/// Changes that must be refused, leaving the stored data as it was.
pub fn illegal_changes(s: &dyn Storage) -> Result<(), Violation> {
    let study = "conformance-illegal";
    no_error(s.create_study(study, Direction::Minimize), "create")?;
    let n = no_error(s.create_trial(study), "create a trial")?;
    let d = Distribution::int(1, 3, Scale::Linear);
    expect(
        s.set_param(study, n, "k", &d, &ParamValue::Int(9)).is_err(),
        "a value outside its distribution is refused",
    )?;
    expect(
        s.set_param(
            study,
            n,
            "k",
            &Distribution::int(3, 1, Scale::Linear),
            &ParamValue::Int(2),
        )
        .is_err(),
        "an invalid distribution is refused",
    )?;
    expect(
        s.report(study, n, 1, f64::NAN).is_err(),
        "a NaN report is refused",
    )?;
    expect(
        s.finish_trial(study, n, TrialState::Complete, Some(f64::INFINITY))
            .is_err(),
        "completing with a non-finite value is refused",
    )?;
    expect(
        s.finish_trial(study, n, TrialState::Complete, None)
            .is_err(),
        "completing without a value is refused",
    )?;
    expect(
        s.finish_trial(study, n, TrialState::Running, None).is_err(),
        "finishing into Running is refused",
    )?;
    expect(
        matches!(s.report(study, 99, 1, 0.1), Err(Error::UnknownTrial { .. })),
        "an unknown trial is refused with UnknownTrial",
    )?;
    no_error(
        s.finish_trial(study, n, TrialState::Complete, Some(1.0)),
        "complete",
    )?;
    expect(
        matches!(
            s.finish_trial(study, n, TrialState::Failed, None),
            Err(Error::IllegalTransition {
                from: TrialState::Complete,
                ..
            })
        ),
        "finishing a finished trial is refused with IllegalTransition",
    )?;
    expect(
        s.set_param(study, n, "k", &d, &ParamValue::Int(1)).is_err(),
        "a finished trial takes no params",
    )?;
    expect(
        s.report(study, n, 5, 0.1).is_err(),
        "a finished trial takes no reports",
    )?;
    let t = no_error(s.trials(study), "list")?;
    expect(
        t[0].value == Some(1.0) && t[0].params.is_empty() && t[0].intermediate_values.is_empty(),
        "refused changes leave no trace",
    )?;
    no_error(s.delete_study(study), "clean up")
}

/// Heartbeats keep a running trial alive; trials without one past the grace period fail.
pub fn heartbeats(s: &dyn Storage) -> Result<(), Violation> {
    let study = "conformance-heartbeats";
    no_error(s.create_study(study, Direction::Minimize), "create")?;
    let silent = no_error(s.create_trial(study), "create a trial")?;
    let done = no_error(s.create_trial(study), "create a trial")?;
    let alive = no_error(s.create_trial(study), "create a trial")?;
    no_error(
        s.finish_trial(study, done, TrialState::Complete, Some(1.0)),
        "complete",
    )?;
    no_error(s.heartbeat(study, silent), "beat a running trial")?;
    expect(
        s.heartbeat(study, done).is_err(),
        "a finished trial takes no heartbeat",
    )?;
    expect(
        s.heartbeat(study, 99).is_err(),
        "an unknown trial takes no heartbeat",
    )?;
    expect(
        no_error(
            s.fail_stale_trials(study, std::time::Duration::from_secs(3600)),
            "sweep",
        )?
        .is_empty(),
        "nothing is stale within the grace period",
    )?;
    std::thread::sleep(std::time::Duration::from_millis(1300));
    no_error(s.heartbeat(study, alive), "beat again")?;
    let failed = no_error(
        s.fail_stale_trials(study, std::time::Duration::from_secs(1)),
        "sweep",
    )?;
    expect(
        failed == [silent],
        "only the silent running trial is failed",
    )?;
    let trials = no_error(s.trials(study), "list")?;
    expect(
        trials[silent as usize].state == TrialState::Failed,
        "a stale trial is failed",
    )?;
    expect(
        trials[silent as usize]
            .user_attrs
            .get(lepton_core::STALE_ATTR)
            == Some(&ParamValue::Bool(true)),
        "a stale trial is marked as such",
    )?;
    expect(
        trials[done as usize].state == TrialState::Complete,
        "a finished trial is untouched",
    )?;
    expect(
        trials[alive as usize].state == TrialState::Running,
        "a beating trial keeps running",
    )?;
    no_error(s.delete_study(study), "clean up")
}

/// Enqueued trials wait with their fixed parameters and are each claimed exactly once.
pub fn queue(s: &dyn Storage) -> Result<(), Violation> {
    let study = "conformance-queue";
    no_error(s.create_study(study, Direction::Minimize), "create")?;
    let fixed = std::collections::BTreeMap::from([("lr".to_owned(), ParamValue::Float(0.01))]);
    let first = no_error(s.enqueue_trial(study, &fixed), "enqueue")?;
    let running = no_error(s.create_trial(study), "create a trial")?;
    expect(
        (first, running) == (0, 1),
        "enqueued trials take numbers like any trial",
    )?;
    let t = no_error(s.trials(study), "list")?;
    expect(t[0].state == TrialState::Waiting, "an enqueued trial waits")?;
    let claimed = no_error(s.claim_waiting_trial(study), "claim")?;
    expect(
        claimed == Some((0, fixed)),
        "the claim returns the trial and its parameters",
    )?;
    expect(
        no_error(s.trials(study), "list")?[0].state == TrialState::Running,
        "a claimed trial runs",
    )?;
    expect(
        no_error(s.claim_waiting_trial(study), "claim")?.is_none(),
        "nothing is left to claim",
    )?;
    expect(
        s.claim_waiting_trial("conformance-none").is_err(),
        "an unknown study has no queue",
    )?;
    let empty = std::collections::BTreeMap::new();
    for _ in 0..20 {
        no_error(s.enqueue_trial(study, &empty), "enqueue")?;
    }
    let claims: Vec<lepton_core::Result<Option<(u64, _)>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    let mut mine = Vec::new();
                    loop {
                        match s.claim_waiting_trial(study) {
                            Ok(None) => break mine,
                            other => {
                                let stop = other.is_err();
                                mine.push(other);
                                if stop {
                                    break mine;
                                }
                            }
                        }
                    }
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let numbers: Vec<u64> = claims
        .into_iter()
        .map(|c| no_error(c, "claim from a thread").map(|c| c.map_or(u64::MAX, |(n, _)| n)))
        .collect::<Result<_, _>>()?;
    let distinct: BTreeSet<u64> = numbers.iter().copied().collect();
    expect(
        numbers.len() == 20 && distinct == (2..22).collect(),
        "20 waiting trials are claimed once each by 4 workers",
    )?;
    no_error(s.delete_study(study), "clean up")
}

/// A budgeted creation counts every trial but the failed ones, never overshoots under
/// concurrency, and a waiting trial takes user attributes.
pub fn budget(s: &dyn Storage) -> Result<(), Violation> {
    let study = "conformance-budget";
    no_error(s.create_study(study, Direction::Minimize), "create")?;
    let waiting = no_error(
        s.enqueue_trial(study, &std::collections::BTreeMap::new()),
        "enqueue",
    )?;
    no_error(
        s.set_user_attr(study, waiting, "retry_of", &ParamValue::Int(7)),
        "an attribute on a waiting trial",
    )?;
    let a = no_error(s.create_trial_within(study, 3), "create within 3")?;
    let b = no_error(s.create_trial_within(study, 3), "create within 3")?;
    expect(
        (a, b) == (Some(1), Some(2)),
        "a study with room creates trials numbered like any other",
    )?;
    expect(
        no_error(s.create_trial_within(study, 3), "create within 3")?.is_none(),
        "a study holding its budget (waiting and running trials count) creates none",
    )?;
    no_error(
        s.finish_trial(study, 1, TrialState::Failed, None),
        "fail a trial",
    )?;
    no_error(
        s.finish_trial(study, 2, TrialState::Complete, Some(1.0)),
        "complete a trial",
    )?;
    expect(
        no_error(s.create_trial_within(study, 3), "create within 3")? == Some(3),
        "a failed trial frees its place",
    )?;
    expect(
        no_error(s.create_trial_within(study, 3), "create within 3")?.is_none(),
        "complete trials count",
    )?;
    expect(
        s.create_trial_within("conformance-none", 3).is_err(),
        "an unknown study has no budget",
    )?;
    let t = no_error(s.trials(study), "list")?;
    expect(
        t[0].user_attrs.get("retry_of") == Some(&ParamValue::Int(7)),
        "the waiting trial keeps its attribute",
    )?;
    expect(
        s.set_user_attr(study, 2, "late", &ParamValue::Int(1))
            .is_err(),
        "a finished trial takes no attribute",
    )?;
    // 4 threads race for the places left under a budget of 24.
    let created: Vec<lepton_core::Result<Option<u64>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    (0..10)
                        .map(|_| s.create_trial_within(study, 24))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let created: Vec<u64> = created
        .into_iter()
        .map(|r| no_error(r, "create within a budget from a thread"))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .flatten()
        .collect();
    // 3 trials count (waiting 0, complete 2, running 3) and 1 is failed: 21 places are left.
    expect(
        created.len() == 21
            && created.iter().copied().collect::<BTreeSet<_>>() == (4..25).collect(),
        "4 threads racing under a budget fill it exactly",
    )?;
    no_error(s.delete_study(study), "clean up")
}

/// A failed trial's configuration is enqueued again once, however many workers try.
pub fn retries(s: &dyn Storage) -> Result<(), Violation> {
    use lepton_core::{RETRIES_ATTR, RETRY_OF_ATTR};
    let study = "conformance-retries";
    no_error(s.create_study(study, Direction::Minimize), "create")?;
    let first = no_error(s.create_trial(study), "create a trial")?;
    let d = Distribution::float(0.0, 1.0, Scale::Linear);
    let x = ParamValue::Float(0.125);
    no_error(s.set_param(study, first, "x", &d, &x), "set a parameter")?;
    expect(
        matches!(
            s.enqueue_retry(study, first),
            Err(Error::IllegalTransition { .. })
        ),
        "a running trial is not retried",
    )?;
    no_error(
        s.finish_trial(study, first, TrialState::Failed, None),
        "fail",
    )?;
    let retry = no_error(s.enqueue_retry(study, first), "retry")?;
    expect(retry == Some(1), "a retry is a new trial")?;
    expect(
        no_error(s.enqueue_retry(study, first), "retry again")?.is_none(),
        "a trial is retried once",
    )?;
    let t = no_error(s.trials(study), "list")?;
    expect(
        t[1].state == TrialState::Waiting
            && t[1].user_attrs.get(RETRY_OF_ATTR) == Some(&ParamValue::Int(0))
            && t[1].user_attrs.get(RETRIES_ATTR) == Some(&ParamValue::Int(1)),
        "a retry waits, naming the trial it repeats and its count",
    )?;
    let claimed = no_error(s.claim_waiting_trial(study), "claim")?;
    expect(
        claimed == Some((1, std::collections::BTreeMap::from([("x".to_owned(), x)]))),
        "a retry runs the failed trial's parameters",
    )?;
    no_error(s.finish_trial(study, 1, TrialState::Failed, None), "fail")?;
    no_error(s.enqueue_retry(study, 1), "retry a retry")?;
    expect(
        no_error(s.trials(study), "list")?[2]
            .user_attrs
            .get(RETRIES_ATTR)
            == Some(&ParamValue::Int(2)),
        "a retry of a retry counts two",
    )?;
    expect(
        s.enqueue_retry(study, 99).is_err() && s.enqueue_retry("conformance-none", 0).is_err(),
        "unknown trials and studies are not retried",
    )?;
    // 4 threads race to retry one failed trial.
    let racer = no_error(s.create_trial(study), "create a trial")?;
    no_error(
        s.finish_trial(study, racer, TrialState::Failed, None),
        "fail",
    )?;
    let outcomes: Vec<lepton_core::Result<Option<u64>>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| s.enqueue_retry(study, racer)))
            .collect();
        handles.into_iter().filter_map(|h| h.join().ok()).collect()
    });
    let created: Vec<Option<u64>> = outcomes
        .into_iter()
        .map(|r| no_error(r, "retry from a thread"))
        .collect::<Result<_, _>>()?;
    expect(
        created.len() == 4 && created.iter().flatten().count() == 1,
        "4 workers retrying one trial create one retry",
    )?;
    no_error(s.delete_study(study), "clean up")
}

/// Trial numbers stay unique and contiguous when threads create trials at once.
pub fn concurrent_numbers(s: &dyn Storage) -> Result<(), Violation> {
    let study = "conformance-threads";
    no_error(s.create_study(study, Direction::Minimize), "create")?;
    let numbers: Vec<lepton_core::Result<u64>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| scope.spawn(|| (0..25).map(|_| s.create_trial(study)).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_default())
            .collect()
    });
    let numbers: BTreeSet<u64> = numbers
        .into_iter()
        .map(|r| no_error(r, "create a trial from a thread"))
        .collect::<Result<_, _>>()?;
    expect(
        numbers == (0..100).collect(),
        "100 concurrent trials get the numbers 0 to 99",
    )?;
    no_error(s.delete_study(study), "clean up")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::InMemoryStorage;
    use lepton_core::FrozenTrial;

    /// A storage that forgets a rule: to refuse finishing a finished trial (it overwrites the
    /// value), or to keep a budget.
    struct Lenient(InMemoryStorage, Forgets);

    #[derive(PartialEq)]
    enum Forgets {
        Finished,
        Budget,
    }

    impl Storage for Lenient {
        fn create_study(&self, n: &str, d: Direction) -> lepton_core::Result<()> {
            self.0.create_study(n, d)
        }
        fn delete_study(&self, n: &str) -> lepton_core::Result<()> {
            self.0.delete_study(n)
        }
        fn study_direction(&self, n: &str) -> lepton_core::Result<Direction> {
            self.0.study_direction(n)
        }
        fn study_names(&self) -> lepton_core::Result<Vec<String>> {
            self.0.study_names()
        }
        fn create_trial(&self, s: &str) -> lepton_core::Result<u64> {
            self.0.create_trial(s)
        }
        fn create_trial_within(&self, s: &str, limit: u64) -> lepton_core::Result<Option<u64>> {
            if self.1 == Forgets::Budget {
                return self.0.create_trial(s).map(Some);
            }
            self.0.create_trial_within(s, limit)
        }
        fn set_param(
            &self,
            s: &str,
            n: u64,
            name: &str,
            d: &Distribution,
            v: &ParamValue,
        ) -> lepton_core::Result<()> {
            self.0.set_param(s, n, name, d, v)
        }
        fn set_user_attr(
            &self,
            s: &str,
            n: u64,
            k: &str,
            v: &ParamValue,
        ) -> lepton_core::Result<()> {
            self.0.set_user_attr(s, n, k, v)
        }
        fn report(&self, s: &str, n: u64, step: u64, v: f64) -> lepton_core::Result<()> {
            self.0.report(s, n, step, v)
        }
        fn heartbeat(&self, s: &str, n: u64) -> lepton_core::Result<()> {
            self.0.heartbeat(s, n)
        }
        fn enqueue_trial(
            &self,
            s: &str,
            p: &std::collections::BTreeMap<String, ParamValue>,
        ) -> lepton_core::Result<u64> {
            self.0.enqueue_trial(s, p)
        }
        #[allow(clippy::type_complexity)]
        fn claim_waiting_trial(
            &self,
            s: &str,
        ) -> lepton_core::Result<Option<(u64, std::collections::BTreeMap<String, ParamValue>)>>
        {
            self.0.claim_waiting_trial(s)
        }
        fn fail_stale_trials(
            &self,
            s: &str,
            grace: std::time::Duration,
        ) -> lepton_core::Result<Vec<u64>> {
            self.0.fail_stale_trials(s, grace)
        }
        fn enqueue_retry(&self, s: &str, n: u64) -> lepton_core::Result<Option<u64>> {
            self.0.enqueue_retry(s, n)
        }
        fn finish_trial(
            &self,
            s: &str,
            n: u64,
            state: TrialState,
            v: Option<f64>,
        ) -> lepton_core::Result<()> {
            match self.0.finish_trial(s, n, state, v) {
                Err(Error::IllegalTransition { .. }) if self.1 == Forgets::Finished => Ok(()),
                other => other,
            }
        }
        fn trials(&self, s: &str) -> lepton_core::Result<Vec<FrozenTrial>> {
            self.0.trials(s)
        }
    }

    #[test]
    fn a_lenient_storage_fails_the_suite() {
        let e = run(&Lenient(InMemoryStorage::new(), Forgets::Finished)).unwrap_err();
        assert!(e.0.contains("is refused"), "{e}");
        let e = run(&Lenient(InMemoryStorage::new(), Forgets::Budget)).unwrap_err();
        assert!(e.0.contains("creates none"), "{e}");
    }
}
