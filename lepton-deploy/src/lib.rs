//! Lepton's deployment stage: self-describing, checksummed model artifacts
//! (`docs/artifact-format.md`), a registry of numbered versions with aliases, promotion and
//! rollback, a deployer built on it, and an HTTP prediction server ([`server`], behind the
//! default `server` feature: without it the crate saves, loads and registers artifacts only).

mod artifact;
mod error;
mod fingerprint;
#[cfg(feature = "server")]
mod http_deployer;
mod labelled;
mod local_registry;
mod registry;
mod servable;
#[cfg(feature = "server")]
pub mod server;

pub use artifact::{FORMAT_VERSION, Manifest, ModelArtifact};
pub use error::{DeployError, Result};
pub use fingerprint::fingerprint;
#[cfg(feature = "server")]
pub use http_deployer::HttpServerDeployer;
pub use labelled::Examples;
pub use local_registry::{LocalRegistry, LocalRegistryDeployer};
pub use registry::{PRODUCTION, Registry, STAGING, check_name, name_from};
pub use servable::{Cell, Inputs, ModelLoader, Servable, Tuning, encode_numbers};
#[cfg(feature = "server")]
pub use server::{BODY_MEMORY_FACTOR, Batching, OnlineLearning, Server, ServerConfig};
