//! The shared data sets the data-backed tests read.

use std::path::{Path, PathBuf};

/// `$LEPTON_DATA_DIR/sub` (relative to the workspace when relative), or `None`, saying that
/// the test skips, when `LEPTON_DATA_DIR` is unset (CI sets it).
pub(crate) fn shared_data(sub: &str) -> Option<PathBuf> {
    let Some(root) = std::env::var_os("LEPTON_DATA_DIR") else {
        eprintln!("LEPTON_DATA_DIR unset: skipping a test that reads {sub}");
        return None;
    };
    let root = PathBuf::from(root);
    let root = if root.is_absolute() {
        root
    } else {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(root)
    };
    Some(root.join(sub))
}
