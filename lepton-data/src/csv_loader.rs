//! Loading a numeric CSV with a target column.

use std::io::Read;
use std::path::Path;

use lepton_core::{Schema, Target, Task};

use crate::error::{DataError, Result};
use crate::tabular::TabularDataset;

/// The texts read as a missing value by default, compared after trimming and ignoring case.
/// `NaN` is one: a table's `NaN` is a value nobody measured, as in pandas, and a fitted
/// preprocessor imputes it as it imputes an empty cell, in training and in serving alike.
pub(crate) const MISSING_TOKENS: [&str; 6] = ["", "NA", "N/A", "?", "null", "NaN"];

/// Loads a CSV file with a header row into a [`TabularDataset`]: every column but the target
/// is a numeric feature; the target holds class labels (any text) or, for regression, numbers.
///
/// ```no_run
/// use lepton_data::CsvLoader;
///
/// let data = CsvLoader::new("wine.csv").with_target("target").load()?;
/// # Ok::<(), lepton_data::DataError>(())
/// ```
#[derive(Debug, Clone)]
pub struct CsvLoader {
    pub(crate) path: String,
    target: String,
    regression: bool,
    pub(crate) delimiter: u8,
    pub(crate) has_header: bool,
    pub(crate) missing_tokens: Vec<String>,
    pub(crate) types: std::collections::BTreeMap<String, crate::table::ColumnType>,
}

impl CsvLoader {
    /// A loader for the file at `path`, with target column `target` and classification task.
    pub fn new(path: impl AsRef<Path>) -> Self {
        CsvLoader {
            path: path.as_ref().display().to_string(),
            target: "target".into(),
            regression: false,
            delimiter: b',',
            has_header: true,
            missing_tokens: MISSING_TOKENS.map(String::from).to_vec(),
            types: std::collections::BTreeMap::new(),
        }
    }

    /// Whether the first row names the columns (default `true`). Without a header, columns
    /// are named `c0`, `c1`, ... (`read_table` only).
    pub fn with_header(mut self, has_header: bool) -> Self {
        self.has_header = has_header;
        self
    }

    /// The texts that mean "missing" (default `""`, `NA`, `N/A`, `?`, `null`, `NaN`; compared
    /// after trimming, ignoring case) (`read_table` only).
    pub fn with_missing_tokens<S: Into<String>>(
        mut self,
        tokens: impl IntoIterator<Item = S>,
    ) -> Self {
        self.missing_tokens = tokens.into_iter().map(Into::into).collect();
        self
    }

    /// Forces a column's type instead of inferring it (`read_table` only).
    pub fn with_column_type(
        mut self,
        column: impl Into<String>,
        ty: crate::table::ColumnType,
    ) -> Self {
        self.types.insert(column.into(), ty);
        self
    }

    /// Sets the target column's name (default `target`).
    pub fn with_target(mut self, column: impl Into<String>) -> Self {
        self.target = column.into();
        self
    }

    /// Treats the target as a real number (regression) instead of class labels.
    pub fn with_regression(mut self, regression: bool) -> Self {
        self.regression = regression;
        self
    }

    /// Sets the field delimiter (default `,`).
    pub fn with_delimiter(mut self, delimiter: u8) -> Self {
        self.delimiter = delimiter;
        self
    }

    /// Reads and parses the file.
    pub fn load(&self) -> Result<TabularDataset> {
        let file = std::fs::File::open(&self.path).map_err(|source| DataError::Io {
            path: self.path.clone(),
            source,
        })?;
        self.load_from(file)
    }

    /// Parses CSV text from any reader; errors name the loader's path.
    pub fn load_from(&self, reader: impl Read) -> Result<TabularDataset> {
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(self.delimiter)
            .from_reader(reader);
        let mut records = csv.records();
        let header = match records.next() {
            None => {
                return Err(DataError::Empty {
                    path: self.path.clone(),
                    what: "the file is empty (no header row)",
                });
            }
            Some(r) => r.map_err(|e| self.csv_error(&e))?,
        };
        let columns: Vec<String> = header.iter().map(|c| c.trim().to_owned()).collect();
        let target_idx = columns
            .iter()
            .position(|c| *c == self.target)
            .ok_or_else(|| DataError::MissingTarget {
                path: self.path.clone(),
                column: self.target.clone(),
                available: columns.join(", "),
            })?;
        let features: Vec<String> = columns
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != target_idx)
            .map(|(_, c)| c.clone())
            .collect();

