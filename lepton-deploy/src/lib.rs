//! Lepton's deployment stage: self-describing, checksummed model artifacts
//! (`docs/artifact-format.md`), a registry of numbered versions with aliases, promotion and
//! rollback, a deployer built on it, and an HTTP prediction server ([`server`]).

mod artifact;
mod error;
mod fingerprint;
mod http_deployer;
mod labelled;
mod local_registry;
mod registry;
mod servable;
pub mod server;

pub use artifact::{FORMAT_VERSION, Manifest, ModelArtifact};
pub use error::{DeployError, Result};
pub use fingerprint::fingerprint;
pub use http_deployer::HttpServerDeployer;
pub use labelled::Examples;
pub use local_registry::{LocalRegistry, LocalRegistryDeployer};
pub use registry::{PRODUCTION, Registry, STAGING, check_name, name_from};
pub use servable::{Cell, ModelLoader, Servable, Tuning, encode_numbers};
pub use server::{BODY_MEMORY_FACTOR, Batching, OnlineLearning, Server, ServerConfig};
