//! The registry on the local file system, and the deployer built on it.
//!
//! Layout under the root:
//!
//! ```text
//! NAME/v1/manifest.json, NAME/v1/weights.bpk     one directory per version, never rewritten
//! NAME/aliases.json                               {"production": [1, 3], "staging": [4]}
//! NAME/.lock                                      serializes writers of NAME
//! ```
//!
//! An alias's list is its history, the last entry the version it points at now. A new
//! version is written to a staging directory first and renamed to `vN` under the model's lock,
//! so readers never see half a version; `aliases.json` is replaced by a rename, and every
//! rename is followed by a sync of its directory (on Unix), so that it survives a power cut.
//! Writers in other threads or processes (one machine, or a shared file system with working
//! `flock`) wait for the lock. A writer killed while it staged a version leaves a
//! `.staging-PID-N` directory behind; the next registration of that model removes those
//! untouched for an hour (its age, not its PID, tells: the PID may be another machine's).

use std::collections::BTreeMap;
use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use lepton_core::{Deployer, Deployment};

use crate::artifact::{Manifest, ModelArtifact, TMP_EXTENSION, io, sync_parent, write_atomic};
use crate::error::{DeployError, Result};
use crate::registry::{PRODUCTION, Registry, check_name, version_number};

const ALIASES: &str = "aliases.json";
/// The prefix a version's directory is renamed to while it is removed.
const REMOVED: &str = ".removed-v";
const LOCK: &str = ".lock";
const STAGING_PREFIX: &str = ".staging-";
/// How long a staging directory must have been left untouched before a registration removes it
/// as the leftover of a killed writer (writing one takes seconds).
const STALE_STAGING: std::time::Duration = std::time::Duration::from_secs(3600);

/// Versioned artifacts on the local file system (see the module documentation for the layout).
#[derive(Debug, Clone)]
pub struct LocalRegistry {
    root: PathBuf,
}

/// An alias name a reference could not tell from a version: a number, `vN`, or `latest`.
fn check_alias(alias: &str) -> Result<()> {
    check_name(alias)?;
    if alias == "latest" || version_number(alias).is_some() {
        return Err(DeployError::InvalidName(alias.to_owned()));
    }
    Ok(())
}

impl LocalRegistry {
    /// A registry rooted at `root` (created on first use).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalRegistry { root: root.into() }
    }

    /// The registry's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn model_dir(&self, name: &str) -> Result<PathBuf> {
        check_name(name)?;
        Ok(self.root.join(name))
    }

    fn version_dir(&self, name: &str, version: u64) -> Result<PathBuf> {
        Ok(self.model_dir(name)?.join(format!("v{version}")))
    }

    /// The directory of a version that exists, or `UnknownVersion`.
    fn existing_version_dir(&self, name: &str, version: u64) -> Result<PathBuf> {
        if !self.versions(name)?.contains(&version) {
            return Err(DeployError::UnknownVersion {
                name: name.to_owned(),
                version: version.to_string(),
            });
        }
        self.version_dir(name, version)
    }

    /// Runs `f` holding `name`'s exclusive lock (created with the model's directory).
    fn locked<T>(&self, name: &str, f: impl FnOnce(&Path) -> Result<T>) -> Result<T> {
        let dir = self.model_dir(name)?;
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        let path = dir.join(LOCK);
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(|e| io(&path, e))?;
        lock.lock().map_err(|e| io(&path, e))?;
        let out = f(&dir);
        // Dropping the file releases the lock too; unlocking first reports nothing new.
        let _ = lock.unlock();
        out
    }

    /// Points `alias` of `name` at `version` (already verified), recording it in the history;
    /// with `expected`, only if the alias points there when the lock is held.
    fn point_alias(
        &self,
        name: &str,
        version: u64,
        alias: &str,
        expected: Option<u64>,
    ) -> Result<()> {
        self.locked(name, |dir| {
            let mut histories = self.histories(dir)?;
            let history = histories.entry(alias.to_owned()).or_default();
            if let Some(expected) = expected
                && history.last() != Some(&expected)
            {
                return Err(DeployError::AliasMoved {
                    name: name.to_owned(),
                    alias: alias.to_owned(),
                    expected,
                    found: history.last().copied(),
                });
            }
            if history.last() != Some(&version) {
                history.push(version);
            }
            self.save_histories(dir, &histories)
        })?;
        tracing::info!(name, version, alias, "promoted");
        Ok(())
    }

    /// Every alias's history (the last entry is where it points).
    fn histories(&self, dir: &Path) -> Result<BTreeMap<String, Vec<u64>>> {
        let path = dir.join(ALIASES);
        match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| DeployError::Manifest {
                path: path.display().to_string(),
                message: e.to_string(),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(BTreeMap::new()),
            Err(e) => Err(io(&path, e)),
        }
    }

    fn save_histories(&self, dir: &Path, histories: &BTreeMap<String, Vec<u64>>) -> Result<()> {
        let bytes = serde_json::to_vec_pretty(histories).map_err(|e| DeployError::Manifest {
            path: dir.join(ALIASES).display().to_string(),
            message: e.to_string(),
        })?;
        write_atomic(&dir.join(ALIASES), &bytes)
    }
}

