//! The model artifact: everything needed to serve a model, in one directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use lepton_core::Schema;

use crate::error::{DeployError, Result};
use crate::labelled::Examples;

/// The artifact format this build writes (`docs/artifact-format.md`). Format 4 lets a
/// preprocessor travel with a model of any family, and tags every built-in model's
/// configuration with its network; format 3 artifacts still load. Format 3 added
/// `manifest_sha256`, the manifest's own checksum. Formats 1 and 2 have none, so an edited
/// manifest would go unnoticed: [`ModelArtifact::load`] refuses them
/// ([`DeployError::LegacyFormat`]) and [`ModelArtifact::upgrade`] reads one for an operator
/// who vouches for it.
pub const FORMAT_VERSION: u32 = 4;

/// The first format with a manifest checksum: the oldest [`ModelArtifact::load`] reads.
const CHECKSUMMED_SINCE: u32 = 3;

const MANIFEST: &str = "manifest.json";
const WEIGHTS: &str = "weights.bpk";
const REPLAY: &str = "replay.json";
/// The manifest's key for the SHA-256 of its canonical form without that key.
const DIGEST: &str = "manifest_sha256";

/// The largest `manifest.json` read (the preprocessor's category lists live there).
const MAX_MANIFEST_BYTES: u64 = 64 << 20;
/// The largest `replay.json` read.
const MAX_REPLAY_BYTES: u64 = 64 << 20;
/// The largest other listed file read (the weights).
const MAX_FILE_BYTES: u64 = 1 << 30;

/// The description of an artifact, stored as `manifest.json` next to the weights.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Manifest {
    /// Artifact format version ([`FORMAT_VERSION`] when written by this build).
    pub format_version: u32,
    /// The Lepton version that wrote it.
    pub lepton_version: String,
    /// Which model family the weights belong to (e.g. `mlp-classifier`).
    pub model_family: String,
    /// The model's configuration, as its family serializes it.
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
    /// SHA-256 (hex) of every file besides the manifest. The manifest's own checksum,
    /// `manifest_sha256` in the file, is written by [`ModelArtifact::save`] and verified by
    /// [`ModelArtifact::read_manifest`]; it is not a field here.
    pub files: BTreeMap<String, String>,
}

