//! lepton-data's error type.

/// Everything that can go wrong while loading, scaling or splitting data. Errors about a file
/// name it, and the line and column where that applies.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DataError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The CSV reader failed (not UTF-8, broken quoting, ...).
    #[error("{path}, line {line}: {message}")]
    Csv {
        /// The file.
        path: String,
        /// 1-based line number.
        line: u64,
        /// What the reader said.
        message: String,
    },
    /// The file has no header or no data rows.
    #[error("{path}: {what}")]
    Empty {
        /// The file.
        path: String,
        /// What is missing.
        what: &'static str,
    },
    /// A row has a different number of fields than the header.
    #[error("{path}, line {line}: expected {expected} fields as in the header, found {found}")]
    RaggedRow {
        /// The file.
        path: String,
        /// 1-based line number.
        line: u64,
        /// Fields in the header.
        expected: usize,
        /// Fields in this row.
        found: usize,
    },
    /// A value in a numeric column that is not a number.
    #[error("{path}, line {line}, column `{column}`: `{value}` is not a number")]
    NotNumeric {
        /// The file.
        path: String,
        /// 1-based line number.
        line: u64,
        /// Column name.
        column: String,
        /// The offending text.
        value: String,
    },
    /// A missing value where one is required.
    #[error("{path}, line {line}, column `{column}`: missing value")]
    MissingValue {
        /// The file.
        path: String,
        /// 1-based line number.
        line: u64,
        /// Column name.
        column: String,
    },
    /// NaN or infinity in a feature.
    #[error("{path}, line {line}, column `{column}`: value `{value}` is not finite")]
    NonFinite {
        /// The file.
        path: String,
        /// 1-based line number.
        line: u64,
        /// Column name.
        column: String,
        /// The offending text.
        value: String,
    },
    /// The target column is not in the header.
    #[error("{path}: no target column `{column}` (columns: {available})")]
    MissingTarget {
        /// The file.
        path: String,
        /// The requested column.
        column: String,
        /// The header's columns, comma-separated.
        available: String,
    },
    /// An IDX file whose header or content is wrong.
    #[error("{path}: {message}")]
    Idx {
        /// The file.
        path: String,
        /// What is wrong.
        message: String,
    },
    /// A file whose SHA-256 is not the published one.
    #[error("{path}: SHA-256 {found} is not the expected {expected}")]
    Checksum {
        /// The file.
        path: String,
        /// The published digest.
        expected: String,
        /// The file's digest.
        found: String,
    },
    /// A file that could not be downloaded, or not as published.
    #[error("{name}: {reason}")]
    Download {
        /// The file or its address.
        name: String,
        /// Why, mirror by mirror.
        reason: String,
    },
    /// A data set whose files are not on this machine.
    #[error("{name} not found: {hint}")]
    DatasetMissing {
        /// The data set.
        name: String,
        /// Where it was looked for and how to provide it.
        hint: String,
    },
    /// A class with too few samples to be split between both sides.
    #[error("cannot stratify: class `{class}` has {count} sample(s), at least 2 are needed")]
    CannotStratify {
        /// The class label.
        class: String,
        /// Its sample count.
        count: usize,
    },
    /// Data of the wrong shape or kind for the operation.
    #[error("invalid input: {0}")]
    InvalidInput(String),
    /// An error from lepton-core.
    #[error(transparent)]
    Core(#[from] lepton_core::Error),
}

impl From<DataError> for lepton_core::Error {
    fn from(e: DataError) -> Self {
        match e {
            DataError::Core(core) => core,
            other => lepton_core::Error::stage(other),
        }
    }
}

/// `Result` with [`DataError`].
pub type Result<T, E = DataError> = std::result::Result<T, E>;
