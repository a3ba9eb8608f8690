//! MNIST and Fashion-MNIST: the four IDX files of MNIST's layout, read from a local
//! directory (or, with the `download` feature, fetched from public mirrors into the cache
//! directory first) and verified against their published SHA-256 digests.

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

use crate::error::{DataError, Result};
use crate::idx::{decompress, parse_idx, read_file};
use crate::image::ImageDataset;

/// Which half of an MNIST-layout data set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MnistSplit {
    /// The 60,000 training images.
    Train,
    /// The 10,000 test images.
    Test,
}

/// What a file of a published set is checked against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Published {
    /// The SHA-256 of the uncompressed IDX bytes: MNIST's mirrors compress the same files
    /// differently, so only these bytes are the same everywhere.
    Uncompressed(&'static str),
    /// The SHA-256 of the gzip file as its authors publish it (Fashion-MNIST publishes no
    /// digest of the uncompressed bytes): a directory's `.gz` file is checked against it, a
    /// raw file only by its header and size.
    Gzip(&'static str),
}

/// One IDX file of a published set: its name without `.gz`, and its digest.
#[derive(Debug, Clone, Copy)]
pub(crate) struct IdxFile {
    pub(crate) stem: &'static str,
    pub(crate) digest: Published,
}

/// A data set in MNIST's layout: four IDX files, 10 classes, mirrors serving `STEM.gz`.
#[derive(Debug)]
pub(crate) struct IdxSet {
    pub(crate) name: &'static str,
    /// Its folder under `$LEPTON_DATA_DIR` and the cache directory.
    pub(crate) folder: &'static str,
    pub(crate) train: [IdxFile; 2],
    pub(crate) test: [IdxFile; 2],
    pub(crate) mirrors: &'static [&'static str],
}

impl IdxSet {
    fn files(&self, split: MnistSplit) -> [IdxFile; 2] {
        match split {
            MnistSplit::Train => self.train,
            MnistSplit::Test => self.test,
        }
    }

    pub(crate) fn all_files(&self) -> impl Iterator<Item = IdxFile> + '_ {
        self.train.iter().chain(&self.test).copied()
    }

    /// `$LEPTON_DATA_DIR/FOLDER` (relative to the working directory when relative), then
    /// `$XDG_CACHE_HOME/lepton/FOLDER` or `~/.cache/lepton/FOLDER`, the cache a download
    /// fills.
    fn dirs(&self) -> Vec<PathBuf> {
        let mut dirs = Vec::new();
        if let Some(root) = std::env::var_os("LEPTON_DATA_DIR") {
            dirs.push(PathBuf::from(root).join(self.folder));
        }
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")));
        if let Some(cache) = cache {
            dirs.push(cache.join("lepton").join(self.folder));
        }
        dirs
    }

    /// The split from the first of [`IdxSet::dirs`] that has its two files; without one,
    /// downloaded into the cache directory (with the `download` feature) or an error that
    /// says where to put the files.
    fn split(&self, split: MnistSplit) -> Result<ImageDataset> {
        let dirs = self.dirs();
        let has = |dir: &Path| {
            self.files(split)
                .iter()
                .all(|f| find(dir, f.stem).is_some())
        };
        if let Some(dir) = dirs.iter().find(|d| has(d)) {
            return self.load(dir, split);
        }
        let searched: Vec<String> = dirs.iter().map(|d| d.display().to_string()).collect();
        let stems: Vec<&str> = self.all_files().map(|f| f.stem).collect();
        let hint = format!(
            "looked in [{}]. Put the IDX files {} (raw or .gz) in the last of these \
             directories, or set LEPTON_DATA_DIR to a directory with a `{}/` folder holding them",
            searched.join(", "),
            stems.join(", "),
            self.folder
        );
        self.missing(dirs.last(), split, hint)
    }

    /// The split downloaded into `cache` (the last directory searched), or an error that
    /// says why not and gives `hint`.
    #[cfg(feature = "download")]
    fn missing(
        &self,
        cache: Option<&PathBuf>,
        split: MnistSplit,
        hint: String,
    ) -> Result<ImageDataset> {
        let Some(cache) = cache else {
            return Err(self.not_found(format!(
                "{hint}; no cache directory to download into (HOME is unset)"
            )));
        };
        super::download::download_set(self, cache, self.mirrors)
            .map_err(|e| self.not_found(format!("{e}; {hint}")))?;
        self.load(cache, split)
    }

    /// Without the `download` feature: an error that gives `hint`.
    #[cfg(not(feature = "download"))]
    fn missing(
        &self,
        _cache: Option<&PathBuf>,
        _split: MnistSplit,
        hint: String,
    ) -> Result<ImageDataset> {
        Err(self.not_found(format!(
            "{hint} (or build with the `download` feature to fetch them from {})",
            self.mirrors.join(" or ")
        )))
    }

    fn not_found(&self, hint: String) -> DataError {
        DataError::DatasetMissing {
            name: self.name.into(),
            hint,
        }
    }

    fn load(&self, dir: &Path, split: MnistSplit) -> Result<ImageDataset> {
        load(dir, split, Some(self.files(split)))
    }
}

