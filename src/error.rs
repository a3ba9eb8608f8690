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

/// Into the core error, so that `?` works in a study's objective: the core error itself where
/// a stage wrapped one (a pruned trial stays `Pruned`), any other as a stage error.
impl From<Error> for lepton_core::Error {
    fn from(e: Error) -> Self {
        match e {
            Error::Core(core) => core,
            Error::Data(data) => data.into(),
            Error::Model(model) => model.into(),
            Error::Deploy(deploy) => deploy.into(),
            other => lepton_core::Error::stage(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn question_marks_into_the_core_error_keep_its_variants() {
        fn facade() -> Result<()> {
            Err(Error::Model(lepton_models::ModelError::Core(
                lepton_core::Error::Pruned { step: 3 },
            )))
        }
        fn objective() -> lepton_core::Result<()> {
            facade()?;
            Ok(())
        }
        assert!(matches!(
            objective(),
            Err(lepton_core::Error::Pruned { step: 3 })
        ));
        let e: lepton_core::Error = Error::IncompatibleArtifact("no head".into()).into();
        assert!(matches!(e, lepton_core::Error::Stage(_)), "{e:?}");
        assert_eq!(e.to_string(), "incompatible artifact: no head");
    }
}
