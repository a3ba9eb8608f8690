//! The in-memory storage: the default for tests and quick runs.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use lepton_core::{
    Direction, Distribution, Error, FrozenTrial, ParamValue, RETRIES_ATTR, RETRY_OF_ATTR, Result,
    STALE_ATTR, Storage, TrialState, check_finish, check_param, check_report,
};

use super::names::Names;

#[derive(Debug, Clone)]
struct StudyRecord {
    direction: Direction,
    /// Shared with the histories handed out; a write copies a trial only while a history
    /// still holds it.
    trials: Vec<Arc<FrozenTrial>>,
    /// Last heartbeat of each trial, by number.
    beats: Vec<Instant>,
    /// Trials in the failed state (every other trial counts toward a study's budget).
    failed: u64,
    /// Fixed parameters of trials enqueued and not yet claimed.
    queue: BTreeMap<u64, BTreeMap<String, ParamValue>>,
    /// Every parameter name the study's trials use, allocated once: each trial's `params`
    /// and `distributions` keys are clones of these, not copies per trial.
    names: Names,
    /// Trials' blobs, by trial number and key.
    blobs: BTreeMap<(u64, String), Arc<[u8]>>,
}

/// Keeps every study in the process's memory, behind one mutex. Lost when the process ends.
#[derive(Debug, Default)]
pub struct InMemoryStorage {
    studies: Mutex<BTreeMap<String, StudyRecord>>,
}

/// A snapshot: the copy holds every study as it stands, and the two evolve apart. Trials
/// are shared until either side writes to them, so a snapshot of a long study is cheap.
impl Clone for InMemoryStorage {
    fn clone(&self) -> Self {
        InMemoryStorage {
            studies: Mutex::new(self.lock().clone()),
        }
    }
}

impl InMemoryStorage {
    /// An empty storage.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, StudyRecord>> {
        // A panic elsewhere while holding the lock leaves the data consistent (every write is
        // a single assignment), so a poisoned lock is still safe to use.
        self.studies
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Runs `f` on trial `number` if it is running.
    fn with_running<T>(
        &self,
        study: &str,
        number: u64,
        f: impl FnOnce(&mut FrozenTrial, &mut Instant, &mut Names) -> T,
    ) -> Result<T> {
        self.with_trial_in(study, number, &[TrialState::Running], f)
    }

    /// Runs `f` on trial `number` if its state is one of `states`.
    fn with_trial_in<T>(
        &self,
        study: &str,
        number: u64,
        states: &[TrialState],
        f: impl FnOnce(&mut FrozenTrial, &mut Instant, &mut Names) -> T,
    ) -> Result<T> {
        let mut studies = self.lock();
        let record = studies
            .get_mut(study)
            .ok_or_else(|| Error::UnknownStudy(study.to_owned()))?;
        let at = trial_in(record, study, number, states, TrialState::Running)?;
        let StudyRecord {
            trials,
            beats,
            names,
            ..
        } = record;
        Ok(f(Arc::make_mut(&mut trials[at]), &mut beats[at], names))
    }
}

/// The index of trial `number` of `record` (study `study`) if its state is one of `states`;
/// otherwise the transition to `to` is refused.
fn trial_in(
    record: &StudyRecord,
    study: &str,
    number: u64,
    states: &[TrialState],
    to: TrialState,
) -> Result<usize> {
    let trial = record
        .trials
        .get(number as usize)
        .ok_or_else(|| Error::UnknownTrial {
            study: study.to_owned(),
            number,
        })?;
    if !states.contains(&trial.state) {
        return Err(Error::IllegalTransition {
            number,
            from: trial.state,
            to,
        });
    }
    Ok(number as usize)
}

impl Storage for InMemoryStorage {
    fn create_study(&self, name: &str, direction: Direction) -> Result<()> {
        let mut studies = self.lock();
        if studies.contains_key(name) {
            return Err(Error::StudyExists(name.to_owned()));
        }
        studies.insert(
            name.to_owned(),
            StudyRecord {
                direction,
                trials: Vec::new(),
                beats: Vec::new(),
                failed: 0,
                queue: BTreeMap::new(),
                names: Names::default(),
                blobs: BTreeMap::new(),
            },
        );
        Ok(())
    }

