//! Lepton: embeddable AutoML for Rust.
//!
//! This facade re-exports the stage crates and ties them together where they meet:
//! [`AutoMl`] searches model families (any [`ModelFamily`], yours included) on a raw table or
//! a dataset, refits the winner and returns a [`Predictor`]: a fitted preprocessor plus a
//! fitted model, saved as one [`ModelArtifact`](lepton_deploy::ModelArtifact) and loaded
//! back for serving.
//!
//! | crate | stage |
//! |---|---|
//! | [`core`] | the traits and vocabulary |
//! | [`data`] | loading, scaling, splitting |
//! | [`search`] | samplers, studies, storages |
//! | [`models`] | burn models and training |
//! | [`deploy`] | artifacts and deployment |
//!
//! A search over an MLP's hyper-parameters on wine (the README's example):
//!
//! ```
//! use lepton::prelude::*;
//!
//! let wine = datasets::wine()?;
//! let (train, valid) = stratified_split(&wine, 0.25, 0)?;
//! let scaler = StandardScaler.fit(&train)?; // fitted on training rows only
//! let (train_s, valid_s) = (scaler.transform(&train)?, scaler.transform(&valid)?);
//!
//! let study = Study::builder("wine").with_direction(Direction::Maximize).build()?;
//! study.optimize(10, |trial| {
//!     MlpSpace.suggest(trial)?;                               // lr, width, depth, dropout, batch
//!     let config = MlpConfig::default().with_params(trial.params())?;
//!     let fitted = MlpClassifier::<Cpu>::new(config)?.train(&train_s, &valid_s, trial)?;
//!     Ok(fitted.summary().best_valid_score.unwrap_or(0.0)) // reported per epoch to the trial
//! })?;
//! let best = study.best_trial()?.ok_or("no complete trial")?;
//! assert!(best.value.unwrap_or(0.0) > 0.9);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub use lepton_core as core;
pub use lepton_data as data;
pub use lepton_deploy as deploy;
pub use lepton_models as models;
pub use lepton_report as report;
pub use lepton_search as search;

mod automl;
mod builtin_family;
mod ensemble;
mod ensemble_selection;
mod error;
mod family;
mod fitted_model;
mod importance;
mod leaderboard;
pub mod logging;
mod metric;
mod out_of_fold;
mod predictor;
mod scores;
mod serving;
#[cfg(feature = "serve")]
mod studies_view;
mod table_fit;
mod text_family;
mod text_fit;
mod text_predictor;

pub use automl::{
    AutoMl, AutoMlRun, CV_CELLS_PER_SECOND, CV_MAX_ROWS, Observer, Quiet, TRAIN_SECONDS_PER_ROW,
    TrialBudgets, VALID_SECONDS_PER_ROW, Validation, attr,
};
pub use builtin_family::Family;
pub use ensemble::{ENSEMBLE, Ensemble};
pub use ensemble_selection::{
    SELECTION_ROUNDS, Selection, select_ensemble, select_ensemble_within,
};
pub use error::{Error, Result};
pub use family::{Fitted, ModelFamily, TrainRequest};
pub use fitted_model::FittedModel;
pub use importance::{FeatureImportance, IMPORTANCE_REPEATS};
pub use leaderboard::leaderboard_text;
pub use metric::{Metric, named_scores};
pub use predictor::Predictor;
pub use scores::{Scores, evaluate, score_predictions};
pub use serving::ArtifactLoader;
#[cfg(feature = "serve")]
pub use studies_view::studies_view;
pub use text_family::{FittedText, TextFamily, TextFamilyKind, TextTrainRequest};
pub use text_fit::TextRun;
pub use text_predictor::{LABEL_COLUMN, TEXT_COLUMN, TextPredictor};

/// The types most programs use.
pub mod prelude {
    pub use crate::{
        AutoMl, Error as LeptonError, Family, FittedModel, Metric, Predictor, Validation,
    };
    pub use lepton_core::{
        Dataset, Deployer, DetachedContext, Direction, Distribution, Features, Model, ParamValue,
        Predict, Prediction, Scale, SearchSpace, Trial, TrialContext, TrialState,
    };
    pub use lepton_data::{
        CsvLoader, Preprocessor, StandardScaler, Table, TabularDataset, TargetKind, datasets,
        stratified_kfold, stratified_split,
    };
    pub use lepton_deploy::{LocalRegistryDeployer, ModelArtifact};
    pub use lepton_models::{Cpu, MlpClassifier, MlpConfig, MlpRegressor, MlpSpace, TrainingRun};
    pub use lepton_search::{InMemoryStorage, RandomSampler, Study};
}
