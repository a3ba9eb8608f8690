//! Lepton's deployment stage: self-describing, checksummed model artifacts
//! (`docs/artifact-format.md`), a registry of numbered versions with aliases, promotion and
//! rollback, a deployer built on it, and an HTTP prediction server ([`server`], behind the
//! default `server` feature: without it the crate saves, loads and registers artifacts only).
//!
//! An artifact registered, promoted to production and read back:
//!
//! ```
//! use std::collections::BTreeMap;
//!
//! use lepton_core::{Schema, Task};
//! use lepton_deploy::{LocalRegistry, ModelArtifact, PRODUCTION, Registry};
//!
//! let schema = Schema {
//!     features: vec!["temperature".into()],
//!     target: "demand".into(),
//!     task: Task::Regression,
//! };
//! // A family's own configuration, preprocessing and weights, as it serializes them.
//! let config = serde_json::json!({ "slope": 2.5 });
//! let metrics = BTreeMap::from([("valid_rmse".to_owned(), 0.8)]);
//! let artifact = ModelArtifact::new("my-family", &config, &(), schema, metrics, vec![7; 16])?;
//!
//! let root = tempfile::tempdir()?;
//! let registry = LocalRegistry::new(root.path());
//! let version = registry.register("demand", &artifact)?;
//! registry.promote("demand", version, PRODUCTION)?;
//! assert_eq!(registry.resolve("demand", PRODUCTION)?, version);
//! let loaded = registry.get("demand", version)?;
//! assert_eq!(loaded.manifest().model_config, config);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

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