/// MNIST (Yann LeCun and Corinna Cortes): SHA-256 of the uncompressed files.
pub(crate) const MNIST: IdxSet = IdxSet {
    name: "MNIST",
    folder: "mnist",
    train: [
        IdxFile {
            stem: "train-images-idx3-ubyte",
            digest: Published::Uncompressed(
                "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
            ),
        },
        IdxFile {
            stem: "train-labels-idx1-ubyte",
            digest: Published::Uncompressed(
                "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
            ),
        },
    ],
    test: [
        IdxFile {
            stem: "t10k-images-idx3-ubyte",
            digest: Published::Uncompressed(
                "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
            ),
        },
        IdxFile {
            stem: "t10k-labels-idx1-ubyte",
            digest: Published::Uncompressed(
                "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
            ),
        },
    ],
    mirrors: MNIST_MIRRORS,
};

/// The public mirrors MNIST is downloaded from, in order (torchvision's and TensorFlow's).
pub const MNIST_MIRRORS: &[&str] = &[
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
];

/// Fashion-MNIST (Han Xiao, Kashif Rasul and Roland Vollgraf, Zalando Research, MIT
/// licence): SHA-256 of the gzip files as published.
pub(crate) const FASHION_MNIST: IdxSet = IdxSet {
    name: "Fashion-MNIST",
    folder: "fashion-mnist",
    train: [
        IdxFile {
            stem: "train-images-idx3-ubyte",
            digest: Published::Gzip(
                "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84",
            ),
        },
        IdxFile {
            stem: "train-labels-idx1-ubyte",
            digest: Published::Gzip(
                "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845",
            ),
        },
    ],
    test: [
        IdxFile {
            stem: "t10k-images-idx3-ubyte",
            digest: Published::Gzip(
                "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073",
            ),
        },
        IdxFile {
            stem: "t10k-labels-idx1-ubyte",
            digest: Published::Gzip(
                "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5",
            ),
        },
    ],
    mirrors: FASHION_MNIST_MIRRORS,
};

/// The public mirrors Fashion-MNIST is downloaded from, in order (its authors' and Keras').
pub const FASHION_MNIST_MIRRORS: &[&str] = &[
    "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
    "https://storage.googleapis.com/tensorflow/tf-keras-datasets/",
];

/// The directories [`mnist`] searches, in order: `$LEPTON_DATA_DIR/mnist` (relative to the
/// working directory when relative), then `$XDG_CACHE_HOME/lepton/mnist` or
/// `~/.cache/lepton/mnist`, the cache a download fills.
pub fn mnist_dirs() -> Vec<PathBuf> {
    MNIST.dirs()
}

/// MNIST's training or test split: 28x28 greyscale digits, classes `0` to `9`, pixels in
/// `[0, 1]`. Reads the four IDX files (raw or gzip) from the first of [`mnist_dirs`] that has
/// them, and verifies the SHA-256 of their uncompressed bytes. Where none has them, the
/// `download` feature fetches them from [`MNIST_MIRRORS`] into the last (the cache); without
/// it, or offline, the error says which directory to fill.
pub fn mnist(split: MnistSplit) -> Result<ImageDataset> {
    MNIST.split(split)
}

