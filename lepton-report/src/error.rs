//! What can go wrong while a report is made.

/// A report that could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// plotters refused to draw a plot.
    #[error("cannot draw the {plot} plot: {message}")]
    Plot {
        /// Which plot.
        plot: &'static str,
        /// plotters' message.
        message: String,
    },
    /// A trial attribute the report reads is not in its documented format.
    #[error("trial {number}: attribute `{key}` is malformed: {message}")]
    Attribute {
        /// The trial.
        number: u64,
        /// The attribute.
        key: &'static str,
        /// What is wrong with it.
        message: String,
    },
}

/// `Result` with [`ReportError`].
pub type Result<T, E = ReportError> = std::result::Result<T, E>;
