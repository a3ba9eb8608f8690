//! A raw table: named, typed columns with missing values, as read from a file, before any
//! cleaning or encoding.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use crate::error::{DataError, Result};

/// The type of a raw column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    /// Real numbers.
    Numeric,
    /// Text labels from a (usually small) set.
    Categorical,
    /// `true` / `false` (also `yes` / `no`, any case).
    Boolean,
}

/// One column's values; `None` is a missing value.
#[derive(Debug, Clone, PartialEq)]
pub enum Column {
    /// Numbers (finite).
    Numeric(Vec<Option<f64>>),
    /// Text labels.
    Categorical(Vec<Option<String>>),
    /// Booleans.
    Boolean(Vec<Option<bool>>),
}

impl Column {
    /// The column's type.
    pub fn column_type(&self) -> ColumnType {
        match self {
            Column::Numeric(_) => ColumnType::Numeric,
            Column::Categorical(_) => ColumnType::Categorical,
            Column::Boolean(_) => ColumnType::Boolean,
        }
    }

    /// Number of values, missing ones included.
    pub fn len(&self) -> usize {
        match self {
            Column::Numeric(v) => v.len(),
            Column::Categorical(v) => v.len(),
            Column::Boolean(v) => v.len(),
        }
    }

    /// Whether the column has no values.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Number of missing values.
    pub fn missing(&self) -> usize {
        match self {
            Column::Numeric(v) => v.iter().filter(|x| x.is_none()).count(),
            Column::Categorical(v) => v.iter().filter(|x| x.is_none()).count(),
            Column::Boolean(v) => v.iter().filter(|x| x.is_none()).count(),
        }
    }

    fn select(&self, rows: &[usize]) -> Column {
        match self {
            Column::Numeric(v) => Column::Numeric(rows.iter().map(|&r| v[r]).collect()),
            Column::Categorical(v) => {
                Column::Categorical(rows.iter().map(|&r| v[r].clone()).collect())
            }
            Column::Boolean(v) => Column::Boolean(rows.iter().map(|&r| v[r]).collect()),
        }
    }
}

/// Named columns of equal length. `source` names where the data came from, for errors.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    source: String,
    names: Vec<String>,
    columns: Vec<Column>,
}

impl Table {
    /// Builds a table; refuses duplicate names and columns of different lengths.
    pub fn new(source: impl Into<String>, columns: Vec<(String, Column)>) -> Result<Self> {
        let source = source.into();
        let rows = columns.first().map_or(0, |(_, c)| c.len());
        let mut names: Vec<String> = Vec::with_capacity(columns.len());
        let mut cols = Vec::with_capacity(columns.len());
        for (name, column) in columns {
            if names.contains(&name) {
                return Err(DataError::InvalidInput(format!(
                    "{source}: column `{name}` appears twice"
                )));
            }
            if column.len() != rows {
                return Err(DataError::InvalidInput(format!(
                    "{source}: column `{name}` has {} values, the first column {rows}",
                    column.len()
                )));
            }
            if let Column::Numeric(v) = &column
                && let Some(i) = v.iter().position(|x| x.is_some_and(|x| !x.is_finite()))
            {
                return Err(DataError::InvalidInput(format!(
                    "{source}: column `{name}`, row {i}: not finite"
                )));
            }
            names.push(name);
            cols.push(column);
        }
        Ok(Table {
            source,
            names,
            columns: cols,
        })
    }

    /// Where the data came from.
    pub fn source(&self) -> &str {
        &self.source
    }

    /// Number of rows.
    pub fn n_rows(&self) -> usize {
        self.columns.first().map_or(0, Column::len)
    }

    /// Column names, in order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The columns, in order.
    pub fn columns(&self) -> &[Column] {
        &self.columns
    }

    /// The column called `name`.
    pub fn column(&self, name: &str) -> Option<&Column> {
        self.names
            .iter()
            .position(|n| n == name)
            .map(|i| &self.columns[i])
    }

    /// The rows at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Result<Self> {
        if let Some(&bad) = indices.iter().find(|&&i| i >= self.n_rows()) {
            return Err(DataError::InvalidInput(format!(
                "{}: row {bad} is past the end ({} rows)",
                self.source,
                self.n_rows()
            )));
        }
        Ok(Table {
            source: self.source.clone(),
            names: self.names.clone(),
            columns: self.columns.iter().map(|c| c.select(indices)).collect(),
        })
    }

    /// This table with the values of column `name` taken from `rows` (row `i` gets the value
    /// of row `rows[i]`; the other columns stay): with a permutation, the column's link with
    /// the others is broken, as permutation importance needs.
    pub fn with_column_rows(&self, name: &str, rows: &[usize]) -> Result<Self> {
        let j = self.names.iter().position(|n| n == name).ok_or_else(|| {
            DataError::InvalidInput(format!("{}: no column `{name}`", self.source))
        })?;
        if rows.len() != self.n_rows() || rows.iter().any(|&r| r >= self.n_rows()) {
            return Err(DataError::InvalidInput(format!(
                "{}: {} row indices for {} rows, each below {}",
                self.source,
                rows.len(),
                self.n_rows(),
                self.n_rows()
            )));
        }
        let mut columns = self.columns.clone();
        columns[j] = self.columns[j].select(rows);
        Ok(Table {
            source: self.source.clone(),
            names: self.names.clone(),
            columns,
        })
    }

    /// The class index of every row of column `target` and the class labels (sorted as
    /// [`Preprocessor`](crate::Preprocessor) sorts them), for stratified splits of raw tables.
    /// A missing label is an error naming its row.
    pub fn class_indices(&self, target: &str) -> Result<(Vec<usize>, Vec<String>)> {
        let column = self
            .column(target)
            .ok_or_else(|| DataError::MissingTarget {
                path: self.source.clone(),
                column: target.to_owned(),
                available: self.names.join(", "),
            })?;
        let texts = target_texts(&self.source, target, column)?;
        let refs: Vec<&str> = texts.iter().map(String::as_str).collect();
        let classes = sorted_labels(&refs);
        let index: std::collections::HashMap<&str, usize> = classes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.as_str(), i))
            .collect();
        let labels = refs
            .iter()
            .map(|t| index.get(t).copied().unwrap_or(0))
            .collect();
        Ok((labels, classes))
    }

    /// Row indices without an exact duplicate earlier in the table (missing values compare
    /// equal to each other). Logs how many rows were duplicates.
    pub fn distinct_rows(&self) -> Vec<usize> {
        let mut seen = std::collections::HashSet::new();
        let mut keep = Vec::new();
        for r in 0..self.n_rows() {
            let key: Vec<String> = self
                .columns
                .iter()
                .map(|c| match c {
                    Column::Numeric(v) => v[r].map_or("\u{0}".into(), |x| x.to_bits().to_string()),
                    Column::Categorical(v) => {
                        v[r].clone().map_or("\u{0}".into(), |s| format!("s{s}"))
                    }
                    Column::Boolean(v) => v[r].map_or("\u{0}".into(), |b| b.to_string()),
                })
                .collect();
            if seen.insert(key) {
                keep.push(r);
            }
        }
        tracing::info!(
            source = %self.source,
            duplicates = self.n_rows() - keep.len(),
            "duplicate rows found"
        );
        keep
    }
}