    fn delete_study(&self, name: &str) -> Result<()> {
        self.lock()
            .remove(name)
            .map(|_| ())
            .ok_or_else(|| Error::UnknownStudy(name.to_owned()))
    }

    fn study_direction(&self, name: &str) -> Result<Direction> {
        self.lock()
            .get(name)
            .map(|s| s.direction)
            .ok_or_else(|| Error::UnknownStudy(name.to_owned()))
    }

    fn study_names(&self) -> Result<Vec<String>> {
        Ok(self.lock().keys().cloned().collect())
    }

    fn create_trial(&self, study: &str) -> Result<u64> {
        let mut studies = self.lock();
        let record = studies
            .get_mut(study)
            .ok_or_else(|| Error::UnknownStudy(study.to_owned()))?;
        let number = record.trials.len() as u64;
        record.trials.push(Arc::new(FrozenTrial::new(number)));
        record.beats.push(Instant::now());
        Ok(number)
    }

    fn create_trial_within(&self, study: &str, limit: u64) -> Result<Option<u64>> {
        let mut studies = self.lock();
        let record = studies
            .get_mut(study)
            .ok_or_else(|| Error::UnknownStudy(study.to_owned()))?;
        let counted = record.trials.len() as u64 - record.failed;
        if counted >= limit {
            return Ok(None);
        }
        let number = record.trials.len() as u64;
        record.trials.push(Arc::new(FrozenTrial::new(number)));
        record.beats.push(Instant::now());
        Ok(Some(number))
    }

    fn set_param(
        &self,
        study: &str,
        number: u64,
        name: &str,
        distribution: &Distribution,
        value: &ParamValue,
    ) -> Result<()> {
        check_param(name, distribution, value)?;
        self.with_running(study, number, |t, _, names| {
            let name = names.intern(name);
            t.distributions.insert(name.clone(), distribution.clone());
            t.params.insert(name, value.clone());
        })
    }

    fn set_user_attr(&self, study: &str, number: u64, key: &str, value: &ParamValue) -> Result<()> {
        let live = [TrialState::Waiting, TrialState::Running];
        self.with_trial_in(study, number, &live, |t, _, _| {
            t.user_attrs.insert(key.to_owned(), value.clone());
        })
    }

    fn set_trial_blob(&self, study: &str, number: u64, key: &str, bytes: &[u8]) -> Result<bool> {
        let mut studies = self.lock();
        let record = studies
            .get_mut(study)
            .ok_or_else(|| Error::UnknownStudy(study.to_owned()))?;
        let live = [TrialState::Waiting, TrialState::Running];
        trial_in(record, study, number, &live, TrialState::Running)?;
        record
            .blobs
            .insert((number, key.to_owned()), Arc::from(bytes));
        Ok(true)
    }

    fn trial_blob(&self, study: &str, number: u64, key: &str) -> Result<Option<Vec<u8>>> {
        let studies = self.lock();
        let record = studies
            .get(study)
            .ok_or_else(|| Error::UnknownStudy(study.to_owned()))?;
        Ok(record
            .blobs
            .get(&(number, key.to_owned()))
            .map(|b| b.to_vec()))
    }

    fn enqueue_trial(&self, study: &str, params: &BTreeMap<String, ParamValue>) -> Result<u64> {
        let mut studies = self.lock();
        let record = studies
            .get_mut(study)
            .ok_or_else(|| Error::UnknownStudy(study.to_owned()))?;
        let number = record.trials.len() as u64;
        let mut trial = FrozenTrial::new(number);
        trial.state = TrialState::Waiting;
        record.trials.push(Arc::new(trial));
        record.beats.push(Instant::now());
        record.queue.insert(number, params.clone());
        Ok(number)
    }

    fn claim_waiting_trial(
        &self,
        study: &str,
    ) -> Result<Option<(u64, BTreeMap<String, ParamValue>)>> {
        let mut studies = self.lock();
        let record = studies
            .get_mut(study)
            .ok_or_else(|| Error::UnknownStudy(study.to_owned()))?;
        let Some((number, params)) = record.queue.pop_first() else {
            return Ok(None);
        };
        let i = number as usize;
        Arc::make_mut(&mut record.trials[i]).state = TrialState::Running;
        record.beats[i] = Instant::now();
        Ok(Some((number, params)))
    }

