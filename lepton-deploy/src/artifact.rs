//! The model artifact: everything needed to serve a model, in one directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use lepton_core::Schema;

use crate::error::{DeployError, Result};

/// The artifact format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

const MANIFEST: &str = "manifest.json";
const WEIGHTS: &str = "weights.bpk";

/// The description of an artifact, stored as `manifest.json` next to the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Artifact format version ([`FORMAT_VERSION`] when written by this build).
    pub format_version: u32,
    /// The Lepton version that wrote it.
    pub lepton_version: String,
    /// Which model family the weights belong to (e.g. `mlp-classifier`).
    pub model_family: String,
    /// The model's configuration, as its family serialises it.
    pub model_config: serde_json::Value,
    /// The fitted preprocessor, applied to raw rows before the model.
    pub preprocessor: serde_json::Value,
    /// The raw input columns, the target, and the class labels.
    pub input_schema: Schema,
    /// Evaluation metrics (e.g. `test_accuracy`).
    pub metrics: BTreeMap<String, f64>,
    /// Seconds since the Unix epoch when the artifact was made.
    pub created_unix: u64,
    /// SHA-256 (hex) of every file besides the manifest.
    pub files: BTreeMap<String, String>,
}

/// A trained model with its fitted preprocessor, configuration, schema and metrics. Saved as a
/// directory (`manifest.json` + `weights.bpk`); loading verifies the format version and every
/// checksum, so a tampered, truncated or newer-format artifact is refused.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelArtifact {
    manifest: Manifest,
    weights: Vec<u8>,
}

impl ModelArtifact {
    /// Assembles an artifact; the configuration and preprocessor are stored as JSON.
    pub fn new(
        model_family: &str,
        model_config: &impl Serialize,
        preprocessor: &impl Serialize,
        input_schema: Schema,
        metrics: BTreeMap<String, f64>,
        weights: Vec<u8>,
    ) -> Result<Self> {
        let created_unix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let files = BTreeMap::from([(WEIGHTS.to_owned(), sha256_hex(&weights))]);
        Ok(ModelArtifact {
            manifest: Manifest {
                format_version: FORMAT_VERSION,
                lepton_version: env!("CARGO_PKG_VERSION").to_owned(),
                model_family: model_family.to_owned(),
                model_config: to_value(model_config)?,
                preprocessor: to_value(preprocessor)?,
                input_schema,
                metrics,
                created_unix,
                files,
            },
            weights,
        })
    }

    /// The manifest.
    pub fn manifest(&self) -> &Manifest {
        &self.manifest
    }

    /// The model weights.
    pub fn weights(&self) -> &[u8] {
        &self.weights
    }

    /// The model configuration, deserialised as `T`.
    pub fn model_config<T: DeserializeOwned>(&self) -> Result<T> {
        from_value(&self.manifest.model_config, "model_config")
    }

    /// The fitted preprocessor, deserialised as `T`.
    pub fn preprocessor<T: DeserializeOwned>(&self) -> Result<T> {
        from_value(&self.manifest.preprocessor, "preprocessor")
    }

    /// Writes the artifact into `dir` (created if missing). The manifest is written last and
    /// atomically, so a crash never leaves a manifest pointing at missing weights.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<PathBuf> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        write_atomic(&dir.join(WEIGHTS), &self.weights)?;
        let manifest =
            serde_json::to_vec_pretty(&self.manifest).map_err(|e| DeployError::Manifest {
                path: dir.join(MANIFEST).display().to_string(),
                message: e.to_string(),
            })?;
        write_atomic(&dir.join(MANIFEST), &manifest)?;
        Ok(dir.to_path_buf())
    }

    /// Reads an artifact from `dir`, verifying its format version and checksums.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let manifest_path = dir.join(MANIFEST);
        let text = std::fs::read(&manifest_path).map_err(|e| io(&manifest_path, e))?;
        // Read the version alone first: a newer format may not parse as this one.
        #[derive(Deserialize)]
        struct Version {
            format_version: u32,
        }
        let bad_manifest = |e: serde_json::Error| DeployError::Manifest {
            path: manifest_path.display().to_string(),
            message: e.to_string(),
        };
        let version: Version = serde_json::from_slice(&text).map_err(bad_manifest)?;
        if version.format_version != FORMAT_VERSION {
            return Err(DeployError::UnsupportedFormat {
                found: version.format_version,
                supported: FORMAT_VERSION,
            });
        }
        let manifest: Manifest = serde_json::from_slice(&text).map_err(bad_manifest)?;
        let expected = manifest
            .files
            .get(WEIGHTS)
            .ok_or_else(|| DeployError::Manifest {
                path: manifest_path.display().to_string(),
                message: format!("no checksum for {WEIGHTS}"),
            })?;
        let weights_path = dir.join(WEIGHTS);
        let weights = std::fs::read(&weights_path).map_err(|e| io(&weights_path, e))?;
        let found = sha256_hex(&weights);
        if &found != expected {
            return Err(DeployError::Checksum {
                file: weights_path.display().to_string(),
                expected: expected.clone(),
                found,
            });
        }
        Ok(ModelArtifact { manifest, weights })
    }
}

