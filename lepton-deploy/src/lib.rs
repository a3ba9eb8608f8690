//! Lepton's deployment stage: self-describing, checksummed model artifacts
//! (`docs/artifact-format.md`), a registry of numbered versions with aliases, promotion and
//! rollback, and a deployer built on it.

mod artifact;
mod error;
mod fingerprint;
mod local_registry;
mod registry;

pub use artifact::{FORMAT_VERSION, Manifest, ModelArtifact};
pub use error::{DeployError, Result};
pub use fingerprint::fingerprint;
pub use local_registry::{LocalRegistry, LocalRegistryDeployer};
pub use registry::{PRODUCTION, Registry, STAGING, check_name};
