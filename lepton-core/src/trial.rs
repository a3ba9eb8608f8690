//! The live handle of a trial, on which an objective suggests parameters and reports
//! progress (its stored record is a [`FrozenTrial`]).

use std::collections::BTreeMap;
use std::sync::Arc;

use crate::context::TrialContext;
use crate::error::{Error, Result};
use crate::frozen_trial::{FrozenTrial, objective_attr};
use crate::history::History;
use crate::name::ParamName;
use crate::param::{Distribution, ParamValue, Scale};
use crate::pruner::Pruner;
use crate::sampler::{JointSample, Sampler};
use crate::storage::Storage;

/// The live handle of one trial: an objective suggests its parameters here and reports
/// progress through it (it is the [`TrialContext`] a study hands to training).
///
/// A `Trial` is created by a study's `ask`; every suggestion is written to the study's storage
/// straight away, so a crash loses nothing already decided.
pub struct Trial {
    study: String,
    record: FrozenTrial,
    fixed: BTreeMap<String, ParamValue>,
    joint: JointSample,
    history: Arc<History>,
    sampler: Arc<dyn Sampler>,
    pruner: Arc<dyn Pruner>,
    storage: Arc<dyn Storage>,
    /// Prepended to every suggested name (see [`Trial::scoped`]).
    prefix: String,
}

impl std::fmt::Debug for Trial {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Trial")
            .field("study", &self.study)
            .field("record", &self.record)
            .finish_non_exhaustive()
    }
}

impl Trial {
    /// Binds a freshly created trial to its study's sampler, pruner and storage. Studies call
    /// this; users get trials from `Study::ask`.
    pub fn new(
        study: impl Into<String>,
        number: u64,
        history: Arc<History>,
        sampler: Arc<dyn Sampler>,
        pruner: Arc<dyn Pruner>,
        storage: Arc<dyn Storage>,
    ) -> Self {
        Trial {
            study: study.into(),
            record: FrozenTrial::new(number),
            fixed: BTreeMap::new(),
            joint: JointSample::new(),
            history,
            sampler,
            pruner,
            storage,
            prefix: String::new(),
        }
    }

    /// Fixes parameter values in advance (an enqueued configuration): `suggest` returns these
    /// instead of sampling, after checking that each lies in its distribution.
    pub fn with_fixed_params(mut self, fixed: BTreeMap<String, ParamValue>) -> Self {
        self.fixed = fixed;
        self
    }

    /// Values a sampler decided jointly for this trial (see [`Sampler::sample_joint`]):
    /// `suggest` returns one when the name and the distribution match.
    pub fn with_joint_sample(mut self, joint: JointSample) -> Self {
        self.joint = joint;
        self
    }

    /// The trial's number within its study.
    pub fn number(&self) -> u64 {
        self.record.number
    }

    /// The study this trial belongs to.
    pub fn study(&self) -> &str {
        &self.study
    }

    /// The parameters suggested so far.
    pub fn params(&self) -> &BTreeMap<ParamName, ParamValue> {
        &self.record.params
    }

    /// The trial's record as it stands.
    pub fn record(&self) -> &FrozenTrial {
        &self.record
    }

    /// Suggests a value for `name` from `distribution` (define-by-run). Asking again for the
    /// same name with the same distribution returns the same value.
    pub fn suggest(&mut self, name: &str, distribution: &Distribution) -> Result<ParamValue> {
        let scoped;
        let name = if self.prefix.is_empty() {
            name
        } else {
            scoped = format!("{}{name}", self.prefix);
            scoped.as_str()
        };
        distribution.validate(name)?;
        if let Some(existing) = self.record.distributions.get(name) {
            if existing != distribution {
                return Err(Error::ParamConflict {
                    name: name.to_owned(),
                });
            }
            if let Some(v) = self.record.params.get(name) {
                return Ok(v.clone());
            }
        }
        let value = match self.fixed.get(name) {
            Some(v) if distribution.contains(v) => v.clone(),
            Some(v) => {
                return Err(Error::InvalidParameter {
                    name: name.to_owned(),
                    reason: format!("enqueued value `{v}` is outside {distribution:?}"),
                });
            }
            None => {
                let v = match self.joint.get(name) {
                    Some((d, v)) if d == distribution => v.clone(),
                    _ => self.sampler.sample(
                        &self.history,
                        self.record.number,
                        name,
                        distribution,
                    )?,
                };
                if !distribution.contains(&v) {
                    return Err(Error::InvalidParameter {
                        name: name.to_owned(),
                        reason: format!("the sampler proposed `{v}`, outside {distribution:?}"),
                    });
                }
                v
            }
        };
        self.storage
            .set_param(&self.study, self.record.number, name, distribution, &value)?;
        let key = ParamName::from(name);
        self.record
            .distributions
            .insert(key.clone(), distribution.clone());
        self.record.params.insert(key, value.clone());
        Ok(value)
    }