/// The target's values as label texts; a missing label is an error naming its row.
pub(crate) fn target_texts(source: &str, target: &str, column: &Column) -> Result<Vec<String>> {
    let text = |row: usize, v: Option<String>| v.ok_or_else(|| missing_target(source, target, row));
    match column {
        Column::Categorical(v) => v
            .iter()
            .enumerate()
            .map(|(r, x)| text(r, x.clone()))
            .collect(),
        Column::Boolean(v) => v
            .iter()
            .enumerate()
            .map(|(r, x)| text(r, x.map(|b| b.to_string())))
            .collect(),
        Column::Numeric(v) => v
            .iter()
            .enumerate()
            .map(|(r, x)| {
                text(
                    r,
                    x.map(|x| {
                        if x.fract() == 0.0 {
                            format!("{x:.0}")
                        } else {
                            x.to_string()
                        }
                    }),
                )
            })
            .collect(),
    }
}

/// The error for a missing label in row `row` of `target`.
pub(crate) fn missing_target(source: &str, target: &str, row: usize) -> DataError {
    DataError::InvalidInput(format!(
        "{source}, row {row}: the target `{target}` is missing"
    ))
}

/// Distinct labels, numerically ordered when they are all numbers, else lexically.
pub(crate) fn sorted_labels(raw: &[&str]) -> Vec<String> {
    let distinct: BTreeSet<&str> = raw.iter().copied().collect();
    let mut labels: Vec<String> = distinct.into_iter().map(str::to_owned).collect();
    if labels.iter().all(|l| l.parse::<f64>().is_ok()) {
        labels.sort_by(|a, b| {
            let (x, y) = (
                a.parse::<f64>().unwrap_or(0.0),
                b.parse::<f64>().unwrap_or(0.0),
            );
            x.total_cmp(&y)
        });
    }
    labels
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_ragged_and_duplicate_columns() {
        let a = Column::Numeric(vec![Some(1.0), None]);
        let b = Column::Boolean(vec![Some(true)]);
        assert!(Table::new("t", vec![("a".into(), a.clone()), ("b".into(), b)]).is_err());
        assert!(Table::new("t", vec![("a".into(), a.clone()), ("a".into(), a.clone())]).is_err());
        assert!(
            Table::new(
                "t",
                vec![("a".into(), Column::Numeric(vec![Some(f64::NAN)]))]
            )
            .is_err()
        );
        let t = Table::new("t", vec![("a".into(), a)]).unwrap();
        assert_eq!((t.n_rows(), t.column("a").unwrap().missing()), (2, 1));
    }

    #[test]
    fn finds_duplicate_rows() {
        let t = Table::new(
            "t",
            vec![
                (
                    "x".into(),
                    Column::Numeric(vec![Some(1.0), Some(1.0), None, None, Some(2.0)]),
                ),
                (
                    "c".into(),
                    Column::Categorical(vec![
                        Some("a".into()),
                        Some("a".into()),
                        None,
                        None,
                        Some("a".into()),
                    ]),
                ),
            ],
        )
        .unwrap();
        assert_eq!(t.distinct_rows(), vec![0, 2, 4]);
    }

    #[test]
    fn reorders_one_columns_rows_only() {
        let x = Column::Numeric(vec![Some(1.0), None, Some(3.0)]);
        let c = Column::Categorical(vec![Some("a".into()), Some("b".into()), None]);
        let t = Table::new("t", vec![("x".into(), x.clone()), ("c".into(), c)]).unwrap();
        let r = t.with_column_rows("c", &[2, 0, 1]).unwrap();
        assert_eq!(r.column("x"), Some(&x));
        assert_eq!(
            r.column("c"),
            Some(&Column::Categorical(vec![
                None,
                Some("a".into()),
                Some("b".into())
            ]))
        );
        assert!(t.with_column_rows("y", &[0, 1, 2]).is_err());
        assert!(t.with_column_rows("c", &[0, 1]).is_err());
        assert!(t.with_column_rows("c", &[0, 1, 3]).is_err());
    }
}