impl Registry for LocalRegistry {
    fn register(&self, name: &str, artifact: &ModelArtifact) -> Result<u64> {
        let dir = self.model_dir(name)?;
        std::fs::create_dir_all(&dir).map_err(|e| io(&dir, e))?;
        // Written outside the lock (the slow part), verified, then renamed into place.
        static STAGED: AtomicU64 = AtomicU64::new(0);
        let staging = dir.join(format!(
            "{STAGING_PREFIX}{}-{}",
            std::process::id(),
            STAGED.fetch_add(1, Ordering::Relaxed)
        ));
        let staged = artifact
            .save(&staging)
            .and_then(|_| ModelArtifact::load(&staging));
        if let Err(e) = staged {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(e);
        }
        let version = self.locked(name, |dir| {
            remove_leftovers(dir, &staging);
            let version = self.versions(name)?.last().map_or(1, |v| v + 1);
            let target = self.version_dir(name, version)?;
            std::fs::rename(&staging, &target).map_err(|e| io(&target, e))?;
            sync_parent(&target)?;
            Ok(version)
        });
        if version.is_err() {
            let _ = std::fs::remove_dir_all(&staging);
        }
        let version = version?;
        tracing::info!(name, version, "registered");
        Ok(version)
    }

    fn models(&self) -> Result<Vec<String>> {
        let entries = match std::fs::read_dir(&self.root) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&self.root, e)),
        };
        let mut names = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| io(&self.root, e))?;
            if let Some(name) = entry.file_name().to_str()
                && check_name(name).is_ok()
                && entry.path().is_dir()
            {
                names.push(name.to_owned());
            }
        }
        names.sort();
        Ok(names)
    }

    fn versions(&self, name: &str) -> Result<Vec<u64>> {
        let dir = self.model_dir(name)?;
        let entries = match std::fs::read_dir(&dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io(&dir, e)),
        };
        let mut versions = Vec::new();
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

    fn get(&self, name: &str, version: u64) -> Result<ModelArtifact> {
        ModelArtifact::load(self.existing_version_dir(name, version)?)
    }

    fn manifest(&self, name: &str, version: u64) -> Result<Manifest> {
        ModelArtifact::read_manifest(self.existing_version_dir(name, version)?)
    }

    fn aliases(&self, name: &str) -> Result<BTreeMap<String, u64>> {
        let histories = self.histories(&self.model_dir(name)?)?;
        Ok(histories
            .into_iter()
            .filter_map(|(alias, h)| h.last().map(|v| (alias, *v)))
            .collect())
    }

    fn promote(&self, name: &str, version: u64, alias: &str) -> Result<()> {
        check_alias(alias)?;
        // Verified before anything moves: a corrupted version never goes live.
        self.get(name, version)?;
        self.point_alias(name, version, alias, None)
    }

    /// As `register_and_promote`: the staged copy was verified, and the alias moves without
    /// reading it again, here only if it still points at `expected`.
    fn register_and_promote_if(
        &self,
        name: &str,
        artifact: &ModelArtifact,
        alias: &str,
        expected: u64,
    ) -> Result<u64> {
        check_alias(alias)?;
        let version = self.register(name, artifact)?;
        self.point_alias(name, version, alias, Some(expected))?;
        Ok(version)
    }

    /// `register` verifies the staged copy before it becomes a version: the alias moves
    /// without reading it a third time.
    fn register_and_promote(
        &self,
        name: &str,
        artifact: &ModelArtifact,
        alias: &str,
    ) -> Result<u64> {
        check_alias(alias)?;
        let version = self.register(name, artifact)?;
        self.point_alias(name, version, alias, None)?;
        Ok(version)
    }

    fn rollback(&self, name: &str, alias: &str) -> Result<u64> {
        check_alias(alias)?;
        let version = self.locked(name, |dir| {
            let nothing = || DeployError::NothingToRollBack {
                name: name.to_owned(),
                alias: alias.to_owned(),
            };
            let mut histories = self.histories(dir)?;
            let history = histories.get_mut(alias).ok_or_else(nothing)?;
            let current = history.pop().ok_or_else(nothing)?;
            // The latest earlier version that still loads; broken ones leave the history.
            while let Some(&previous) = history.last() {
                if previous != current && self.get(name, previous).is_ok() {
                    break;
                }
                history.pop();
            }
            let previous = *history.last().ok_or_else(nothing)?;
            self.save_histories(dir, &histories)?;
            Ok(previous)
        })?;
        tracing::info!(name, version, alias, "rolled back");
        Ok(version)
    }

    fn remove(&self, name: &str, version: u64) -> Result<()> {
        let kept = |why: &str| DeployError::Kept {
            name: name.to_owned(),
            version,
            why: why.to_owned(),
        };
        self.locked(name, |dir| {
            // Listed under the lock: of two removals of one version, the second finds none.
            let target = self.existing_version_dir(name, version)?;
            if self.versions(name)?.last() == Some(&version) {
                return Err(kept("it is the latest version"));
            }
            let mut histories = self.histories(dir)?;
            if histories.values().any(|h| h.last() == Some(&version)) {
                return Err(kept("an alias points at it"));
            }
            for history in histories.values_mut() {
                history.retain(|&v| v != version);
            }
            self.save_histories(dir, &histories)?;
            // Renamed out of the listing first, so that a crash midway leaves no half version.
            let doomed = dir.join(format!("{REMOVED}{version}"));
            std::fs::rename(&target, &doomed).map_err(|e| io(&target, e))?;
            std::fs::remove_dir_all(&doomed).map_err(|e| io(&doomed, e))
        })?;
        tracing::info!(name, version, "removed");
        Ok(())
    }
}