    /// Runs `suggest` with every name it suggests prefixed by `prefix` (scopes nest): one
    /// model family's search space inside a conditional space over families keeps its names
    /// (`cnn.learning_rate`) apart from another's (`mlp.learning_rate`), whose ranges differ.
    /// [`scoped_params`] reads the scope's values back without the prefix.
    pub fn scoped<T>(
        &mut self,
        prefix: &str,
        suggest: impl FnOnce(&mut Trial) -> Result<T>,
    ) -> Result<T> {
        let outer = self.prefix.len();
        self.prefix.push_str(prefix);
        let result = suggest(self);
        self.prefix.truncate(outer);
        result
    }

    /// Records a fact about this trial (kept in the storage, not used by samplers).
    pub fn set_user_attr(&mut self, key: &str, value: impl Into<ParamValue>) -> Result<()> {
        let value = value.into();
        self.storage
            .set_user_attr(&self.study, self.record.number, key, &value)?;
        self.record.user_attrs.insert(key.to_owned(), value);
        Ok(())
    }

    /// Keeps `bytes` under `key` for this trial in the storage, apart from its record (see
    /// [`Storage::set_trial_blob`]); returns whether the storage keeps such blobs.
    pub fn set_blob(&mut self, key: &str, bytes: &[u8]) -> Result<bool> {
        self.storage
            .set_trial_blob(&self.study, self.record.number, key, bytes)
    }

    /// Suggests a real number in `[low, high]`.
    pub fn suggest_float(&mut self, name: &str, low: f64, high: f64, scale: Scale) -> Result<f64> {
        let v = self.suggest(name, &Distribution::float(low, high, scale))?;
        v.as_f64().ok_or_else(|| wrong_type(name, &v))
    }

    /// Suggests an integer in `[low, high]`.
    pub fn suggest_int(&mut self, name: &str, low: i64, high: i64, scale: Scale) -> Result<i64> {
        let v = self.suggest(name, &Distribution::int(low, high, scale))?;
        v.as_i64().ok_or_else(|| wrong_type(name, &v))
    }

    /// Suggests one of `choices`.
    pub fn suggest_categorical<T: Into<ParamValue> + Clone>(
        &mut self,
        name: &str,
        choices: &[T],
    ) -> Result<ParamValue> {
        self.suggest(name, &Distribution::categorical(choices.iter().cloned()))
    }
}

/// The parameters suggested under `prefix` (see [`Trial::scoped`]), with the prefix taken
/// off their names: what a family's configuration reads from a trial of a conditional space.
pub fn scoped_params<'a, K: std::borrow::Borrow<str>>(
    params: &'a BTreeMap<K, ParamValue>,
    prefix: &str,
) -> BTreeMap<&'a str, ParamValue> {
    params
        .iter()
        .filter_map(|(k, v)| Some((k.borrow().strip_prefix(prefix)?, v.clone())))
        .collect()
}

fn wrong_type(name: &str, v: &ParamValue) -> Error {
    Error::InvalidParameter {
        name: name.to_owned(),
        reason: format!("value `{v}` has the wrong type"),
    }
}

impl TrialContext for Trial {
    fn report(&mut self, step: u64, value: f64) -> Result<()> {
        if !value.is_finite() {
            return Err(Error::InvalidInput(format!(
                "trial {} reported a non-finite value {value} at step {step}",
                self.record.number
            )));
        }
        self.storage
            .report(&self.study, self.record.number, step, value)?;
        self.record.intermediate_values.insert(step, value);
        Ok(())
    }

    fn should_prune(&self) -> bool {
        let Some(reason) = self.pruner.prune_reason(&self.history, &self.record) else {
            return false;
        };
        let (step, value) = self.record.last_step().unwrap_or((0, f64::NAN));
        tracing::info!(trial = self.record.number, step, value, %reason, "pruning decision: stop");
        true
    }

    /// Records every value: the further objectives first (as user attributes), then the
    /// intermediate value, so that whoever sees the step's value sees all of them. Nothing is
    /// written unless every value is finite.
    fn report_objectives(&mut self, step: u64, values: &[f64]) -> Result<()> {
        let Some((&first, rest)) = values.split_first() else {
            return Err(Error::InvalidInput(format!(
                "trial {} reported no values at step {step}",
                self.record.number
            )));
        };
        if let Some(bad) = values.iter().find(|v| !v.is_finite()) {
            return Err(Error::InvalidInput(format!(
                "trial {} reported a non-finite value {bad} at step {step}",
                self.record.number
            )));
        }
        for (i, &v) in rest.iter().enumerate() {
            self.set_user_attr(&objective_attr(step, i + 1), v)?;
        }
        self.report(step, first)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scoped_params_strip_their_prefix_and_leave_others_out() {
        let params = BTreeMap::from([
            ("family".to_owned(), ParamValue::from("cnn")),
            ("cnn.kernel".to_owned(), ParamValue::from(3i64)),
            ("mlp.depth".to_owned(), ParamValue::from(2i64)),
        ]);
        assert_eq!(
            scoped_params(&params, "cnn."),
            BTreeMap::from([("kernel", ParamValue::from(3i64))])
        );
    }
}
