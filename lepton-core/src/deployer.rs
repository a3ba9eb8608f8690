//! The deployer stage: takes a saved model artifact to a running target.

use serde::{Deserialize, Serialize};
use std::path::Path;

use crate::error::Result;

/// Where a deployment ended up.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deployment {
    /// The deployed model's name.
    pub name: String,
    /// The version now live.
    pub version: u64,
    /// Where to reach it (a directory, a URL).
    pub address: String,
}

/// Takes the artifact saved in a directory live under a name, and can roll back to the
/// version live before.
///
/// A deployer that only counts versions:
///
/// ```
/// use std::{path::Path, sync::Mutex};
/// use lepton_core::{Deployer, Deployment, Error, Result};
///
/// #[derive(Default)]
/// struct Counting(Mutex<u64>);
///
/// impl Deployer for Counting {
///     fn deploy(&self, name: &str, _: &Path) -> Result<Deployment> {
///         let mut v = self.0.lock().unwrap();
///         *v += 1;
///         Ok(Deployment { name: name.into(), version: *v, address: "memory".into() })
///     }
///     fn rollback(&self, name: &str) -> Result<Deployment> {
///         let mut v = self.0.lock().unwrap();
///         if *v < 2 {
///             return Err(Error::InvalidInput("nothing to roll back to".into()));
///         }
///         *v -= 1;
///         Ok(Deployment { name: name.into(), version: *v, address: "memory".into() })
///     }
/// }
///
/// let d = Counting::default();
/// d.deploy("wine", Path::new("artifact"))?;
/// assert_eq!(d.deploy("wine", Path::new("artifact"))?.version, 2);
/// assert_eq!(d.rollback("wine")?.version, 1);
/// # Ok::<(), lepton_core::Error>(())
/// ```
pub trait Deployer {
    /// Makes the artifact in `artifact_dir` the live version of `name`.
    fn deploy(&self, name: &str, artifact_dir: &Path) -> Result<Deployment>;
    /// Makes the previously live version of `name` live again.
    fn rollback(&self, name: &str) -> Result<Deployment>;
}
