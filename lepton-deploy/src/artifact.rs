//! The model artifact: everything needed to serve a model, in one directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use lepton_core::Schema;

use crate::error::{DeployError, Result};
use crate::labelled::Examples;

/// The artifact format this build writes (`docs/artifact-format.md`). It reads this one and
/// the older ones (1: no training-data fingerprint or parent version).
pub const FORMAT_VERSION: u32 = 2;

const MANIFEST: &str = "manifest.json";
const WEIGHTS: &str = "weights.bpk";
const REPLAY: &str = "replay.json";

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
    /// The fingerprint of the training data ([`fingerprint`](crate::fingerprint)), if known.
    #[serde(default)]
    pub training_data: Option<String>,
    /// The registry version this model was derived from (fine-tuned from), if any.
    #[serde(default)]
    pub parent_version: Option<u64>,
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
    /// `replay.json`: a sample of training rows for fine-tuning, if the artifact has one.
    replay: Option<Vec<u8>>,
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
                training_data: None,
                parent_version: None,
                created_unix,
                files,
            },
            weights,
            replay: None,
        })
    }

    /// Carries `sample` (encoded training rows) as `replay.json`, for online learning to mix
    /// into fine-tuning and to guard against forgetting.
    pub fn with_replay(mut self, sample: &Examples) -> Result<Self> {
        let bytes = sample.to_json().map_err(|e| DeployError::Manifest {
            path: REPLAY.into(),
            message: e.to_string(),
        })?;
        self.manifest
            .files
            .insert(REPLAY.to_owned(), sha256_hex(&bytes));
        self.replay = Some(bytes);
        Ok(self)
    }

    /// The replay sample, if the artifact carries one.
    pub fn replay(&self) -> Result<Option<Examples>> {
        self.replay
            .as_deref()
            .map(|bytes| {
                Examples::from_json(bytes).map_err(|message| DeployError::Manifest {
                    path: REPLAY.into(),
                    message,
                })
            })
            .transpose()
    }

    /// Records the fingerprint of the data the model was trained on.
    pub fn with_training_data(mut self, fingerprint: impl Into<String>) -> Self {
        self.manifest.training_data = Some(fingerprint.into());
        self
    }

    /// Records the registry version this model was derived from.
    pub fn with_parent_version(mut self, version: u64) -> Self {
        self.manifest.parent_version = Some(version);
        self
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
        if let Some(replay) = &self.replay {
            write_atomic(&dir.join(REPLAY), replay)?;
        }
        let manifest =
            serde_json::to_vec_pretty(&self.manifest).map_err(|e| DeployError::Manifest {
                path: dir.join(MANIFEST).display().to_string(),
                message: e.to_string(),
            })?;
        write_atomic(&dir.join(MANIFEST), &manifest)?;
        Ok(dir.to_path_buf())
    }

    /// Reads only the manifest of the artifact in `dir`, checking its format version and
    /// schema but not the files it lists (for listings; [`load`](Self::load) verifies them).
    pub fn read_manifest(dir: impl AsRef<Path>) -> Result<Manifest> {
        let manifest_path = dir.as_ref().join(MANIFEST);
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
        if !(1..=FORMAT_VERSION).contains(&version.format_version) {
            return Err(DeployError::UnsupportedFormat {
                found: version.format_version,
                supported: FORMAT_VERSION,
            });
        }
        let manifest: Manifest = serde_json::from_slice(&text).map_err(bad_manifest)?;
        let invalid = |message: String| DeployError::Manifest {
            path: manifest_path.display().to_string(),
            message,
        };
        check_schema(&manifest.input_schema).map_err(invalid)?;
        if !manifest.files.contains_key(WEIGHTS) {
            return Err(invalid(format!("no checksum for {WEIGHTS}")));
        }
        Ok(manifest)
    }

    /// Reads an artifact from `dir`, verifying its format version, schema and checksums.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let manifest = Self::read_manifest(dir)?;
        let invalid = |message: String| DeployError::Manifest {
            path: dir.join(MANIFEST).display().to_string(),
            message,
        };
        let (mut weights, mut replay) = (Vec::new(), None);
        for (name, expected) in &manifest.files {
            // Only plain names of this directory: a manifest cannot make us read elsewhere.
            let plain = Path::new(name)
                .file_name()
                .is_some_and(|f| f == name.as_str())
                && name != MANIFEST;
            if !plain {
                return Err(invalid(format!("file name `{name}` is not allowed")));
            }
            let path = dir.join(name);
            let bytes = std::fs::read(&path).map_err(|e| io(&path, e))?;
            let found = sha256_hex(&bytes);
            if &found != expected {
                return Err(DeployError::Checksum {
                    file: path.display().to_string(),
                    expected: expected.clone(),
                    found,
                });
            }
            match name.as_str() {
                WEIGHTS => weights = bytes,
                REPLAY => replay = Some(bytes),
                _ => {}
            }
        }
        Ok(ModelArtifact {
            manifest,
            weights,
            replay,
        })
    }
}

