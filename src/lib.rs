//! Lepton: embeddable AutoML for Rust.
//!
//! This facade re-exports the stage crates and ties them together where they meet: a
//! [`TabularPredictor`] is a fitted preprocessor plus a fitted model, saved as one
//! [`ModelArtifact`](lepton_deploy::ModelArtifact) and loaded back for serving.
//!
//! | crate | stage |
//! |---|---|
//! | [`core`] | the traits and vocabulary |
//! | [`data`] | loading, scaling, splitting |
//! | [`search`] | samplers, studies, storages |
//! | [`models`] | burn models and training |
//! | [`deploy`] | artifacts and deployment |

pub use lepton_core as core;
pub use lepton_data as data;
pub use lepton_deploy as deploy;
pub use lepton_models as models;
pub use lepton_search as search;

mod error;
mod predictor;

pub use error::{Error, Result};
pub use predictor::TabularPredictor;

/// The types most programs use.
pub mod prelude {
    pub use crate::{Error as LeptonError, TabularPredictor};
    pub use lepton_core::{
        Dataset, Deployer, DetachedContext, Direction, Distribution, Features, Model, ParamValue,
        Predict, Prediction, Scale, SearchSpace, Trial, TrialContext, TrialState,
    };
    pub use lepton_data::{
        CsvLoader, StandardScaler, TabularDataset, datasets, stratified_kfold, stratified_split,
    };
    pub use lepton_deploy::{LocalRegistryDeployer, ModelArtifact};
    pub use lepton_models::{Cpu, MlpClassifier, MlpConfig, MlpSpace};
    pub use lepton_search::{InMemoryStorage, RandomSampler, Study};
}