/// A trained model with its fitted preprocessor, configuration, schema and metrics. Saved as a
/// directory (`manifest.json` + `weights.bpk`); loading verifies the format version, the
/// manifest's own checksum and every file's, and bounds every size before allocating, so a
/// tampered, truncated, oversized, older- or newer-format artifact is refused.
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
        let bytes = sample.to_json().map_err(|message| DeployError::Manifest {
            path: REPLAY.into(),
            message,
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

    /// The model configuration, deserialized as `T`.
    pub fn model_config<T: DeserializeOwned>(&self) -> Result<T> {
        from_value(&self.manifest.model_config, "model_config")
    }

    /// The fitted preprocessor, deserialized as `T`.
    pub fn preprocessor<T: DeserializeOwned>(&self) -> Result<T> {
        from_value(&self.manifest.preprocessor, "preprocessor")
    }

    /// Writes the artifact into `dir` (created if missing). The manifest is written last and
    /// atomically, so a crash never leaves a manifest pointing at missing weights. It carries
    /// `manifest_sha256`, the SHA-256 of its other fields in canonical form.
    pub fn save(&self, dir: impl AsRef<Path>) -> Result<PathBuf> {
        let dir = dir.as_ref();
        std::fs::create_dir_all(dir).map_err(|e| io(dir, e))?;
        write_atomic(&dir.join(WEIGHTS), &self.weights)?;
        if let Some(replay) = &self.replay {
            write_atomic(&dir.join(REPLAY), replay)?;
        }
        let bad = |e: serde_json::Error| DeployError::Manifest {
            path: dir.join(MANIFEST).display().to_string(),
            message: e.to_string(),
        };
        let mut value = serde_json::to_value(&self.manifest).map_err(bad)?;
        let digest = manifest_digest(&value);
        if let serde_json::Value::Object(fields) = &mut value {
            fields.insert(DIGEST.to_owned(), digest.into());
        }
        let manifest = serde_json::to_vec_pretty(&value).map_err(bad)?;
        write_atomic(&dir.join(MANIFEST), &manifest)?;
        Ok(dir.to_path_buf())
    }

    /// Reads only the manifest of the artifact in `dir`, checking its format version, its own
    /// checksum and its schema but not the files it lists (for listings;
    /// [`load`](Self::load) verifies them).
    pub fn read_manifest(dir: impl AsRef<Path>) -> Result<Manifest> {
        let (manifest, found) = Self::read_manifest_of(dir.as_ref())?;
        if found < CHECKSUMMED_SINCE {
            return Err(DeployError::LegacyFormat {
                found,
                supported: FORMAT_VERSION,
            });
        }
        Ok(manifest)
    }

    /// The manifest of `dir` and the format it was written in: a current manifest's checksum
    /// is verified, an older one (which has none) is returned as it is.
    fn read_manifest_of(dir: &Path) -> Result<(Manifest, u32)> {
        let manifest_path = dir.join(MANIFEST);
        let text = read_bounded(&manifest_path, MAX_MANIFEST_BYTES)?;
        let bad_manifest = |e: serde_json::Error| DeployError::Manifest {
            path: manifest_path.display().to_string(),
            message: e.to_string(),
        };
        let invalid = |message: String| DeployError::Manifest {
            path: manifest_path.display().to_string(),
            message,
        };
        let mut value: serde_json::Value = serde_json::from_slice(&text).map_err(bad_manifest)?;
        // The version alone first: a newer format may not parse as this one.
        let found = value
            .get("format_version")
            .and_then(serde_json::Value::as_u64)
            .ok_or_else(|| invalid("no `format_version` number".into()))?;
        let found = u32::try_from(found)
            .ok()
            .filter(|v| (1..=FORMAT_VERSION).contains(v))
            .ok_or(DeployError::UnsupportedFormat {
                found: u32::try_from(found).unwrap_or(u32::MAX),
                supported: FORMAT_VERSION,
            })?;
        if found >= CHECKSUMMED_SINCE {
            let recorded = match value.as_object_mut().and_then(|m| m.remove(DIGEST)) {
                Some(serde_json::Value::String(digest)) => digest,
                _ => return Err(invalid(format!("no `{DIGEST}` string"))),
            };
            let computed = manifest_digest(&value);
            if computed != recorded {
                return Err(DeployError::Checksum {
                    file: manifest_path.display().to_string(),
                    expected: recorded,
                    found: computed,
                });
            }
        }
        let manifest = Manifest::deserialize(&value).map_err(bad_manifest)?;
        check_schema(&manifest.input_schema).map_err(invalid)?;
        if !manifest.files.contains_key(WEIGHTS) {
            return Err(invalid(format!("no checksum for {WEIGHTS}")));
        }
        Ok((manifest, found))
    }

    /// Reads an artifact from `dir`, verifying its format version, schema and checksums.
    pub fn load(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        Self::load_files(dir, Self::read_manifest(dir)?)
    }

    /// Reads an artifact of an older format (1 or 2: no manifest checksum) from `dir`,
    /// verifying its files, as this format: saved or registered, it gets a checksummed
    /// manifest. Nothing can tell whether such a manifest was edited, so call this only for
    /// an artifact you vouch for; a current one loads as [`load`](Self::load) does.
    pub fn upgrade(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref();
        let (mut manifest, found) = Self::read_manifest_of(dir)?;
        if found < CHECKSUMMED_SINCE {
            tracing::warn!(dir = %dir.display(), found, "upgrading an artifact without a manifest checksum");
        }
        manifest.format_version = FORMAT_VERSION;
        Self::load_files(dir, manifest)
    }

    fn load_files(dir: &Path, manifest: Manifest) -> Result<Self> {
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
            let limit = if name == REPLAY {
                MAX_REPLAY_BYTES
            } else {
                MAX_FILE_BYTES
            };
            let bytes = read_bounded(&path, limit)?;
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
                REPLAY => {
                    // Checked now, so that a version with a bad sample is refused as a whole.
                    Examples::from_json(&bytes).map_err(|message| DeployError::Manifest {
                        path: path.display().to_string(),
                        message,
                    })?;
                    replay = Some(bytes);
                }
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

/// SHA-256 (hex) of a manifest's canonical form: compact JSON with every object's keys
/// sorted (the caller leaves `manifest_sha256` out).
fn manifest_digest(manifest: &serde_json::Value) -> String {
    let mut text = String::new();
    canonical(manifest, &mut text);
    sha256_hex(text.as_bytes())
}

fn canonical(value: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match value {
        Value::Object(fields) => {
            let mut keys: Vec<&String> = fields.keys().collect();
            keys.sort();
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                if let Some(v) = fields.get(key) {
                    canonical(v, out);
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

/// The bytes of `path`, refused unread when it is larger than `limit`.
fn read_bounded(path: &Path, limit: u64) -> Result<Vec<u8>> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|e| io(path, e))?;
    let size = file.metadata().map_err(|e| io(path, e))?.len();
    let too_large = |size: u64| DeployError::TooLarge {
        path: path.display().to_string(),
        size,
        limit,
    };
    if size > limit {
        return Err(too_large(size));
    }
    let mut bytes = Vec::new();
    // The file may grow after the check: read one byte past the limit at most.
    file.take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(|e| io(path, e))?;
    let read = bytes.len() as u64;
    if read > limit {
        return Err(too_large(read));
    }
    Ok(bytes)
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

/// Writes `bytes` to a temporary file beside `path`, syncs it, renames it into place, then
/// syncs the directory so that the rename itself survives a power cut.
/// What [`write_atomic`] puts between a file's stem and the writer's process id while it
/// writes (`aliases.json` is written as `aliases.tmp.PID`).
pub(crate) const TMP_EXTENSION: &str = "tmp.";

pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let tmp = path.with_extension(format!("{TMP_EXTENSION}{}", std::process::id()));
    let mut f = std::fs::File::create(&tmp).map_err(|e| io(&tmp, e))?;
    f.write_all(bytes).map_err(|e| io(&tmp, e))?;
    f.sync_all().map_err(|e| io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| io(path, e))?;
    sync_parent(path)
}

/// Syncs the directory holding `path`, making a rename into it durable (Unix; elsewhere
/// directories cannot be opened for syncing and this does nothing).
pub(crate) fn sync_parent(path: &Path) -> Result<()> {
    #[cfg(unix)]
    {
        let parent = match path.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
        std::fs::File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(|e| io(parent, e))?;
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
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

    /// The manifest of `dir` as JSON.
    fn manifest_json(dir: &Path) -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dir.join(MANIFEST)).unwrap()).unwrap()
    }

    /// Writes `v` as the manifest of `dir` with a checksum that matches it, as someone who
    /// knows the format could.
    fn write_resealed(dir: &Path, mut v: serde_json::Value) {
        v.as_object_mut().unwrap().remove(DIGEST);
        let digest = manifest_digest(&v);
        v[DIGEST] = digest.into();
        std::fs::write(dir.join(MANIFEST), serde_json::to_vec(&v).unwrap()).unwrap();
    }

    #[test]
    fn an_edited_manifest_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        artifact().save(dir.path()).unwrap();
        let original = manifest_json(dir.path());
        assert!(original[DIGEST].as_str().is_some_and(|d| d.len() == 64));
        // The preprocessor's parameters (a centre, say) are in the manifest only.
        let mut v = original.clone();
        v["preprocessor"][0] = 6.0.into();
        std::fs::write(dir.path().join(MANIFEST), serde_json::to_vec(&v).unwrap()).unwrap();
        for e in [
            ModelArtifact::load(dir.path()).unwrap_err(),
            ModelArtifact::read_manifest(dir.path()).unwrap_err(),
        ] {
            assert!(
                matches!(&e, DeployError::Checksum { file, .. } if file.ends_with(MANIFEST)),
                "{e:?}"
            );
        }
        // The same with the checksum removed, and with a forged one.
        v.as_object_mut().unwrap().remove(DIGEST);
        std::fs::write(dir.path().join(MANIFEST), serde_json::to_vec(&v).unwrap()).unwrap();
        let e = ModelArtifact::load(dir.path()).unwrap_err();
        assert!(e.to_string().contains(DIGEST), "{e}");
        v[DIGEST] = "00".repeat(32).into();
        std::fs::write(dir.path().join(MANIFEST), serde_json::to_vec(&v).unwrap()).unwrap();
        assert!(matches!(
            ModelArtifact::load(dir.path()).unwrap_err(),
            DeployError::Checksum { .. }
        ));
        // Layout does not matter, content does: compact and reordered, it still loads.
        let mut fields: Vec<(String, serde_json::Value)> =
            original.as_object().unwrap().clone().into_iter().collect();
        fields.reverse();
        let text = format!(
            "{{{}}}",
            fields
                .iter()
                .map(|(k, v)| format!("{}:{v}", serde_json::Value::String(k.clone())))
                .collect::<Vec<_>>()
                .join(",")
        );
        std::fs::write(dir.path().join(MANIFEST), text).unwrap();
        assert_eq!(
            ModelArtifact::load(dir.path()).unwrap(),
            artifact_like(&original)
        );
    }

    /// The artifact `artifact()` saved, with its creation time taken from `manifest`.
    fn artifact_like(manifest: &serde_json::Value) -> ModelArtifact {
        let mut a = artifact();
        a.manifest.created_unix = manifest["created_unix"].as_u64().unwrap();
        a
    }

    #[test]
    fn older_formats_are_refused_and_upgrade_reads_them() {
        let dir = tempfile::tempdir().unwrap();
        let a = artifact()
            .with_training_data("sha256:00")
            .with_parent_version(4);
        a.save(dir.path()).unwrap();
        assert_eq!(ModelArtifact::load(dir.path()).unwrap(), a);
        for old in [1u32, 2] {
            let mut v = manifest_json(dir.path());
            let m = v.as_object_mut().unwrap();
            m.insert("format_version".into(), old.into());
            m.remove(DIGEST);
            if old == 1 {
                m.remove("training_data");
                m.remove("parent_version");
            }
            let old_dir = dir.path().join(format!("format-{old}"));
            a.save(&old_dir).unwrap();
            std::fs::write(old_dir.join(MANIFEST), serde_json::to_vec(&v).unwrap()).unwrap();
            for e in [
                ModelArtifact::load(&old_dir).unwrap_err(),
                ModelArtifact::read_manifest(&old_dir).unwrap_err(),
            ] {
                assert!(
                    matches!(e, DeployError::LegacyFormat { found, supported: FORMAT_VERSION } if found == old),
                    "{e:?}"
                );
                assert!(e.to_string().contains("upgrade"), "{e}");
            }
            // Upgraded, it is this format; saved again, it has a checksum and loads.
            let up = ModelArtifact::upgrade(&old_dir).unwrap();
            assert_eq!(up.manifest().format_version, FORMAT_VERSION);
            assert_eq!(up.weights(), a.weights());
            let expected_parent = if old == 1 { None } else { Some(4) };
            assert_eq!(up.manifest().parent_version, expected_parent);
            let new_dir = dir.path().join(format!("from-{old}"));
            up.save(&new_dir).unwrap();
            assert_eq!(ModelArtifact::load(&new_dir).unwrap(), up);
            // Upgrading still verifies the files.
            std::fs::write(old_dir.join(WEIGHTS), [0]).unwrap();
            assert!(matches!(
                ModelArtifact::upgrade(&old_dir).unwrap_err(),
                DeployError::Checksum { .. }
            ));
        }
        // A current artifact upgrades to itself.
        assert_eq!(ModelArtifact::upgrade(dir.path()).unwrap(), a);
    }

    #[test]
    fn manifests_that_point_elsewhere_or_describe_a_bad_schema_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        artifact().save(dir.path()).unwrap();
        let original = manifest_json(dir.path());
        // Resealed, so that the checks behind the manifest's checksum are reached.
        let edited = |edit: &dyn Fn(&mut serde_json::Value)| {
            let mut v = original.clone();
            edit(&mut v);
            write_resealed(dir.path(), v);
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
        let empty = Examples::empty(Task::Regression, 2);
        assert!(artifact().with_replay(&empty).is_err());
    }

    #[test]
    fn a_replay_sample_of_a_huge_width_is_refused_without_allocating_it() {
        let dir = tempfile::tempdir().unwrap();
        artifact().save(dir.path()).unwrap();
        // A sample whose checksum is in the (resealed) manifest: only its content is wrong.
        let bomb =
            br#"{"task":{"kind":"regression"},"width":1000000000,"features":[],"targets":[]}"#;
        std::fs::write(dir.path().join(REPLAY), bomb).unwrap();
        let mut v = manifest_json(dir.path());
        v["files"][REPLAY] = sha256_hex(bomb).into();
        write_resealed(dir.path(), v);
        let e = ModelArtifact::load(dir.path()).unwrap_err();
        assert!(
            matches!(&e, DeployError::Manifest { path, message }
                if path.ends_with(REPLAY) && message.contains("1000000000")),
            "{e:?}"
        );
    }

    #[test]
    fn oversized_files_are_refused_unread() {
        let dir = tempfile::tempdir().unwrap();
        artifact().save(dir.path()).unwrap();
        // Sparse: the size is what is checked, nothing of it is read.
        let manifest = std::fs::File::options()
            .write(true)
            .open(dir.path().join(MANIFEST))
            .unwrap();
        manifest.set_len(MAX_MANIFEST_BYTES + 1).unwrap();
        // Closed before the save below replaces it (Windows refuses to replace an open file).
        drop(manifest);
        let e = ModelArtifact::load(dir.path()).unwrap_err();
        assert!(
            matches!(e, DeployError::TooLarge { size, limit, .. }
                if size == MAX_MANIFEST_BYTES + 1 && limit == MAX_MANIFEST_BYTES),
            "{e:?}"
        );
        artifact().save(dir.path()).unwrap();
        let weights = std::fs::File::options()
            .write(true)
            .open(dir.path().join(WEIGHTS))
            .unwrap();
        weights.set_len(MAX_FILE_BYTES + 1).unwrap();
        assert!(matches!(
            ModelArtifact::load(dir.path()).unwrap_err(),
            DeployError::TooLarge { .. }
        ));
    }

    #[test]
    fn format_3_loads_with_its_checksum_and_upgrades_to_this_format() {
        let dir = tempfile::tempdir().unwrap();
        let a = artifact();
        a.save(dir.path()).unwrap();
        // A format-3 manifest: the same fields, checksummed the same way.
        let mut v = manifest_json(dir.path());
        let m = v.as_object_mut().unwrap();
        m.insert("format_version".into(), 3.into());
        m.remove(DIGEST);
        let digest = manifest_digest(&v);
        v.as_object_mut()
            .unwrap()
            .insert(DIGEST.into(), digest.into());
        std::fs::write(dir.path().join(MANIFEST), serde_json::to_vec(&v).unwrap()).unwrap();
        let loaded = ModelArtifact::load(dir.path()).unwrap();
        assert_eq!(loaded.manifest().format_version, 3);
        assert_eq!(loaded.weights(), a.weights());
        assert_eq!(
            ModelArtifact::upgrade(dir.path())
                .unwrap()
                .manifest()
                .format_version,
            FORMAT_VERSION
        );
        // Its checksum still guards it.
        let edited = serde_json::to_string(&v)
            .unwrap()
            .replace("test-family", "other-family");
        std::fs::write(dir.path().join(MANIFEST), edited).unwrap();
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
        let newer = text.replace(
            &format!("\"format_version\": {FORMAT_VERSION}"),
            &format!("\"format_version\": {}", FORMAT_VERSION + 1),
        );
        assert_ne!(newer, text);
        std::fs::write(&path, newer).unwrap();
        assert!(matches!(
            ModelArtifact::load(dir.path()).unwrap_err(),
            DeployError::UnsupportedFormat { found, .. } if found == FORMAT_VERSION + 1
        ));
        std::fs::write(&path, "{ not json").unwrap();
        assert!(matches!(
            ModelArtifact::load(dir.path()).unwrap_err(),
            DeployError::Manifest { .. }
        ));
    }
}