fn to_value(v: &impl Serialize) -> Result<serde_json::Value> {
    serde_json::to_value(v).map_err(|e| DeployError::Manifest {
        path: MANIFEST.into(),
        message: e.to_string(),
    })
}

fn from_value<T: DeserializeOwned>(v: &serde_json::Value, what: &str) -> Result<T> {
    T::deserialize(v).map_err(|e| DeployError::Manifest {
        path: MANIFEST.into(),
        message: format!("{what}: {e}"),
    })
}

pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

pub(crate) fn io(path: &Path, source: std::io::Error) -> DeployError {
    DeployError::Io {
        path: path.display().to_string(),
        source,
    }
}

/// Writes `bytes` to a temporary file beside `path`, syncs it, then renames it into place.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = path.with_extension(format!("tmp.{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp).map_err(|e| io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| io(&tmp, e))?;
    f.sync_all().map_err(|e| io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io(path, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use lepton_core::Task;

    fn artifact() -> ModelArtifact {
        let schema = Schema {
            features: vec!["a".into(), "b".into()],
            target: "y".into(),
            task: Task::Classification {
                classes: vec!["no".into(), "yes".into()],
            },
        };
        ModelArtifact::new(
            "test-family",
            &serde_json::json!({"width": 3}),
            &vec![1.0, 2.0],
            schema,
            BTreeMap::from([("accuracy".into(), 0.9)]),
            vec![1, 2, 3, 4],
        )
        .unwrap()
    }

    #[test]
    fn round_trips_through_a_directory() {
        let dir = tempfile::tempdir().unwrap();
        let a = artifact();
        a.save(dir.path()).unwrap();
        let b = ModelArtifact::load(dir.path()).unwrap();
        assert_eq!(a, b);
        assert_eq!(b.preprocessor::<Vec<f64>>().unwrap(), vec![1.0, 2.0]);
        assert!(b.model_config::<Vec<f64>>().is_err());
    }

    #[test]
    fn tampered_or_truncated_weights_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        artifact().save(dir.path()).unwrap();
        std::fs::write(dir.path().join(WEIGHTS), [1, 2, 3]).unwrap();
        let e = ModelArtifact::load(dir.path()).unwrap_err();
        assert!(matches!(e, DeployError::Checksum { .. }), "{e:?}");
        std::fs::remove_file(dir.path().join(WEIGHTS)).unwrap();
        assert!(matches!(
            ModelArtifact::load(dir.path()).unwrap_err(),
            DeployError::Io { .. }
        ));
    }

    #[test]
    fn newer_format_and_broken_manifest_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        artifact().save(dir.path()).unwrap();
        let path = dir.path().join(MANIFEST);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(
            &path,
            text.replace("\"format_version\": 1", "\"format_version\": 2"),
        )
        .unwrap();
        assert!(matches!(
            ModelArtifact::load(dir.path()).unwrap_err(),
            DeployError::UnsupportedFormat { found: 2, .. }
        ));
        std::fs::write(&path, "{ not json").unwrap();
        assert!(matches!(
            ModelArtifact::load(dir.path()).unwrap_err(),
            DeployError::Manifest { .. }
        ));
    }
}