/// The directories [`fashion_mnist`] searches, as [`mnist_dirs`] with a `fashion-mnist`
/// folder.
pub fn fashion_mnist_dirs() -> Vec<PathBuf> {
    FASHION_MNIST.dirs()
}

/// Fashion-MNIST's training or test split: 28x28 greyscale clothes, classes `0` (T-shirt/top)
/// to `9` (ankle boot), pixels in `[0, 1]`. Found, or downloaded from
/// [`FASHION_MNIST_MIRRORS`], as [`mnist`] is; `.gz` files are verified against the published
/// SHA-256 digests of the gzip files.
pub fn fashion_mnist(split: MnistSplit) -> Result<ImageDataset> {
    FASHION_MNIST.split(split)
}

/// An MNIST-layout split (the four files named as MNIST's) from `dir`, such as Fashion-MNIST.
/// With `verify`, the files must be MNIST's own (SHA-256 checked); without, any image size is
/// accepted and the classes are `0` to the largest label.
pub fn mnist_from_dir(
    dir: impl AsRef<Path>,
    split: MnistSplit,
    verify: bool,
) -> Result<ImageDataset> {
    if verify {
        MNIST.load(dir.as_ref(), split)
    } else {
        load(dir.as_ref(), split, None)
    }
}

/// The IDX bytes of `file` read from `path` as `bytes` (raw or gzip), checked against its
/// published digest: the gzip file's before it is decompressed, the IDX bytes' after. A raw
/// file of a set published compressed has no digest to meet: its header and size are checked
/// when it is loaded.
pub(crate) fn verified(file: &IdxFile, path: &str, bytes: Vec<u8>) -> Result<Vec<u8>> {
    if let Published::Gzip(expected) = file.digest
        && bytes.starts_with(&[0x1f, 0x8b])
    {
        meets(path, expected, &bytes)?;
    }
    let raw = decompress(path, bytes)?;
    if let Published::Uncompressed(expected) = file.digest {
        meets(path, expected, &raw)?;
    }
    Ok(raw)
}

/// Whether the SHA-256 of `bytes` is `expected`.
fn meets(path: &str, expected: &str, bytes: &[u8]) -> Result<()> {
    let found: String = Sha256::digest(bytes)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    if found == expected {
        Ok(())
    } else {
        Err(DataError::Checksum {
            path: path.to_owned(),
            expected: expected.to_owned(),
            found,
        })
    }
}

fn find(dir: &Path, stem: &str) -> Option<PathBuf> {
    [stem.to_owned(), format!("{stem}.gz")]
        .into_iter()
        .map(|name| dir.join(name))
        .find(|p| p.is_file())
}

/// `split`'s two files from `dir`. With the `published` files, each is checked against its
/// digest, and the split against the published shape (28x28 images, 60,000 or 10,000 of
/// them, 10 classes); without, any image size is accepted and the classes are `0` to the
/// largest label.
fn load(dir: &Path, split: MnistSplit, published: Option<[IdxFile; 2]>) -> Result<ImageDataset> {
    let files = published.unwrap_or_else(|| MNIST.files(split));
    let [images, labels] = files.map(|file| {
        let stem = file.stem;
        let path = find(dir, stem).ok_or_else(|| DataError::DatasetMissing {
            name: stem.to_owned(),
            hint: format!("no {stem} or {stem}.gz in {}", dir.display()),
        })?;
        let name = path.display().to_string();
        let bytes = read_file(&path)?;
        let raw = match published {
            Some(_) => verified(&file, &name, bytes)?,
            None => decompress(&name, bytes)?,
        };
        parse_idx(&name, &raw)
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
    let n_classes = if published.is_some() {
        let expected = match split {
            MnistSplit::Train => 60_000,
            MnistSplit::Test => 10_000,
        };
        if (count, height, width) != (expected, 28, 28) {
            return Err(DataError::InvalidInput(format!(
                "{} holds {count} images of {height}x{width}, not the published {expected} of \
                 28x28",
                dir.display()
            )));
        }
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

    #[test]
    fn real_mnist_has_the_published_counts() {
        let Some(dir) = crate::test_data::shared_data("mnist") else {
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