    fn heartbeat(&self, study: &str, number: u64) -> Result<()> {
        self.with_running(study, number, |_, beat, _| *beat = Instant::now())
    }

    fn fail_stale_trials(&self, study: &str, grace: Duration) -> Result<Vec<u64>> {
        let mut studies = self.lock();
        let record = studies
            .get_mut(study)
            .ok_or_else(|| Error::UnknownStudy(study.to_owned()))?;
        let mut failed = Vec::new();
        for (trial, beat) in record.trials.iter_mut().zip(&record.beats) {
            if trial.state == TrialState::Running && beat.elapsed() > grace {
                let trial = Arc::make_mut(trial);
                trial.state = TrialState::Failed;
                trial
                    .user_attrs
                    .insert(STALE_ATTR.to_owned(), ParamValue::Bool(true));
                failed.push(trial.number);
            }
        }
        record.failed += failed.len() as u64;
        Ok(failed)
    }

    fn enqueue_retry(&self, study: &str, number: u64) -> Result<Option<u64>> {
        let mut studies = self.lock();
        let record = studies
            .get_mut(study)
            .ok_or_else(|| Error::UnknownStudy(study.to_owned()))?;
        let at = trial_in(
            record,
            study,
            number,
            &[TrialState::Failed],
            TrialState::Waiting,
        )?;
        let failed = &record.trials[at];
        let of = ParamValue::Int(number as i64);
        if record
            .trials
            .iter()
            .any(|t| t.user_attrs.get(RETRY_OF_ATTR) == Some(&of))
        {
            return Ok(None);
        }
        let retries = match failed.user_attrs.get(RETRIES_ATTR) {
            Some(ParamValue::Int(n)) => n.saturating_add(1),
            _ => 1,
        };
        let params = failed
            .params
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect();
        let retry = record.trials.len() as u64;
        let mut trial = FrozenTrial::new(retry);
        trial.state = TrialState::Waiting;
        trial.user_attrs.insert(RETRY_OF_ATTR.to_owned(), of);
        trial
            .user_attrs
            .insert(RETRIES_ATTR.to_owned(), ParamValue::Int(retries));
        record.trials.push(Arc::new(trial));
        record.beats.push(Instant::now());
        record.queue.insert(retry, params);
        Ok(Some(retry))
    }

    fn report(&self, study: &str, number: u64, step: u64, value: f64) -> Result<()> {
        check_report(value)?;
        self.with_running(study, number, |t, _, _| {
            t.intermediate_values.insert(step, value);
        })
    }

    fn finish_trial(
        &self,
        study: &str,
        number: u64,
        state: TrialState,
        value: Option<f64>,
    ) -> Result<()> {
        check_finish(number, state, value)?;
        let mut studies = self.lock();
        let record = studies
            .get_mut(study)
            .ok_or_else(|| Error::UnknownStudy(study.to_owned()))?;
        let trial = record
            .trials
            .get_mut(number as usize)
            .ok_or_else(|| Error::UnknownTrial {
                study: study.to_owned(),
                number,
            })?;
        if trial.state != TrialState::Running {
            return Err(Error::IllegalTransition {
                number,
                from: trial.state,
                to: state,
            });
        }
        let trial = Arc::make_mut(trial);
        trial.state = state;
        trial.value = value;
        if state == TrialState::Failed {
            record.failed += 1;
        }
        Ok(())
    }

    fn trials(&self, study: &str) -> Result<Vec<FrozenTrial>> {
        Ok(self
            .trials_shared(study)?
            .into_iter()
            .map(Arc::unwrap_or_clone)
            .collect())
    }

