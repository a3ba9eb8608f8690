//! The sampler stage: proposes parameter values.

use std::collections::BTreeMap;

use crate::error::Result;
use crate::history::History;
use crate::param::{Distribution, ParamValue};

/// Values a sampler decided jointly for a new trial, with the distribution each was drawn
/// from. A trial uses a value when the objective suggests that name with that distribution.
pub type JointSample = BTreeMap<String, (Distribution, ParamValue)>;

/// Proposes parameter values from a read-only view of the study.
///
/// A sampler never sees the study itself, only its [`History`]. It works in two steps, as
/// Optuna's do:
///
/// 1. when a trial is asked, [`sample_joint`](Sampler::sample_joint) may decide values for
///    several parameters at once (a Gaussian process, CMA-ES, multivariate TPE, a Sobol point
///    model the parameters together); the default decides none;
/// 2. every parameter the objective suggests that the joint step did not decide (a new
///    parameter, a conditional one) goes to [`sample`](Sampler::sample), one at a time.
///
/// Both must be deterministic for a given seed, history and trial number, so that sequential
/// studies reproduce.
///
/// A minimal sampler that always proposes the middle of the range:
///
/// ```
/// use lepton_core::{Distribution, History, ParamValue, Result, Sampler};
///
/// struct Midpoint;
///
/// impl Sampler for Midpoint {
///     fn sample(&self, _: &History, _: u64, _: &str, d: &Distribution) -> Result<ParamValue> {
///         Ok(match d {
///             Distribution::Float { low, high, .. } => d.from_internal((low + high) / 2.0),
///             Distribution::Int { low, high, .. } => d.from_internal((low + high) as f64 / 2.0),
///             Distribution::Categorical { .. } => d.from_internal(0.0),
///         })
///     }
/// }
///
/// let d = Distribution::float(0.0, 4.0, Default::default());
/// assert_eq!(Midpoint.sample(&History::default(), 0, "x", &d)?, ParamValue::Float(2.0));
/// # Ok::<(), lepton_core::Error>(())
/// ```
pub trait Sampler: Send + Sync {
    /// A value for parameter `name` of trial `trial_number`, drawn from `distribution`.
    fn sample(
        &self,
        history: &History,
        trial_number: u64,
        name: &str,
        distribution: &Distribution,
    ) -> Result<ParamValue>;

    /// Values decided together for trial `trial_number`, before the objective runs. The
    /// default decides nothing, leaving every parameter to [`sample`](Sampler::sample).
    fn sample_joint(&self, history: &History, trial_number: u64) -> Result<JointSample> {
        let _ = (history, trial_number);
        Ok(JointSample::new())
    }
}

/// A boxed sampler is a sampler, so one can be chosen at run time (by name, from a config).
impl<S: Sampler + ?Sized> Sampler for Box<S> {
    fn sample(
        &self,
        history: &History,
        trial_number: u64,
        name: &str,
        distribution: &Distribution,
    ) -> Result<ParamValue> {
        (**self).sample(history, trial_number, name, distribution)
    }

    fn sample_joint(&self, history: &History, trial_number: u64) -> Result<JointSample> {
        (**self).sample_joint(history, trial_number)
    }
}

/// A shared sampler is a sampler, so one instance (and what it has learned) can serve several
/// studies in turn.
impl<S: Sampler + ?Sized> Sampler for std::sync::Arc<S> {
    fn sample(
        &self,
        history: &History,
        trial_number: u64,
        name: &str,
        distribution: &Distribution,
    ) -> Result<ParamValue> {
        (**self).sample(history, trial_number, name, distribution)
    }

    fn sample_joint(&self, history: &History, trial_number: u64) -> Result<JointSample> {
        (**self).sample_joint(history, trial_number)
    }
}
