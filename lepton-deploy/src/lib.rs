//! Lepton's deployment stage: self-describing, checksummed model artifacts, and a local
//! registry that deploys them as numbered versions with rollback.

mod artifact;
mod error;
mod local_registry;

pub use artifact::{FORMAT_VERSION, Manifest, ModelArtifact};
pub use error::{DeployError, Result};
pub use local_registry::LocalRegistryDeployer;