    fn trials_shared(&self, study: &str) -> Result<Vec<Arc<FrozenTrial>>> {
        self.lock()
            .get(study)
            .map(|s| s.trials.clone())
            .ok_or_else(|| Error::UnknownStudy(study.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lepton_core::{ParamName, Scale};

    #[test]
    fn passes_the_conformance_suite() {
        crate::storage::conformance::run(&InMemoryStorage::new()).unwrap();
    }

    #[test]
    fn a_clone_is_a_snapshot() {
        let s = InMemoryStorage::new();
        s.create_study("a", Direction::Minimize).unwrap();
        s.create_trial("a").unwrap();
        let snapshot = s.clone();
        s.finish_trial("a", 0, TrialState::Complete, Some(1.0))
            .unwrap();
        s.create_trial("a").unwrap();
        assert_eq!(snapshot.trials("a").unwrap().len(), 1);
        assert_eq!(snapshot.trials("a").unwrap()[0].state, TrialState::Running);
        assert_eq!(s.trials("a").unwrap()[0].state, TrialState::Complete);
    }

    #[test]
    fn trials_share_one_allocation_per_parameter_name() {
        let s = InMemoryStorage::new();
        let d = Distribution::float(0.0, 1.0, Scale::Linear);
        let v = ParamValue::Float(0.5);
        for study in ["a", "b"] {
            s.create_study(study, Direction::Minimize).unwrap();
            for number in 0..2 {
                s.create_trial(study).unwrap();
                for name in ["x", "y"] {
                    s.set_param(study, number, name, &d, &v).unwrap();
                }
            }
        }
        let a = s.trials_shared("a").unwrap();
        let b = s.trials_shared("b").unwrap();
        let key = |t: &FrozenTrial, name: &str| t.params.get_key_value(name).unwrap().0.clone();
        let dist_key =
            |t: &FrozenTrial, name: &str| t.distributions.get_key_value(name).unwrap().0.clone();
        for name in ["x", "y"] {
            let first = key(&a[0], name);
            assert_eq!(first, name);
            for other in [
                key(&a[1], name),
                dist_key(&a[0], name),
                dist_key(&a[1], name),
            ] {
                assert!(ParamName::ptr_eq(&first, &other), "{name}");
            }
            // Each study interns its own names.
            assert!(!ParamName::ptr_eq(&first, &key(&b[0], name)));
            assert!(ParamName::ptr_eq(&key(&b[0], name), &key(&b[1], name)));
        }
    }

    #[test]
    fn trial_lifecycle() {
        let s = InMemoryStorage::new();
        s.create_study("a", Direction::Maximize).unwrap();
        assert!(matches!(
            s.create_study("a", Direction::Minimize),
            Err(Error::StudyExists(_))
        ));
        assert_eq!(s.create_trial("a").unwrap(), 0);
        assert_eq!(s.create_trial("a").unwrap(), 1);
        let d = Distribution::float(0.0, 1.0, Scale::Linear);
        s.set_param("a", 0, "x", &d, &ParamValue::Float(0.5))
            .unwrap();
        assert!(
            s.set_param("a", 0, "x", &d, &ParamValue::Float(2.0))
                .is_err()
        );
        s.report("a", 0, 1, 0.25).unwrap();
        s.set_user_attr("a", 0, "note", &ParamValue::from("hi"))
            .unwrap();
        assert!(s.report("a", 0, 2, f64::NAN).is_err());
        s.finish_trial("a", 0, TrialState::Complete, Some(0.9))
            .unwrap();
        // A finished trial cannot change any more, and nothing it holds is lost.
        assert!(matches!(
            s.finish_trial("a", 0, TrialState::Failed, None),
            Err(Error::IllegalTransition {
                from: TrialState::Complete,
                to: TrialState::Failed,
                ..
            })
        ));
        assert!(s.report("a", 0, 3, 0.1).is_err());
        assert!(
            s.finish_trial("a", 1, TrialState::Complete, Some(f64::NAN))
                .is_err()
        );
        assert!(s.finish_trial("a", 1, TrialState::Running, None).is_err());
        let trials = s.trials("a").unwrap();
        assert_eq!(trials[0].value, Some(0.9));
        assert_eq!(trials[0].intermediate_values.get(&1), Some(&0.25));
        assert_eq!(trials[0].user_attrs["note"], ParamValue::from("hi"));
        assert_eq!(trials[1].state, TrialState::Running);
        assert!(matches!(s.trials("b"), Err(Error::UnknownStudy(_))));
        assert!(s.create_trial("b").is_err());
        assert!(s.finish_trial("a", 7, TrialState::Failed, None).is_err());
    }
}
