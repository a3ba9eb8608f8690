//! The sampler stage: proposes parameter values.

use crate::error::Result;
use crate::history::History;
use crate::param::{Distribution, ParamValue};

/// Proposes a value for one parameter of one trial, from a read-only view of the study.
///
/// A sampler never sees the study itself, only its [`History`]; it must be deterministic for a
/// given seed, history, trial number and parameter name, so that sequential studies reproduce.
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
}
