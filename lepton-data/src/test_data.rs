//! The shared data sets the data-backed tests read.

use std::path::{Path, PathBuf};

/// `$LEPTON_DATA_DIR/sub` (relative to the workspace when relative), or `None`, saying that
/// the test skips, when `LEPTON_DATA_DIR` is unset (CI sets it).
pub(crate) fn shared_data(sub: &str) -> Option<PathBuf> {
    let root = lepton_test_support::env_or_skip("LEPTON_DATA_DIR", &format!("a test of {sub}"))?;
    let root = PathBuf::from(root);
    let root = if root.is_absolute() {
        root
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(root)
    };
    Some(root.join(sub))
}
