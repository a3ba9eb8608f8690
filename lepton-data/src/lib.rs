//! Lepton's data stage: load tabular data (CSV), images (IDX, MNIST) and text corpora, scale,
//! split.
//!
//! ```
//! use lepton_core::Dataset;
//! use lepton_data::{datasets, stratified_split, StandardScaler};
//!
//! let wine = datasets::wine()?;
//! let (train, test) = stratified_split(&wine, 0.2, 7)?;
//! let scaler = StandardScaler.fit(&train)?;          // fitted on training rows only
//! let (train, test) = (scaler.transform(&train)?, scaler.transform(&test)?);
//! assert_eq!(train.len() + test.len(), 178);
//! # Ok::<(), lepton_data::DataError>(())
//! ```

mod csv_loader;
mod csv_table;
pub mod datasets;
mod error;
mod idx;
mod image;
mod preprocessor;
mod split;
mod standard_scaler;
mod table;
mod tabular;
#[cfg(test)]
mod test_data;
mod text_corpus;
mod tfidf;

pub use csv_loader::CsvLoader;
pub use error::{DataError, Result};
pub use idx::{IdxArray, parse_idx, read_idx};
pub use image::ImageDataset;
/// The ndarray version `TabularDataset::from_ndarray` takes.
pub use ndarray;
pub use preprocessor::{
    CategoricalEncoding, Clipping, FittedPreprocessor, Imputation, Preprocessor, Scaling,
    TargetKind, UnknownCategory,
};
pub use split::{
    SplitIndices, group_kfold_indices, holdout_indices, holdout_split, kfold_indices,
    stratified_holdout_indices, stratified_kfold, stratified_kfold_indices, stratified_split,
};
pub use standard_scaler::{FittedStandardScaler, StandardScaler};
pub use table::{Column, ColumnType, Table};
pub use tabular::TabularDataset;
pub use text_corpus::{MAX_DOCUMENT_BYTES, TextCorpus};
pub use tfidf::{Analyzer, FittedTfidf, SparseRows, Tfidf};
