//! The facade's error: any stage's error.

/// An error from any of Lepton's stages.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// From lepton-core (search, parameters, shapes).
    #[error(transparent)]
    Core(#[from] lepton_core::Error),
    /// From lepton-data (loading, scaling, splitting).
    #[error(transparent)]
    Data(#[from] lepton_data::DataError),
    /// From lepton-models (training, weights).
    #[error(transparent)]
    Model(#[from] lepton_models::ModelError),
    /// From lepton-deploy (artifacts, registry).
    #[error(transparent)]
    Deploy(#[from] lepton_deploy::DeployError),
    /// An artifact that does not hold what this predictor expects.
    #[error("incompatible artifact: {0}")]
    IncompatibleArtifact(String),
}

/// `Result` with the facade's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;
