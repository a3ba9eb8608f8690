//! Lepton's shared vocabulary.
//!
//! The traits here are the stages of an AutoML run; each can be swapped for a user's own type:
//!
//! | trait | role |
//! |---|---|
//! | [`Dataset`] | indexed samples with a known schema |
//! | [`Model`] / [`Predict`] | a configured estimator that fits into a predictor |
//! | [`TrialContext`] | how training reports progress and learns it should stop |
//! | [`SearchSpace`] | the parameters a trial suggests, with typed [`Distribution`]s |
//! | [`Sampler`] | proposes parameter values from a read-only [`History`] |
//! | [`Pruner`] | stops unpromising trials early |
//! | [`Storage`] | the study's source of truth |
//! | [`Deployer`] | takes an artifact to a running target |
//!
//! This crate has no tensor, SQL or async dependency: implementing a stage costs nothing.
//!
//! A pruner of one's own, judged on a history of two finished trials and a running one:
//!
//! ```
//! use lepton_core::{Direction, FrozenTrial, History, Pruner, TrialState};
//!
//! /// Stops a trial whose last report is more than twice the best final value (a loss).
//! struct TwiceTheBest;
//!
//! impl Pruner for TwiceTheBest {
//!     fn should_prune(&self, history: &History, trial: &FrozenTrial) -> bool {
//!         let best = history.best().and_then(|t| t.value);
//!         matches!((best, trial.last_step()), (Some(b), Some((_, v))) if v > 2.0 * b)
//!     }
//! }
//!
//! let finished = |number, loss| FrozenTrial {
//!     state: TrialState::Complete,
//!     value: Some(loss),
//!     ..FrozenTrial::new(number)
//! };
//! let history = History::new(Direction::Minimize, vec![finished(0, 0.4), finished(1, 0.3)]);
//! let mut running = FrozenTrial::new(2);
//! running.intermediate_values.insert(1, 0.5);
//! assert!(!TwiceTheBest.should_prune(&history, &running));
//! running.intermediate_values.insert(2, 0.7);
//! assert!(TwiceTheBest.should_prune(&history, &running));
//! ```

mod context;
mod dataset;
mod deployer;
mod direction;
mod error;
mod frozen_trial;
mod history;
mod model;
mod name;
mod param;
mod pruner;
mod sampler;
mod space;
mod storage;
mod subset;
mod trial;
mod trial_state;

pub use context::{DetachedContext, TrialContext};
pub use dataset::{Dataset, Schema, Target, Task};
pub use deployer::{Deployer, Deployment};
pub use direction::Direction;
pub use error::{Error, Result};
pub use frozen_trial::FrozenTrial;
pub use history::History;
pub use model::{Features, Model, Predict, Prediction};
pub use name::ParamName;
pub use param::{Distribution, ParamValue, Scale};
pub use pruner::{NopPruner, Pruner};
pub use sampler::{JointSample, Sampler};
pub use space::{DeclaredSpace, SearchSpace};
pub use storage::{
    RETRIES_ATTR, RETRY_OF_ATTR, STALE_ATTR, Storage, check_finish, check_param, check_report,
};
pub use subset::Subset;
pub use trial::{Trial, scoped_params};
pub use trial_state::TrialState;
