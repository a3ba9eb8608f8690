//! A deployer onto the local file system: numbered versions per model name, a live pointer,
//! and rollback.

use std::path::{Path, PathBuf};

use lepton_core::{Deployer, Deployment};

use crate::artifact::{ModelArtifact, io, write_atomic};
use crate::error::{DeployError, Result};

const LIVE: &str = "LIVE";

/// Deploys artifacts into `root/NAME/vN/` and records the live version in `root/NAME/LIVE`.
/// Every deployed artifact is verified (format, checksums) before it becomes live, and the
/// live pointer is replaced atomically.
#[derive(Debug, Clone)]
pub struct LocalRegistryDeployer {
    root: PathBuf,
}

impl LocalRegistryDeployer {
    /// A registry rooted at `root` (created on first deploy).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalRegistryDeployer { root: root.into() }
    }

    /// The versions of `name` in the registry, ascending.
    pub fn versions(&self, name: &str) -> Result<Vec<u64>> {
        let dir = self.model_dir(name)?;
        let mut versions = Vec::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(versions),
            Err(e) => return Err(io(&dir, e)),
        };
        for entry in entries {
            let entry = entry.map_err(|e| io(&dir, e))?;
            if let Some(v) = entry
                .file_name()
                .to_str()
                .and_then(|n| n.strip_prefix('v'))
                .and_then(|n| n.parse().ok())
            {
                versions.push(v);
            }
        }
        versions.sort_unstable();
        Ok(versions)
    }

    /// The live version of `name`, if any.
    pub fn live_version(&self, name: &str) -> Result<Option<u64>> {
        let path = self.model_dir(name)?.join(LIVE);
        match std::fs::read_to_string(&path) {
            Ok(text) => text
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| DeployError::Manifest {
                    path: path.display().to_string(),
                    message: format!("`{}` is not a version number", text.trim()),
                }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path, e)),
        }
    }

    /// Loads the live artifact of `name`, verified.
    pub fn load_live(&self, name: &str) -> Result<ModelArtifact> {
        let version = self.live_version(name)?.ok_or_else(|| {
            lepton_core::Error::InvalidInput(format!("`{name}` has no live version"))
        })?;
        ModelArtifact::load(self.version_dir(name, version)?)
    }

    fn model_dir(&self, name: &str) -> Result<PathBuf> {
        let ok = !name.is_empty()
            && name.len() <= 64
            && name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if !ok {
            return Err(DeployError::InvalidName(name.to_owned()));
        }
        Ok(self.root.join(name))
    }

    fn version_dir(&self, name: &str, version: u64) -> Result<PathBuf> {
        Ok(self.model_dir(name)?.join(format!("v{version}")))
    }

    fn set_live(&self, name: &str, version: u64) -> Result<Deployment> {
        let dir = self.version_dir(name, version)?;
        write_atomic(
            &self.model_dir(name)?.join(LIVE),
            version.to_string().as_bytes(),
        )?;
        tracing::info!(name, version, "deployed");
        Ok(Deployment {
            name: name.to_owned(),
            version,
            address: dir.display().to_string(),
        })
    }

    fn deploy_checked(&self, name: &str, artifact_dir: &Path) -> Result<Deployment> {
        let artifact = ModelArtifact::load(artifact_dir)?;
        let model_dir = self.model_dir(name)?;
        std::fs::create_dir_all(&model_dir).map_err(|e| io(&model_dir, e))?;
        // Claim the next version number by creating its directory: `create_dir` fails if a
        // concurrent deployer took it first, and then we try the next one.
        let mut version = self.versions(name)?.last().map_or(1, |v| v + 1);
        let dir = loop {
            let dir = self.version_dir(name, version)?;
            match std::fs::create_dir(&dir) {
                Ok(()) => break dir,
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => version += 1,
                Err(e) => return Err(io(&dir, e)),
            }
        };
        artifact.save(&dir)?;
        self.set_live(name, version)
    }

    fn rollback_checked(&self, name: &str) -> Result<Deployment> {
        let live = self.live_version(name)?;
        let previous = self
            .versions(name)?
            .into_iter()
            .filter(|v| live.is_none_or(|l| *v < l))
            .rev()
            .find(|v| {
                self.version_dir(name, *v)
                    .is_ok_and(|d| ModelArtifact::load(d).is_ok())
            })
            .ok_or_else(|| {
                lepton_core::Error::InvalidInput(format!(
                    "`{name}` has no valid version before {live:?} to roll back to"
                ))
            })?;
        self.set_live(name, previous)
    }
}

impl Deployer for LocalRegistryDeployer {
    fn deploy(&self, name: &str, artifact_dir: &Path) -> lepton_core::Result<Deployment> {
        Ok(self.deploy_checked(name, artifact_dir)?)
    }

    fn rollback(&self, name: &str) -> lepton_core::Result<Deployment> {
        Ok(self.rollback_checked(name)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lepton_core::{Schema, Task};
    use std::collections::BTreeMap;

    fn saved(dir: &Path, weights: Vec<u8>) {
        let schema = Schema {
            features: vec!["x".into()],
            target: "y".into(),
            task: Task::Regression,
        };
        ModelArtifact::new("f", &1, &2, schema, BTreeMap::new(), weights)
            .unwrap()
            .save(dir)
            .unwrap();
    }

    #[test]
    fn deploys_versions_and_rolls_back() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        saved(&a, vec![1]);
        saved(&b, vec![2]);
        let reg = LocalRegistryDeployer::new(tmp.path().join("registry"));
        assert_eq!(reg.live_version("wine").unwrap(), None);
        assert_eq!(reg.deploy("wine", &a).unwrap().version, 1);
        assert_eq!(reg.deploy("wine", &b).unwrap().version, 2);
        assert_eq!(reg.load_live("wine").unwrap().weights(), &[2]);
        assert_eq!(reg.rollback("wine").unwrap().version, 1);
        assert_eq!(reg.load_live("wine").unwrap().weights(), &[1]);
        assert!(reg.rollback("wine").is_err());
        assert_eq!(reg.versions("wine").unwrap(), vec![1, 2]);
    }

    #[test]
    fn refuses_bad_names_and_bad_artifacts() {
        let tmp = tempfile::tempdir().unwrap();
        let reg = LocalRegistryDeployer::new(tmp.path());
        let a = tmp.path().join("a");
        saved(&a, vec![1]);
        for name in ["", "../evil", "a/b", "x y"] {
            assert!(reg.deploy(name, &a).is_err(), "{name}");
        }
        std::fs::write(a.join("weights.bpk"), [9]).unwrap();
        assert!(reg.deploy("m", &a).is_err());
        assert_eq!(reg.live_version("m").unwrap(), None);
    }

    #[test]
    fn rollback_skips_a_corrupted_version() {
        let tmp = tempfile::tempdir().unwrap();
        let reg = LocalRegistryDeployer::new(tmp.path().join("r"));
        for w in 1..=3u8 {
            let d = tmp.path().join(format!("a{w}"));
            saved(&d, vec![w]);
            reg.deploy("m", &d).unwrap();
        }
        std::fs::write(tmp.path().join("r/m/v2/weights.bpk"), [0]).unwrap();
        assert_eq!(reg.rollback("m").unwrap().version, 1);
    }
}