/// Removes what writers killed midway left in `dir` untouched for [`STALE_STAGING`] (but
/// `ours`): staging directories, half-written alias files (`aliases.tmp.PID`) and versions
/// half removed. Failures are logged, never fatal.
fn remove_leftovers(dir: &Path, ours: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let alias_tmp = Path::new(ALIASES).with_extension(TMP_EXTENSION);
    let alias_tmp = alias_tmp.to_string_lossy();
    for entry in entries.flatten() {
        let path = entry.path();
        let leftover = entry.file_name().to_str().is_some_and(|n| {
            n.starts_with(STAGING_PREFIX) || n.starts_with(&*alias_tmp) || n.starts_with(REMOVED)
        });
        if !leftover || path == ours {
            continue;
        }
        let age = entry
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| t.elapsed().ok());
        if age.is_some_and(|age| age >= STALE_STAGING) {
            let removed = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
            match removed {
                Ok(()) => {
                    tracing::info!(path = %path.display(), "removed a killed writer's leftover")
                }
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "cannot remove a killed writer's leftover")
                }
            }
        }
    }
}

/// Deploys onto a [`LocalRegistry`]: an artifact directory is verified, registered as the next
/// version and promoted to an alias (`production` unless [`with_alias`](Self::with_alias)
/// says otherwise); a rollback moves that alias back.
#[derive(Debug, Clone)]
pub struct LocalRegistryDeployer {
    registry: LocalRegistry,
    alias: String,
}

