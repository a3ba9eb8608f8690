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

mod context;
mod dataset;
mod deployer;
mod error;
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

pub use context::{DetachedContext, TrialContext};
pub use dataset::{Dataset, Schema, Target, Task};
pub use deployer::{Deployer, Deployment};
pub use error::{Error, Result};
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
pub use trial::{Direction, FrozenTrial, Trial, TrialState, scoped_params};