/// The schema a served model can rely on: named, distinct features; for a classification, at
/// least two distinct labels.
fn check_schema(schema: &Schema) -> std::result::Result<(), String> {
    if schema.features.is_empty() {
        return Err("the input schema has no features".into());
    }
    let distinct = |names: &[String]| {
        let mut seen = std::collections::BTreeSet::new();
        names.iter().find(|n| !seen.insert(n.as_str())).cloned()
    };
    if let Some(name) = distinct(&schema.features) {
        return Err(format!(
            "feature `{name}` appears twice in the input schema"
        ));
    }
    if let lepton_core::Task::Classification { classes } = &schema.task {
        if classes.len() < 2 {
            return Err(format!("{} class labels, need at least 2", classes.len()));
        }
        if let Some(label) = distinct(classes) {
            return Err(format!("class label `{label}` appears twice"));
        }
    }
    Ok(())
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
    hex(&Sha256::digest(bytes))
}

/// Lower-case hexadecimal of `bytes` (a digest).
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
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
        // A listing reads the manifest alone; loading verifies the files.
        assert_eq!(
            ModelArtifact::read_manifest(dir.path())
                .unwrap()
                .model_family,
            "test-family"
        );
        let e = ModelArtifact::load(dir.path()).unwrap_err();
        assert!(matches!(e, DeployError::Checksum { .. }), "{e:?}");
        std::fs::remove_file(dir.path().join(WEIGHTS)).unwrap();
        assert!(matches!(
            ModelArtifact::load(dir.path()).unwrap_err(),
            DeployError::Io { .. }
        ));
    }

    #[test]
    fn format_1_still_loads_and_lineage_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let a = artifact()
            .with_training_data("sha256:00")
            .with_parent_version(4);
        a.save(dir.path()).unwrap();
        assert_eq!(ModelArtifact::load(dir.path()).unwrap(), a);
        // A format-1 manifest: no lineage fields.
        let path = dir.path().join(MANIFEST);
        let mut v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let m = v.as_object_mut().unwrap();
        m.insert("format_version".into(), 1.into());
        m.remove("training_data");
        m.remove("parent_version");
        std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
        let old = ModelArtifact::load(dir.path()).unwrap();
        assert_eq!(old.manifest().parent_version, None);
        assert_eq!(old.weights(), a.weights());
    }

    #[test]
    fn manifests_that_point_elsewhere_or_describe_a_bad_schema_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        artifact().save(dir.path()).unwrap();
        let path = dir.path().join(MANIFEST);
        let original: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let edited = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut v = original.clone();
            edit(&mut v);
            std::fs::write(&path, serde_json::to_vec(&v).unwrap()).unwrap();
            ModelArtifact::load(dir.path()).unwrap_err()
        };
        for name in ["../weights.bpk", "/etc/passwd", "manifest.json"] {
            let e = edited(&|v| {
                v["files"][name] = "00".into();
            });
            assert!(matches!(e, DeployError::Manifest { .. }), "{name}: {e}");
        }
        let e = edited(&|v| v["input_schema"]["features"] = serde_json::json!(["a", "a"]));
        assert!(e.to_string().contains("appears twice"), "{e}");
        let e = edited(&|v| v["input_schema"]["features"] = serde_json::json!([]));
        assert!(e.to_string().contains("no features"), "{e}");
        let e = edited(&|v| {
            v["input_schema"]["task"] =
                serde_json::json!({"kind": "classification", "classes": ["x"]})
        });
        assert!(e.to_string().contains("1 class labels"), "{e}");
        // An extra listed file must exist and match too.
        let e = edited(&|v| v["files"]["extra.bin"] = "00".into());
        assert!(matches!(e, DeployError::Io { .. }), "{e}");
    }

    #[test]
    fn a_replay_sample_travels_and_is_verified() {
        use lepton_core::{Target, Task};
        let dir = tempfile::tempdir().unwrap();
        let task = Task::Classification {
            classes: vec!["no".into(), "yes".into()],
        };
        let mut sample = Examples::empty(task, 2);
        sample.push(&[0.5, 1.5], Target::Class(1)).unwrap();
        let a = artifact().with_replay(&sample).unwrap();
        a.save(dir.path()).unwrap();
        let b = ModelArtifact::load(dir.path()).unwrap();
        assert_eq!(b.replay().unwrap(), Some(sample));
        assert_eq!(artifact().replay().unwrap(), None);
        std::fs::write(dir.path().join(REPLAY), b"{}").unwrap();
        assert!(matches!(
            ModelArtifact::load(dir.path()).unwrap_err(),
            DeployError::Checksum { .. }
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
            text.replace("\"format_version\": 2", "\"format_version\": 3"),
        )
        .unwrap();
        assert!(matches!(
            ModelArtifact::load(dir.path()).unwrap_err(),
            DeployError::UnsupportedFormat { found: 3, .. }
        ));
        std::fs::write(&path, "{ not json").unwrap();
        assert!(matches!(
            ModelArtifact::load(dir.path()).unwrap_err(),
            DeployError::Manifest { .. }
        ));
    }
}