impl LocalRegistryDeployer {
    /// Deploys into a registry rooted at `root`, to the `production` alias.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalRegistryDeployer {
            registry: LocalRegistry::new(root),
            alias: PRODUCTION.to_owned(),
        }
    }

    /// Deploys to `alias` instead (e.g. `staging`).
    pub fn with_alias(mut self, alias: &str) -> Result<Self> {
        check_alias(alias)?;
        self.alias = alias.to_owned();
        Ok(self)
    }

    /// The registry deployed into.
    pub fn registry(&self) -> &LocalRegistry {
        &self.registry
    }

    fn deployment(&self, name: &str, version: u64) -> Result<Deployment> {
        Ok(Deployment {
            name: name.to_owned(),
            version,
            address: self
                .registry
                .version_dir(name, version)?
                .display()
                .to_string(),
        })
    }
}

impl Deployer for LocalRegistryDeployer {
    fn deploy(&self, name: &str, artifact_dir: &Path) -> lepton_core::Result<Deployment> {
        let artifact = ModelArtifact::load(artifact_dir)?;
        let version = self
            .registry
            .register_and_promote(name, &artifact, &self.alias)?;
        Ok(self.deployment(name, version)?)
    }

    fn rollback(&self, name: &str) -> lepton_core::Result<Deployment> {
        let version = self.registry.rollback(name, &self.alias)?;
        Ok(self.deployment(name, version)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::registry::STAGING;
    use lepton_core::{Schema, Task};

    fn artifact(weights: Vec<u8>) -> ModelArtifact {
        let schema = Schema {
            features: vec!["x".into()],
            target: "y".into(),
            task: Task::Regression,
        };
        ModelArtifact::new("f", &1, &2, schema, BTreeMap::new(), weights).unwrap()
    }

    fn saved(dir: &Path, weights: Vec<u8>) {
        artifact(weights).save(dir).unwrap();
    }

    #[test]
    fn a_conditional_promotion_loses_to_a_promotion_made_meanwhile() {
        let tmp = tempfile::tempdir().unwrap();
        let reg = LocalRegistry::new(tmp.path());
        reg.register("m", &artifact(vec![1])).unwrap();
        reg.promote("m", 1, PRODUCTION).unwrap();
        let v2 = reg.register_and_promote_if("m", &artifact(vec![2]), PRODUCTION, 1);
        assert_eq!(v2.unwrap(), 2);
        // An operator rolls back to v1; a promotion decided while v2 was served loses.
        reg.rollback("m", PRODUCTION).unwrap();
        let e = reg
            .register_and_promote_if("m", &artifact(vec![3]), PRODUCTION, 2)
            .unwrap_err();
        assert!(
            matches!(
                e,
                DeployError::AliasMoved {
                    expected: 2,
                    found: Some(1),
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(reg.aliases("m").unwrap()[PRODUCTION], 1);
    }

    #[test]
    fn removes_only_versions_no_alias_points_at_and_never_the_latest() {
        let tmp = tempfile::tempdir().unwrap();
        let reg = LocalRegistry::new(tmp.path());
        for w in 1..=4u8 {
            reg.register("m", &artifact(vec![w])).unwrap();
        }
        for v in [1, 2, 3] {
            reg.promote("m", v, PRODUCTION).unwrap();
        }
        let kept = |e: DeployError| matches!(e, DeployError::Kept { .. });
        assert!(kept(reg.remove("m", 4).unwrap_err()), "the latest");
        assert!(kept(reg.remove("m", 3).unwrap_err()), "production's");
        assert!(matches!(
            reg.remove("m", 9).unwrap_err(),
            DeployError::UnknownVersion { .. }
        ));
        reg.remove("m", 2).unwrap();
        assert_eq!(reg.versions("m").unwrap(), [1, 3, 4]);
        // The history forgot v2: a rollback goes to v1; numbers go on from the latest.
        assert_eq!(reg.rollback("m", PRODUCTION).unwrap(), 1);
        assert_eq!(reg.register("m", &artifact(vec![5])).unwrap(), 5);
        let names: Vec<_> = std::fs::read_dir(tmp.path().join("m"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .filter(|n| n.starts_with('.') && n.contains("removed"))
            .collect();
        assert!(names.is_empty(), "{names:?}");
    }

    #[test]
    fn registers_promotes_resolves_and_rolls_back() {
        let tmp = tempfile::tempdir().unwrap();
        let reg = LocalRegistry::new(tmp.path());
        assert!(reg.models().unwrap().is_empty());
        for w in 1..=3u8 {
            assert_eq!(
                reg.register("wine", &artifact(vec![w])).unwrap(),
                u64::from(w)
            );
        }
        assert_eq!(reg.models().unwrap(), ["wine"]);
        assert_eq!(reg.versions("wine").unwrap(), [1, 2, 3]);
        assert!(
            reg.aliases("wine").unwrap().is_empty(),
            "registering moves no alias"
        );
        assert_eq!(reg.get("wine", 2).unwrap().weights(), &[2]);
        reg.promote("wine", 1, PRODUCTION).unwrap();
        reg.promote("wine", 3, PRODUCTION).unwrap();
        reg.promote("wine", 2, STAGING).unwrap();
        assert_eq!(
            reg.aliases("wine").unwrap(),
            BTreeMap::from([(PRODUCTION.to_owned(), 3), (STAGING.to_owned(), 2)])
        );
        assert_eq!(reg.resolve("wine", "production").unwrap(), 3);
        assert_eq!(reg.resolve("wine", "v2").unwrap(), 2);
        assert_eq!(reg.resolve("wine", "latest").unwrap(), 3);
        assert!(reg.resolve("wine", "7").is_err());
        assert!(reg.resolve("wine", "canary").is_err());
        assert_eq!(reg.rollback("wine", PRODUCTION).unwrap(), 1);
        assert_eq!(reg.resolve("wine", "production").unwrap(), 1);
        assert!(matches!(
            reg.rollback("wine", PRODUCTION),
            Err(DeployError::NothingToRollBack { .. })
        ));
        assert_eq!(reg.resolve("wine", "production").unwrap(), 1, "unchanged");
        assert!(reg.rollback("wine", "canary").is_err());
        assert!(reg.promote("wine", 9, PRODUCTION).is_err());
        // Aliases that a reference could not tell from a version are refused.
        for alias in ["latest", "3", "v3", "../x", ""] {
            assert!(reg.promote("wine", 1, alias).is_err(), "{alias}");
        }
    }

    #[test]
    fn bad_names_bad_artifacts_and_corrupted_versions_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let reg = LocalRegistry::new(tmp.path().join("r"));
        for name in ["", "../evil", "a/b", "x y", &"n".repeat(65)] {
            assert!(
                matches!(
                    reg.register(name, &artifact(vec![1])),
                    Err(DeployError::InvalidName(_))
                ),
                "{name}"
            );
        }
        assert!(!tmp.path().join("evil").exists());
        for w in 1..=3u8 {
            reg.register("m", &artifact(vec![w])).unwrap();
            reg.promote("m", u64::from(w), PRODUCTION).unwrap();
        }
        // Version 2 is damaged on disk: it cannot be promoted, and a rollback skips it.
        std::fs::write(tmp.path().join("r/m/v2/weights.bpk"), [0]).unwrap();
        assert!(matches!(
            reg.promote("m", 2, STAGING),
            Err(DeployError::Checksum { .. })
        ));
        // Version 3's manifest is edited (its preprocessor, say): refused the same way.
        let manifest = tmp.path().join("r/m/v3/manifest.json");
        let text = std::fs::read_to_string(&manifest).unwrap();
        let edited = text.replace("\"preprocessor\": 2", "\"preprocessor\": 7");
        assert_ne!(edited, text);
        std::fs::write(&manifest, edited).unwrap();
        for refused in [
            reg.promote("m", 3, STAGING),
            reg.manifest("m", 3).map(|_| ()),
        ] {
            assert!(
                matches!(refused, Err(DeployError::Checksum { .. })),
                "{refused:?}"
            );
        }
        // Production was at 3: a rollback skips the broken 2 and lands on 1.
        assert_eq!(reg.rollback("m", PRODUCTION).unwrap(), 1);
        // No staging leftovers.
        let leftovers: Vec<_> = std::fs::read_dir(tmp.path().join("r/m"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().starts_with(".staging"))
            .collect();
        assert!(leftovers.is_empty());
    }

    /// `path`, a file or a directory, opened so that its times can be set (Windows opens a
    /// directory only with FILE_FLAG_BACKUP_SEMANTICS, and sets times only with write access).
    fn writable(path: &Path) -> File {
        let mut options = File::options();
        #[cfg(windows)]
        {
            use std::os::windows::fs::OpenOptionsExt;
            const FILE_FLAG_BACKUP_SEMANTICS: u32 = 0x0200_0000;
            options.write(true).custom_flags(FILE_FLAG_BACKUP_SEMANTICS);
        }
        #[cfg(not(windows))]
        options.read(true);
        options.open(path).unwrap()
    }

    #[test]
    fn stale_staging_directories_are_removed_and_fresh_ones_kept() {
        let tmp = tempfile::tempdir().unwrap();
        let reg = LocalRegistry::new(tmp.path());
        reg.register("m", &artifact(vec![1])).unwrap();
        // A killed writer's leftover (an hour old) and one of a writer still at work.
        let (stale, fresh) = (
            tmp.path().join("m/.staging-999999-0"),
            tmp.path().join("m/.staging-999999-1"),
        );
        for dir in [&stale, &fresh] {
            saved(dir, vec![9]);
        }
        let stale_aliases = tmp.path().join("m/aliases.tmp.999999");
        std::fs::write(&stale_aliases, b"{").unwrap();
        let old = std::time::SystemTime::now() - STALE_STAGING - std::time::Duration::from_secs(5);
        for path in [&stale, &stale_aliases] {
            writable(path).set_modified(old).unwrap();
        }
        assert_eq!(reg.register("m", &artifact(vec![2])).unwrap(), 2);
        assert!(!stale.exists());
        assert!(!stale_aliases.exists());
        assert!(fresh.join("weights.bpk").exists());
        assert_eq!(reg.versions("m").unwrap(), [1, 2]);
    }

    #[test]
    fn concurrent_writers_get_distinct_versions_and_lose_no_promotion() {
        let tmp = tempfile::tempdir().unwrap();
        let reg = LocalRegistry::new(tmp.path());
        let versions: Vec<u64> = std::thread::scope(|s| {
            let handles: Vec<_> = (0..16u8)
                .map(|w| {
                    let reg = reg.clone();
                    s.spawn(move || {
                        let v = reg.register("m", &artifact(vec![w])).unwrap();
                        reg.promote("m", v, PRODUCTION).unwrap();
                        v
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        let mut sorted = versions.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (1..=16).collect::<Vec<u64>>());
        assert_eq!(reg.versions("m").unwrap(), sorted);
        // Every promotion is in the history: 15 rollbacks walk back through all of them.
        let mut seen = vec![reg.resolve("m", PRODUCTION).unwrap()];
        while let Ok(v) = reg.rollback("m", PRODUCTION) {
            seen.push(v);
        }
        seen.sort_unstable();
        assert_eq!(seen, sorted);
    }

    #[test]
    fn the_deployer_registers_and_promotes_to_its_alias() {
        let tmp = tempfile::tempdir().unwrap();
        let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
        saved(&a, vec![1]);
        saved(&b, vec![2]);
        let deployer = LocalRegistryDeployer::new(tmp.path().join("registry"));
        assert_eq!(deployer.deploy("wine", &a).unwrap().version, 1);
        assert_eq!(deployer.deploy("wine", &b).unwrap().version, 2);
        let reg = deployer.registry();
        assert_eq!(reg.resolve("wine", PRODUCTION).unwrap(), 2);
        assert_eq!(deployer.rollback("wine").unwrap().version, 1);
        assert!(deployer.rollback("wine").is_err());
        let staging = deployer.clone().with_alias(STAGING).unwrap();
        assert_eq!(staging.deploy("wine", &b).unwrap().version, 3);
        assert_eq!(reg.resolve("wine", PRODUCTION).unwrap(), 1);
        assert_eq!(reg.resolve("wine", STAGING).unwrap(), 3);
        // A damaged artifact directory is refused before it is registered.
        std::fs::write(a.join("weights.bpk"), [9]).unwrap();
        assert!(deployer.deploy("wine", &a).is_err());
        assert_eq!(reg.versions("wine").unwrap(), [1, 2, 3]);
        // An alias that could not be set is refused before a version is made.
        let art = ModelArtifact::load(&b).unwrap();
        assert!(reg.register_and_promote("wine", &art, "v7").is_err());
        assert_eq!(reg.register_and_promote("wine", &art, STAGING).unwrap(), 4);
        assert_eq!(reg.versions("wine").unwrap(), [1, 2, 3, 4]);
        assert_eq!(reg.resolve("wine", STAGING).unwrap(), 4);
    }
}
