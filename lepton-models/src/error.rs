//! lepton-models' error type.

/// What can go wrong while configuring, training or restoring a model.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ModelError {
    /// Training diverged: the loss became NaN or infinite.
    #[error("training diverged at epoch {epoch}: loss is {loss}")]
    Diverged {
        /// The epoch where it happened.
        epoch: usize,
        /// The non-finite loss.
        loss: f64,
    },
    /// Data the model cannot use (wrong feature count, no classes, empty training set).
    #[error("invalid data: {0}")]
    InvalidData(String),
    /// Saved weights that do not fit the configured network.
    #[error("cannot restore weights: {0}")]
    Weights(String),
    /// A device of a data-parallel run that failed (one that does not exist, say).
    #[error("training device: {0}")]
    Device(String),
    /// A training checkpoint that cannot be written or read back.
    #[error("checkpoint: {0}")]
    Checkpoint(String),
    /// A lepton-core error (bad hyper-parameters, pruning, ...).
    #[error(transparent)]
    Core(#[from] lepton_core::Error),
}

impl From<ModelError> for lepton_core::Error {
    fn from(e: ModelError) -> Self {
        match e {
            ModelError::Core(core) => core,
            other => lepton_core::Error::stage(other),
        }
    }
}

/// `Result` with [`ModelError`].
pub type Result<T, E = ModelError> = std::result::Result<T, E>;
