//! lepton-deploy's error type.

/// What can go wrong while saving, loading or deploying an artifact.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DeployError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The manifest is not valid JSON of the expected shape.
    #[error("{path}: invalid manifest: {message}")]
    Manifest {
        /// The manifest file.
        path: String,
        /// What the parser said.
        message: String,
    },
    /// The artifact was written by a newer or unknown format.
    #[error("artifact format {found} is not supported (this build reads format {supported})")]
    UnsupportedFormat {
        /// The artifact's format version.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// The artifact was written in a format without a manifest checksum (1 or 2), so an edited
    /// manifest could not be told from the original.
    #[error(
        "artifact format {found} has no manifest checksum, so an edited manifest would go \
         unnoticed: it is refused. Re-export the model with this build (format {supported}), or, \
         if you vouch for it, register it again with `lepton model register --upgrade` \
         (`ModelArtifact::upgrade` in code)"
    )]
    LegacyFormat {
        /// The artifact's format version.
        found: u32,
        /// The version this build reads.
        supported: u32,
    },
    /// A file of an artifact is larger than this build reads (it is refused unread).
    #[error("{path}: {size} bytes is more than the {limit} read from an artifact file")]
    TooLarge {
        /// The file.
        path: String,
        /// Its size in bytes (at least).
        size: u64,
        /// The most this build reads.
        limit: u64,
    },
    /// A file's content does not match the checksum the manifest records.
    #[error("{file}: checksum mismatch (manifest {expected}, file {found}): tampered or truncated")]
    Checksum {
        /// The file.
        file: String,
        /// SHA-256 in the manifest.
        expected: String,
        /// SHA-256 of the file.
        found: String,
    },
    /// A model or alias name that is not allowed.
    #[error(
        "invalid name `{0}`: use 1 to 64 letters, digits, `-` or `_` (an alias cannot be a \
         number, `vN` or `latest`)"
    )]
    InvalidName(String),
    /// A model has no such version (or alias).
    #[error("model `{name}` has no version `{version}`")]
    UnknownVersion {
        /// The model.
        name: String,
        /// The version number or alias asked for.
        version: String,
    },
    /// An alias has no earlier version to go back to.
    #[error("alias `{alias}` of model `{name}` has no earlier version that loads")]
    NothingToRollBack {
        /// The model.
        name: String,
        /// The alias.
        alias: String,
    },
    /// An alias no longer points where an operation started from (another writer moved it).
    #[error("alias `{alias}` of model `{name}` moved from v{expected} to {found:?}")]
    AliasMoved {
        /// The model.
        name: String,
        /// The alias.
        alias: String,
        /// The version it pointed at when the operation started.
        expected: u64,
        /// The version it points at now, if any.
        found: Option<u64>,
    },
    /// A version was not removed: an alias points at it, or it is the latest.
    #[error("version {version} of model `{name}` is not removed: {why}")]
    Kept {
        /// The model.
        name: String,
        /// The version.
        version: u64,
        /// Why it stays.
        why: String,
    },
    /// A prediction server did not do what a deployment asked.
    #[error("{url}: {message}")]
    Server {
        /// The server's URL.
        url: String,
        /// What went wrong.
        message: String,
    },
    /// A lepton-core error.
    #[error(transparent)]
    Core(#[from] lepton_core::Error),
}

impl From<DeployError> for lepton_core::Error {
    fn from(e: DeployError) -> Self {
        match e {
            DeployError::Core(core) => core,
            other => lepton_core::Error::stage(other),
        }
    }
}

/// `Result` with [`DeployError`].
pub type Result<T, E = DeployError> = std::result::Result<T, E>;
