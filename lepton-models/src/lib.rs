//! Lepton's model stage: burn networks behind the core `Model` / `Predict` traits.
//!
//! The backend is a type parameter ([`Cpu`] by default; [`Wgpu`], [`Cuda`] and the deprecated
//! [`NdArray`] with their Cargo features), turned into a burn `Device` inside:
//!
//! ```no_run
//! use lepton_core::{DetachedContext, Model};
//! use lepton_data::{datasets, stratified_split};
//! use lepton_models::{Cpu, MlpClassifier, MlpConfig};
//!
//! let wine = datasets::wine()?;
//! let (train, valid) = stratified_split(&wine, 0.2, 0)?;
//! let model = MlpClassifier::<Cpu>::new(MlpConfig::default())?;
//! let fitted = model.fit(&train, &valid, &mut DetachedContext::new())?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod backend;
pub mod batch;
mod bins;
mod boosted;
mod burnpack;
pub mod checkpoint;
mod cnn;
mod cnn_net;
mod cnn_space;
mod error;
mod fitted_cnn;
mod fitted_mlp;
mod forest;
mod head;
mod linear_space;
pub mod metrics;
mod mlp;
mod mlp_net;
mod mlp_space;
mod net;
mod optimizer;
mod param;
mod predict;
mod rows;
mod sparse_classifier;
mod sparse_linear;
mod sparse_logistic;
mod sparse_svm;
mod text_linear;
mod training;
mod training_run;
mod training_summary;

#[cfg(feature = "cuda")]
pub use backend::Cuda;
#[cfg(feature = "ndarray")]
pub use backend::NdArray;
#[cfg(feature = "wgpu")]
pub use backend::Wgpu;
pub use backend::{Backend, Cpu};
pub use boosted::{BoostedConfig, BoostedModel, BoostedSpace, FittedBoosted};
pub use cnn::CnnClassifier;
pub use cnn_net::CnnConfig;
pub use cnn_space::CnnSpace;
pub use error::{ModelError, Result};
pub use fitted_cnn::FittedCnn;
pub use fitted_mlp::{FineTuning, FittedMlp};
pub use forest::{FittedForest, ForestConfig, ForestModel, ForestSpace, ForestSplit};
pub use head::Head;
pub use linear_space::LinearSpace;
pub use mlp::{MlpClassifier, MlpRegressor};
pub use mlp_net::{MlpActivation, MlpConfig};
pub use mlp_space::MlpSpace;
pub use optimizer::{Optimizer, OptimizerKind, Schedule};
pub use sparse_classifier::SparseClassifier;
pub use sparse_linear::FittedSparseLinear;
pub use sparse_logistic::SparseLogistic;
pub use sparse_svm::SparseLinearSvm;
pub use text_linear::{FittedTextLinear, TextLinearConfig, TextLinearSpace};
pub use training_run::{RunOptions, TrainingRun};
pub use training_summary::TrainingSummary;
