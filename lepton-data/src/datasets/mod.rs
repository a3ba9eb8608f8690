//! Data sets by name: small classic tables compiled into the crate (no file, no path;
//! provenance and licences in this crate's `data/README.md`), and MNIST and Fashion-MNIST
//! read from a local directory (downloaded there first with the `download` feature) and
//! verified.

#[cfg(feature = "download")]
mod download;
#[cfg(all(test, feature = "download"))]
mod download_tests;
mod mnist;

#[cfg(feature = "download")]
pub use download::{download_fashion_mnist, download_mnist};
pub use mnist::{
    FASHION_MNIST_MIRRORS, MNIST_MIRRORS, MnistSplit, fashion_mnist, fashion_mnist_dirs, mnist,
    mnist_dirs, mnist_from_dir,
};

use crate::csv_loader::CsvLoader;
use crate::error::Result;
use crate::table::Table;
use crate::tabular::TabularDataset;

const IRIS: &str = include_str!("../../data/iris.csv");
const WINE: &str = include_str!("../../data/wine.csv");
const BREAST_CANCER: &str = include_str!("../../data/breast_cancer.csv");

fn embedded(name: &str, text: &'static str) -> Result<TabularDataset> {
    CsvLoader::new(format!("<embedded {name}>")).load_from(text.as_bytes())
}

fn embedded_table(name: &str, text: &'static str) -> Result<Table> {
    CsvLoader::new(format!("<embedded {name}>")).read_table_from(text.as_bytes())
}

/// One of the embedded data sets (`iris`, `wine`, `breast_cancer`) as a raw [`Table`], the
/// input of a [`Preprocessor`](crate::Preprocessor); the target column is `target`.
pub fn table(name: &str) -> Result<Table> {
    match name {
        "iris" => embedded_table("iris.csv", IRIS),
        "wine" => embedded_table("wine.csv", WINE),
        "breast_cancer" => embedded_table("breast_cancer.csv", BREAST_CANCER),
        other => Err(crate::error::DataError::InvalidInput(format!(
            "no embedded data set `{other}` (there are iris, wine, breast_cancer)"
        ))),
    }
}

/// Fisher's iris: 150 flowers, 4 measurements, 3 species.
pub fn iris() -> Result<TabularDataset> {
    embedded("iris.csv", IRIS)
}

/// Wine recognition: 178 wines, 13 chemical measurements, 3 cultivars.
pub fn wine() -> Result<TabularDataset> {
    embedded("wine.csv", WINE)
}

/// Breast cancer Wisconsin (diagnostic): 569 tumours, 30 features, malignant (0) or benign (1).
pub fn breast_cancer() -> Result<TabularDataset> {
    embedded("breast_cancer.csv", BREAST_CANCER)
}

#[cfg(test)]
mod tests {
    use super::*;
    use lepton_core::Dataset;

    #[test]
    fn shapes_and_classes() {
        for (d, rows, width, classes) in [
            (iris().unwrap(), 150, 4, 3),
            (wine().unwrap(), 178, 13, 3),
            (breast_cancer().unwrap(), 569, 30, 2),
        ] {
            assert_eq!(d.len(), rows);
            assert_eq!(d.n_features(), width);
            assert_eq!(d.schema().n_classes(), Some(classes));
        }
    }

    #[test]
    fn tables_by_name() {
        let t = table("wine").unwrap();
        assert_eq!((t.n_rows(), t.names().len()), (178, 14));
        let (labels, classes) = t.class_indices("target").unwrap();
        assert_eq!(classes, ["0", "1", "2"]);
        assert_eq!(labels.iter().filter(|&&l| l == 1).count(), 71);
        assert!(table("titanic").is_err());
    }

    #[test]
    fn embedded_copies_match_the_shared_data_when_present() {
        let Some(dir) = crate::test_data::shared_data("tabular") else {
            return;
        };
        for (name, d) in [
            ("iris", iris()),
            ("wine", wine()),
            ("breast_cancer", breast_cancer()),
        ] {
            let shared = CsvLoader::new(dir.join(format!("{name}.csv")))
                .load()
                .unwrap();
            assert_eq!(
                d.unwrap().feature_values(),
                shared.feature_values(),
                "{name}"
            );
        }
    }
}
