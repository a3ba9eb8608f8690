//! The model registry: named models, each a list of numbered, immutable versions, and aliases
//! (`production`, `staging`, ...) that point at one version each and remember where they
//! pointed before, so that a promotion can be rolled back.

use std::collections::BTreeMap;

use crate::artifact::{Manifest, ModelArtifact};
use crate::error::{DeployError, Result};

/// The alias a deployment serves by default.
pub const PRODUCTION: &str = "production";
/// The alias for a candidate under evaluation.
pub const STAGING: &str = "staging";

/// A store of versioned model artifacts. [`LocalRegistry`](crate::LocalRegistry) keeps them on
/// the local file system; another backend (an object store) implements the same trait.
///
/// Every implementation verifies an artifact (format, checksums, schema) before registering
/// or promoting it, numbers versions from 1 without gaps or repeats however many writers
/// register at once, and validates names (letters, digits, `-`, `_`; 1 to 64 characters).
pub trait Registry: Send + Sync {
    /// Stores `artifact` as the next version of `name` (creating the model) and returns the
    /// version number. No alias moves.
    fn register(&self, name: &str, artifact: &ModelArtifact) -> Result<u64>;
    /// Every model name, sorted.
    fn models(&self) -> Result<Vec<String>>;
    /// The versions of `name`, ascending (empty for an unknown model).
    fn versions(&self, name: &str) -> Result<Vec<u64>>;
    /// Version `version` of `name`, verified.
    fn get(&self, name: &str, version: u64) -> Result<ModelArtifact>;
    /// The manifest of version `version` of `name`, without reading or verifying its files
    /// (for listings).
    fn manifest(&self, name: &str, version: u64) -> Result<Manifest> {
        Ok(self.get(name, version)?.manifest().clone())
    }
    /// The version each alias of `name` points at.
    fn aliases(&self, name: &str) -> Result<BTreeMap<String, u64>>;
    /// Points `alias` of `name` at `version` (which must exist and load), remembering the
    /// version it pointed at before.
    fn promote(&self, name: &str, version: u64, alias: &str) -> Result<()>;
    /// Registers `artifact` as the next version of `name` and points `alias` at it; returns
    /// the version. An implementation that verified the version while registering it need
    /// not verify it again before the alias moves.
    fn register_and_promote(
        &self,
        name: &str,
        artifact: &ModelArtifact,
        alias: &str,
    ) -> Result<u64> {
        let version = self.register(name, artifact)?;
        self.promote(name, version, alias)?;
        Ok(version)
    }
    /// As [`register_and_promote`](Self::register_and_promote), but the alias moves only if
    /// it still points at `expected` ([`DeployError::AliasMoved`] otherwise; the version stays
    /// registered): for a promotion decided on what the alias pointed at a while ago (a
    /// candidate learned online), which must not overwrite an operator's promotion or
    /// rollback made meanwhile. The default checks, then promotes, which is not atomic; a
    /// registry that can, checks under the lock it promotes under.
    fn register_and_promote_if(
        &self,
        name: &str,
        artifact: &ModelArtifact,
        alias: &str,
        expected: u64,
    ) -> Result<u64> {
        let version = self.register(name, artifact)?;
        let found = self.aliases(name)?.get(alias).copied();
        if found != Some(expected) {
            return Err(DeployError::AliasMoved {
                name: name.to_owned(),
                alias: alias.to_owned(),
                expected,
                found,
            });
        }
        self.promote(name, version, alias)?;
        Ok(version)
    }

    /// Points `alias` of `name` back at the version it pointed at before the last promotion
    /// (skipping versions that no longer load) and returns it.
    fn rollback(&self, name: &str, alias: &str) -> Result<u64>;

    /// Deletes version `version` of `name` for good (the server's garbage collection of
    /// versions it learned). Refused ([`DeployError::Kept`]) for a version an alias points at
    /// and for the latest version, so that numbers are never given twice; an alias's history
    /// forgets it, as a rollback skips it. A registry that keeps every version refuses all.
    fn remove(&self, name: &str, version: u64) -> Result<()> {
        Err(DeployError::Kept {
            name: name.to_owned(),
            version,
            why: "this registry keeps every version".into(),
        })
    }

    /// The version a reference names: a version number (`3` or `v3`), `latest`, or an alias.
    fn resolve(&self, name: &str, reference: &str) -> Result<u64> {
        if let Some(version) = version_number(reference) {
            return if self.versions(name)?.contains(&version) {
                Ok(version)
            } else {
                Err(DeployError::UnknownVersion {
                    name: name.to_owned(),
                    version: reference.to_owned(),
                })
            };
        }
        let found = if reference == "latest" {
            self.versions(name)?.last().copied()
        } else {
            self.aliases(name)?.get(reference).copied()
        };
        found.ok_or_else(|| DeployError::UnknownVersion {
            name: name.to_owned(),
            version: reference.to_owned(),
        })
    }
}

/// The version number a reference spells as `3` or `v3`, if it is one.
pub(crate) fn version_number(reference: &str) -> Option<u64> {
    reference
        .strip_prefix('v')
        .unwrap_or(reference)
        .parse()
        .ok()
}

/// The most characters of a model or alias name.
const MAX_NAME: usize = 64;

fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// Whether `name` may name a model or an alias: 1 to 64 ASCII letters, digits, `-` or `_`
/// (nothing that could leave the registry's directory).
pub fn check_name(name: &str) -> Result<()> {
    let ok = !name.is_empty() && name.len() <= MAX_NAME && name.chars().all(name_char);
    if ok {
        Ok(())
    } else {
        Err(DeployError::InvalidName(name.to_owned()))
    }
}

/// A model name made from any text (a data file's or a directory's name) that
/// [`check_name`] accepts: other characters become `_`, at most 64 are kept, and empty text
/// gives `fallback`.
pub fn name_from(text: &str, fallback: &str) -> String {
    let name: String = text
        .chars()
        .map(|c| if name_char(c) { c } else { '_' })
        .take(MAX_NAME)
        .collect();
    if name.is_empty() {
        fallback.to_owned()
    } else {
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_made_from_text_are_valid_names() {
        assert_eq!(name_from("breast_cancer", "model"), "breast_cancer");
        assert_eq!(name_from("fashion mnist.v2", "model"), "fashion_mnist_v2");
        assert_eq!(name_from("", "model"), "model");
        let long = name_from(&"é".repeat(100), "model");
        assert_eq!(long, "_".repeat(64));
        for text in ["a/../b", "données", &"x".repeat(200)] {
            assert!(check_name(&name_from(text, "model")).is_ok(), "{text}");
        }
    }
}