        let mut values = Vec::new();
        let mut raw_targets: Vec<(String, u64)> = Vec::new();
        for record in records {
            let record = record.map_err(|e| self.csv_error(&e))?;
            let line = record.position().map_or(0, |p| p.line());
            if record.len() != columns.len() {
                return Err(DataError::RaggedRow {
                    path: self.path.clone(),
                    line,
                    expected: columns.len(),
                    found: record.len(),
                });
            }
            for (i, field) in record.iter().enumerate() {
                let field = field.trim();
                if i == target_idx {
                    if field.is_empty() {
                        return Err(DataError::MissingValue {
                            path: self.path.clone(),
                            line,
                            column: columns[i].clone(),
                        });
                    }
                    raw_targets.push((field.to_owned(), line));
                } else {
                    values.push(self.parse_feature(field, line, &columns[i])?);
                }
            }
        }
        if raw_targets.is_empty() {
            return Err(DataError::Empty {
                path: self.path.clone(),
                what: "the file has a header but no data rows",
            });
        }
        let (task, targets) = if self.regression {
            let targets = raw_targets
                .iter()
                .map(|(t, line)| match t.parse::<f64>() {
                    Ok(v) if v.is_finite() => Ok(Target::Value(v)),
                    _ => Err(DataError::NotNumeric {
                        path: self.path.clone(),
                        line: *line,
                        column: self.target.clone(),
                        value: t.clone(),
                    }),
                })
                .collect::<Result<Vec<_>>>()?;
            (Task::Regression, targets)
        } else {
            let labels: Vec<&str> = raw_targets.iter().map(|(t, _)| t.as_str()).collect();
            let classes = crate::table::sorted_labels(&labels);
            let index: std::collections::HashMap<&str, usize> = classes
                .iter()
                .enumerate()
                .map(|(i, c)| (c.as_str(), i))
                .collect();
            let targets = labels
                .iter()
                .map(|t| Target::Class(index.get(t).copied().unwrap_or(0)))
                .collect();
            (Task::Classification { classes }, targets)
        };
        let schema = Schema {
            features,
            target: self.target.clone(),
            task,
        };
        TabularDataset::new(schema, values, targets)
    }

    fn parse_feature(&self, field: &str, line: u64, column: &str) -> Result<f32> {
        if field.is_empty() {
            return Err(DataError::MissingValue {
                path: self.path.clone(),
                line,
                column: column.to_owned(),
            });
        }
        match field.parse::<f32>() {
            Ok(v) if v.is_finite() => Ok(v),
            Ok(_) => Err(DataError::NonFinite {
                path: self.path.clone(),
                line,
                column: column.to_owned(),
                value: field.to_owned(),
            }),
            Err(_) => Err(DataError::NotNumeric {
                path: self.path.clone(),
                line,
                column: column.to_owned(),
                value: field.to_owned(),
            }),
        }
    }

    pub(crate) fn csv_error(&self, e: &csv::Error) -> DataError {
        DataError::Csv {
            path: self.path.clone(),
            line: e.position().map_or(0, |p| p.line()),
            message: e.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lepton_core::Dataset;

    fn load(text: &[u8]) -> Result<TabularDataset> {
        CsvLoader::new("test.csv").load_from(text)
    }

    #[test]
    fn loads_features_and_string_labels() {
        let d = load(b"a,b,target\n1,2,cat\n3,4.5,dog\n5,6,cat\n").unwrap();
        assert_eq!(d.len(), 3);
        assert_eq!(d.schema().features, vec!["a", "b"]);
        assert_eq!(d.features(1), Some(&[3.0, 4.5][..]));
        assert_eq!(d.target(1), Some(Target::Class(1)));
        assert_eq!(
            d.schema().task,
            Task::Classification {
                classes: vec!["cat".into(), "dog".into()]
            }
        );
    }

    #[test]
    fn numeric_labels_sort_numerically() {
        let d = load(b"x,target\n1,10\n2,9\n3,2\n").unwrap();
        assert_eq!(
            d.schema().task,
            Task::Classification {
                classes: vec!["2".into(), "9".into(), "10".into()]
            }
        );
    }

    #[test]
    fn target_may_be_any_column() {
        let d = CsvLoader::new("t.csv")
            .with_target("y")
            .with_regression(true)
            .load_from(&b"y,x\n1.5,2\n"[..])
            .unwrap();
        assert_eq!(d.target(0), Some(Target::Value(1.5)));
        assert_eq!(d.features(0), Some(&[2.0][..]));
    }

    #[test]
    fn ragged_row_names_file_and_line() {
        let e = load(b"a,b,target\n1,2,x\n1,x\n").unwrap_err();
        assert!(matches!(
            e,
            DataError::RaggedRow {
                line: 3,
                expected: 3,
                found: 2,
                ..
            }
        ));
        assert!(e.to_string().contains("test.csv, line 3"), "{e}");
    }

    #[test]
    fn non_numeric_value_names_the_column() {
        let e = load(b"a,b,target\n1,2,x\n1,oops,y\n").unwrap_err();
        match &e {
            DataError::NotNumeric {
                line,
                column,
                value,
                ..
            } => {
                assert_eq!((*line, column.as_str(), value.as_str()), (3, "b", "oops"));
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn nan_feature_is_refused() {
        let e = load(b"a,target\nNaN,x\n").unwrap_err();
        assert!(matches!(e, DataError::NonFinite { line: 2, .. }), "{e:?}");
        let e = load(b"a,target\ninf,x\n").unwrap_err();
        assert!(matches!(e, DataError::NonFinite { .. }), "{e:?}");
    }

    #[test]
    fn empty_inputs_are_refused() {
        assert!(matches!(load(b"").unwrap_err(), DataError::Empty { .. }));
        assert!(matches!(
            load(b"a,target\n").unwrap_err(),
            DataError::Empty { .. }
        ));
    }

    #[test]
    fn missing_target_column_lists_the_header() {
        let e = load(b"a,b\n1,2\n").unwrap_err();
        assert!(e.to_string().contains("no target column `target`"), "{e}");
        assert!(e.to_string().contains("a, b"), "{e}");
    }

    #[test]
    fn missing_values_are_refused() {
        assert!(matches!(
            load(b"a,target\n,x\n").unwrap_err(),
            DataError::MissingValue { .. }
        ));
        assert!(matches!(
            load(b"a,target\n1,\n").unwrap_err(),
            DataError::MissingValue { .. }
        ));
    }

    #[test]
    fn invalid_utf8_is_a_typed_error() {
        let e = load(b"a,target\n1,\xff\xfe\n").unwrap_err();
        assert!(matches!(e, DataError::Csv { .. }), "{e:?}");
    }

    #[test]
    fn missing_file_is_an_io_error() {
        let e = CsvLoader::new("/nonexistent/x.csv").load().unwrap_err();
        assert!(e.to_string().contains("/nonexistent/x.csv"), "{e}");
    }

    proptest::proptest! {
        #![proptest_config(proptest::test_runner::Config::with_cases(2000))]
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = load(&bytes);
        }
    }
}
