//! The one error type of lepton-core, which every other crate's error wraps.

use crate::trial_state::TrialState;

/// A boxed error from a stage implementation (a user's model, a storage backend, ...).
pub type BoxError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Errors shared by every stage.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A distribution that cannot be sampled (empty range, log range touching 0, ...).
    #[error("invalid distribution for parameter `{name}`: {reason}")]
    InvalidDistribution {
        /// Parameter name.
        name: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A parameter was suggested twice in one trial with different distributions.
    #[error("parameter `{name}` was already suggested in this trial with another distribution")]
    ParamConflict {
        /// Parameter name.
        name: String,
    },
    /// A hyper-parameter value out of its valid range, caught before any work starts.
    #[error("invalid hyper-parameter `{name}`: {reason}")]
    InvalidParameter {
        /// Parameter name.
        name: String,
        /// Why the value is refused.
        reason: String,
    },
    /// A parameter a configuration needs is missing from a trial's parameters.
    #[error("missing parameter `{name}`")]
    MissingParameter {
        /// Parameter name.
        name: String,
    },
    /// Input of the wrong shape or content (feature count, empty data, NaN, ...).
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// A study name that the storage does not know.
    #[error("unknown study `{0}`")]
    UnknownStudy(String),
    /// A study name that is already taken.
    #[error("study `{0}` already exists")]
    StudyExists(String),
    /// A trial number that the study does not know.
    #[error("study `{study}` has no trial {number}")]
    UnknownTrial {
        /// Study name.
        study: String,
        /// Trial number.
        number: u64,
    },
    /// A trial state change that is not allowed (finishing a finished trial, ...).
    #[error("trial {number} cannot go from {from:?} to {to:?}")]
    IllegalTransition {
        /// Trial number.
        number: u64,
        /// Current state.
        from: TrialState,
        /// Requested state.
        to: TrialState,
    },
    /// The trial was pruned at `step`: training stopped on the pruner's advice.
    #[error("trial pruned at step {step}")]
    Pruned {
        /// Last reported step.
        step: u64,
    },
    /// An error raised inside a stage implementation.
    #[error(transparent)]
    Stage(BoxError),
}

impl Error {
    /// Wraps any error from a stage implementation.
    pub fn stage(error: impl Into<BoxError>) -> Self {
        Error::Stage(error.into())
    }
}

/// `Result` with lepton-core's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
