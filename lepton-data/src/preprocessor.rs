//! The preprocessor: cleaning, encoding and scaling composed into one fitted, serializable
//! transform from a raw [`Table`] to a numeric [`TabularDataset`]. It is fitted on training
//! rows only and is exactly what serving applies to incoming rows.

use std::collections::BTreeMap;

use rayon::prelude::*;
use serde::{Deserialize, Serialize};

use lepton_core::{Schema, Target, Task};

use crate::error::{DataError, Result};
use crate::table::{Column, ColumnType, Table, missing_target, sorted_labels, target_texts};
use crate::tabular::TabularDataset;

/// How missing numbers are filled.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Imputation {
    /// The training mean.
    Mean,
    /// The training median (robust to outliers; the default).
    Median,
    /// The most frequent training value.
    MostFrequent,
    /// A fixed value.
    Constant(f64),
    /// None: a missing number stays missing (NaN), for models that split on missing values
    /// themselves (boosted trees).
    Keep,
}

/// How numbers are scaled after filling and clipping.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Scaling {
    /// Left as they are.
    None,
    /// Zero mean, unit variance (the default).
    Standard,
    /// Into `[0, 1]` over the training range.
    MinMax,
    /// Zero median, unit inter-quartile range.
    Robust,
}

/// What one-hot encoding does with a category not seen at fit time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum UnknownCategory {
    /// Refuse the row.
    Error,
    /// Encode it as all zeros (the default).
    Ignore,
    /// Count it in an extra `other` column.
    Other,
}

/// How text categories become numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CategoricalEncoding {
    /// One 0/1 column per category (the default).
    OneHot(UnknownCategory),
    /// One column holding the category's index in sorted order (unknown categories refused).
    Ordinal,
    /// One column holding the category's index in sorted order, NaN for a missing or unseen
    /// category: for models that split on categories themselves (boosted trees; see
    /// [`FittedPreprocessor::categorical_features`]).
    Native,
}

/// Outlier clipping of numeric columns, with bounds learnt from the training rows.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub enum Clipping {
    /// No clipping (the default).
    None,
    /// Clip to the training quantiles `low` and `high` (e.g. 0.01 and 0.99).
    Quantile(f64, f64),
    /// Clip to `[Q1 - k IQR, Q3 + k IQR]` (Tukey's fences use k = 1.5).
    Iqr(f64),
}

/// What the target holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TargetKind {
    /// Class labels (any text, numbers or booleans), label-encoded.
    Classification,
    /// Real numbers.
    Regression,
}

/// The configuration of a preprocessing pipeline. `Preprocessor::default()` is the automatic
/// pipeline: per column type, median imputation with missing-value indicators and standard
/// scaling for numbers, most-frequent imputation and one-hot encoding for categories and
/// booleans, and removal of constant or entirely missing columns, of identifier-like
/// categorical columns (more than 20 distinct values, at least 90 % of them distinct), and of
/// categorical columns with more than 256 distinct values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Preprocessor {
    /// Filling of missing numbers.
    pub imputation: Imputation,
    /// Whether a 0/1 column marks each value that was missing (for columns with any missing
    /// training value).
    pub missing_indicators: bool,
    /// Scaling of numeric columns.
    pub scaling: Scaling,
    /// Encoding of categorical columns.
    pub categorical: CategoricalEncoding,
    /// Outlier clipping of numeric columns.
    pub clipping: Clipping,
    /// Drop a column when its most frequent value covers at least this share of the training
    /// rows (1.0 drops only constant columns; 0.99 also near-constant ones).
    pub constant_share: f64,
    /// Drop a categorical column with more distinct training values than this (an
    /// identifier or free text: one-hot encoding it would make a column per row). The
    /// decision is logged with `tracing` and listed by [`FittedPreprocessor::dropped`].
    #[serde(default = "default_max_categories")]
    pub max_categories: usize,
    /// Drop a categorical column whose distinct training values are at least this share of
    /// its present values, once it has more than [`IDENTIFIER_MIN_DISTINCT`] of them (an
    /// identifier: a row number, an e-mail, a name; no category would be seen again). 1.0
    /// drops only columns whose every value differs; above 1.0 keeps them all.
    #[serde(default = "default_identifier_share")]
    pub identifier_share: f64,
}

/// The fewest distinct values for which [`Preprocessor::identifier_share`] drops a column.
pub const IDENTIFIER_MIN_DISTINCT: usize = 20;

fn default_identifier_share() -> f64 {
    0.9
}

fn default_max_categories() -> usize {
    256
}

impl Default for Preprocessor {
    fn default() -> Self {
        Preprocessor {
            imputation: Imputation::Median,
            missing_indicators: true,
            scaling: Scaling::Standard,
            categorical: CategoricalEncoding::OneHot(UnknownCategory::Ignore),
            clipping: Clipping::None,
            constant_share: 1.0,
            max_categories: default_max_categories(),
            identifier_share: default_identifier_share(),
        }
    }
}

/// One input column's fitted transform.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
enum Step {
    Numeric {
        fill: f64,
        /// Missing values stay NaN ([`Imputation::Keep`]; `fill` unused).
        #[serde(default)]
        keep_missing: bool,
        indicator: bool,
        clip: Option<(f64, f64)>,
        center: f64,
        scale: f64,
    },
    Boolean {
        fill: bool,
        indicator: bool,
    },
    OneHot {
        categories: Vec<String>,
        fill: String,
        indicator: bool,
        unknown: UnknownCategory,
    },
    Ordinal {
        categories: Vec<String>,
        fill: String,
        indicator: bool,
    },
    Native {
        categories: Vec<String>,
    },
    Dropped {
        reason: String,
    },
}

/// A fitted [`Preprocessor`]: per input column, the learnt fill value, clipping bounds,
/// scaling and categories; plus the target's labels. Serializable, so it travels in model
/// artifacts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FittedPreprocessor {
    inputs: Vec<(String, ColumnType, Step)>,
    target: String,
    task: Task,
    features: Vec<String>,
}

impl Preprocessor {
    /// Checks the configuration's numbers.
    fn check(&self) -> Result<()> {
        let bad = |m: String| Err(DataError::InvalidInput(m));
        if !(self.constant_share > 0.0 && self.constant_share <= 1.0) {
            return bad(format!(
                "constant_share {} is outside (0, 1]",
                self.constant_share
            ));
        }
        if self.max_categories == 0 {
            return bad("max_categories must be at least 1".into());
        }
        if self.identifier_share.is_nan() || self.identifier_share <= 0.0 {
            return bad(format!(
                "identifier_share {} must be positive",
                self.identifier_share
            ));
        }
        match self.clipping {
            Clipping::Quantile(lo, hi) if !(0.0 <= lo && lo < hi && hi <= 1.0) => bad(format!(
                "clipping quantiles ({lo}, {hi}) must satisfy 0 <= low < high <= 1"
            )),
            Clipping::Iqr(k) if !(k.is_finite() && k >= 0.0) => {
                bad(format!("IQR factor {k} must be >= 0"))
            }
            _ => match self.imputation {
                Imputation::Constant(c) if !c.is_finite() => {
                    bad(format!("fill value {c} is not finite"))
                }
                _ => Ok(()),
            },
        }
    }

    /// Learns every step from `train` (training rows only) for predicting column `target`.
    pub fn fit(&self, train: &Table, target: &str, kind: TargetKind) -> Result<FittedPreprocessor> {
        self.check()?;
        let target_column = train
            .column(target)
            .ok_or_else(|| DataError::MissingTarget {
                path: train.source().to_owned(),
                column: target.to_owned(),
                available: train.names().join(", "),
            })?;
        let task = match kind {
            TargetKind::Regression => {
                if target_column.column_type() != ColumnType::Numeric {
                    return Err(DataError::InvalidInput(format!(
                        "{}: regression needs a numeric target, `{target}` is {:?}",
                        train.source(),
                        target_column.column_type()
                    )));
                }
                Task::Regression
            }
            TargetKind::Classification => Task::Classification {
                classes: sorted_labels(
                    &target_texts(train.source(), target, target_column)?
                        .iter()
                        .map(String::as_str)
                        .collect::<Vec<_>>(),
                ),
            },
        };
        // Columns are fitted independently: spread them over the cores (rayon's pool, which
        // runs them on the calling thread where threads cannot be spawned, as on WebAssembly).
        let jobs: Vec<(&String, &Column)> = train
            .names()
            .iter()
            .zip(train.columns())
            .filter(|(name, _)| *name != target)
            .collect();
        let steps: Vec<Step> = jobs
            .par_iter()
            .map(|(name, column)| self.fit_column(name, column))
            .collect();
        let mut inputs = Vec::new();
        let mut features = Vec::new();
        for ((name, column), step) in jobs.into_iter().zip(steps) {
            match &step {
                Step::Dropped { reason } => {
                    tracing::info!(column = %name, reason, "column dropped")
                }
                step => features.extend(output_names(name, step)),
            }
            inputs.push((name.clone(), column.column_type(), step));
        }
        if features.is_empty() {
            return Err(DataError::InvalidInput(format!(
                "{}: no usable feature column is left after cleaning",
                train.source()
            )));
        }
        Ok(FittedPreprocessor {
            inputs,
            target: target.to_owned(),
            task,
            features,
        })
    }

    fn fit_column(&self, name: &str, column: &Column) -> Step {
        let n = column.len();
        let missing = column.missing();
        if missing == n {
            return Step::Dropped {
                reason: "all values missing".into(),
            };
        }
        let indicator = self.missing_indicators && missing > 0;
        // A column whose present values are (nearly) all one value carries no signal, unless
        // its missing values do (then the indicator is kept).
        let is_constant = |mode_count: usize| {
            mode_count as f64 >= self.constant_share * (n - missing) as f64 && !indicator
        };
        match column {
            Column::Numeric(v) => {
                let mut present: Vec<f64> = v.iter().flatten().copied().collect();
                // Sorting a million values per column dominates fitting; the default pipeline
                // (constant columns only, median fill, no clipping) needs no sort.
                let needs_sort = self.constant_share < 1.0
                    || self.imputation == Imputation::MostFrequent
                    || self.clipping != Clipping::None;
                let (mode, mode_count) = if needs_sort {
                    present.sort_unstable_by(f64::total_cmp);
                    longest_run(&present)
                } else {
                    let (min, max) = present
                        .iter()
                        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &x| {
                            (lo.min(x), hi.max(x))
                        });
                    (min, if min == max { present.len() } else { 1 })
                };
                if is_constant(mode_count) {
                    return constant(mode_count, n - missing);
                }
                let fill = match self.imputation {
                    Imputation::Mean => present.iter().sum::<f64>() / present.len() as f64,
                    Imputation::Median if needs_sort => quantile(&present, 0.5),
                    Imputation::Median => median_unsorted(&mut present),
                    Imputation::MostFrequent => mode,
                    Imputation::Constant(c) => c,
                    Imputation::Keep => 0.0,
                };
                let clip = match self.clipping {
                    Clipping::None => None,
                    Clipping::Quantile(lo, hi) => {
                        Some((quantile(&present, lo), quantile(&present, hi)))
                    }
                    Clipping::Iqr(k) => {
                        let (q1, q3) = (quantile(&present, 0.25), quantile(&present, 0.75));
                        Some((q1 - k * (q3 - q1), q3 + k * (q3 - q1)))
                    }
                };
                let clipped = clip.map_or(0, |(lo, hi)| {
                    present.iter().filter(|x| **x < lo || **x > hi).count()
                });
                tracing::info!(
                    column = name,
                    imputed = missing,
                    clipped,
                    fill,
                    "numeric column"
                );
                let (center, scale) = scaling(self.scaling, v, fill, clip);
                Step::Numeric {
                    fill,
                    keep_missing: self.imputation == Imputation::Keep,
                    indicator,
                    clip,
                    center,
                    scale,
                }
            }
            Column::Boolean(v) => {
                let trues = v.iter().flatten().filter(|b| **b).count();
                let falses = n - missing - trues;
                // Ties go to `false`, as `false` sorts first.
                let (fill, mode_count) = if trues > falses {
                    (true, trues)
                } else {
                    (false, falses)
                };
                if is_constant(mode_count) {
                    return constant(mode_count, n - missing);
                }
                tracing::info!(column = name, imputed = missing, fill, "boolean column");
                Step::Boolean { fill, indicator }
            }
            Column::Categorical(v) => {
                let mut counts: std::collections::HashMap<&str, usize> =
                    std::collections::HashMap::new();
                for s in v.iter().flatten() {
                    *counts.entry(s.as_str()).or_default() += 1;
                }
                let present = n - missing;
                if counts.len() > IDENTIFIER_MIN_DISTINCT
                    && counts.len() as f64 >= self.identifier_share * present as f64
                {
                    return Step::Dropped {
                        reason: format!(
                            "{} distinct values in {present} rows: an identifier",
                            counts.len()
                        ),
                    };
                }
                if counts.len() > self.max_categories {
                    return Step::Dropped {
                        reason: format!(
                            "{} distinct categories, more than max_categories ({}): an \
                             identifier or free text",
                            counts.len(),
                            self.max_categories
                        ),
                    };
                }
                let mut categories: Vec<(&str, usize)> = counts.into_iter().collect();
                categories.sort_unstable();
                // The most frequent category; ties go to the one that sorts first.
                let (mode, mode_count) =
                    categories.iter().fold(
                        ("", 0),
                        |best, &(c, k)| if k > best.1 { (c, k) } else { best },
                    );
                if is_constant(mode_count) {
                    return constant(mode_count, n - missing);
                }
                let fill = mode.to_owned();
                let categories: Vec<String> =
                    categories.into_iter().map(|(c, _)| c.to_owned()).collect();
                tracing::info!(
                    column = name,
                    imputed = missing,
                    categories = categories.len(),
                    "categorical column"
                );
                match self.categorical {
                    CategoricalEncoding::OneHot(unknown) => Step::OneHot {
                        categories,
                        fill,
                        indicator,
                        unknown,
                    },
                    CategoricalEncoding::Ordinal => Step::Ordinal {
                        categories,
                        fill,
                        indicator,
                    },
                    CategoricalEncoding::Native => Step::Native { categories },
                }
            }
        }
    }
}

fn constant(mode_count: usize, present: usize) -> Step {
    Step::Dropped {
        reason: format!("constant: one value covers {mode_count} of {present} rows"),
    }
}

/// The value with the longest run in sorted values (the smallest on ties) and its length.
fn longest_run(sorted: &[f64]) -> (f64, usize) {
    let mut best = (f64::NAN, 0usize);
    let mut i = 0;
    while i < sorted.len() {
        let j = sorted[i..].partition_point(|x| x.total_cmp(&sorted[i]).is_eq()) + i;
        if j - i > best.1 {
            best = (sorted[i], j - i);
        }
        i = j;
    }
    best
}

impl FittedPreprocessor {
    /// One preprocessor whose output is the outputs of `parts`, side by side, in order: the
    /// preprocessing of an ensemble whose members each encode the same raw columns their own
    /// way. Output feature `name` of part `i` is named `i:name`. The parts must have been
    /// fitted for the same target and task, and agree on the type of every column they share.
    pub fn side_by_side(parts: &[FittedPreprocessor]) -> Result<FittedPreprocessor> {
        let first = parts.first().ok_or_else(|| {
            DataError::InvalidInput("no preprocessors to put side by side".into())
        })?;
        let mut inputs: Vec<(String, ColumnType, Step)> = Vec::new();
        let mut features = Vec::new();
        for (i, part) in parts.iter().enumerate() {
            if part.target != first.target || part.task != first.task {
                return Err(DataError::InvalidInput(format!(
                    "preprocessor {i} predicts `{}` ({:?}), preprocessor 0 `{}` ({:?})",
                    part.target, part.task, first.target, first.task
                )));
            }
            for (name, ty, step) in &part.inputs {
                if let Some((_, known, _)) = inputs.iter().find(|(n, _, _)| n == name)
                    && known != ty
                {
                    return Err(DataError::InvalidInput(format!(
                        "column `{name}` is {ty:?} in preprocessor {i}, {known:?} before it"
                    )));
                }
                inputs.push((name.clone(), *ty, step.clone()));
            }
            features.extend(part.features.iter().map(|f| format!("{i}:{f}")));
        }
        Ok(FittedPreprocessor {
            inputs,
            target: first.target.clone(),
            task: first.task.clone(),
            features,
        })
    }

    /// The output feature names, in order.
    pub fn features(&self) -> &[String] {
        &self.features
    }

    /// The raw input columns this preprocessor expects (the target excluded), with types,
    /// each once.
    pub fn inputs(&self) -> Vec<(&str, ColumnType)> {
        let mut out: Vec<(&str, ColumnType)> = Vec::with_capacity(self.inputs.len());
        for (n, t, _) in &self.inputs {
            if !out.iter().any(|(seen, _)| *seen == n) {
                out.push((n.as_str(), *t));
            }
        }
        out
    }

    /// The output features (by index) that hold category codes
    /// ([`CategoricalEncoding::Native`]).
    pub fn categorical_features(&self) -> Vec<usize> {
        let mut out = Vec::new();
        let mut offset = 0;
        for (name, _, step) in &self.inputs {
            if matches!(step, Step::Native { .. }) {
                out.push(offset);
            }
            offset += output_names(name, step).len();
        }
        out
    }

    /// Whether an output value may be NaN, a missing value left for the model
    /// ([`Imputation::Keep`], [`CategoricalEncoding::Native`]).
    pub fn keeps_missing(&self) -> bool {
        self.inputs.iter().any(|(_, _, step)| {
            matches!(
                step,
                Step::Native { .. }
                    | Step::Numeric {
                        keep_missing: true,
                        ..
                    }
            )
        })
    }

    /// Input columns that were dropped, with the reason (by a preprocessor
    /// [side by side](Self::side_by_side), those that no part uses, each once).
    pub fn dropped(&self) -> Vec<(&str, &str)> {
        let used = |name: &str| {
            self.inputs
                .iter()
                .any(|(n, _, s)| n == name && !matches!(s, Step::Dropped { .. }))
        };
        let mut out: Vec<(&str, &str)> = Vec::new();
        for (n, _, s) in &self.inputs {
            if let Step::Dropped { reason } = s
                && !used(n)
                && !out.iter().any(|(seen, _)| *seen == n)
            {
                out.push((n.as_str(), reason.as_str()));
            }
        }
        out
    }

    /// The target column's name.
    pub fn target(&self) -> &str {
        &self.target
    }

    /// The task, with the class labels for classification.
    pub fn task(&self) -> &Task {
        &self.task
    }

    /// The schema of the datasets [`transform`](Self::transform) produces.
    pub fn schema(&self) -> Schema {
        Schema {
            features: self.features.clone(),
            target: self.target.clone(),
            task: self.task.clone(),
        }
    }

    /// Transforms a table with the target column into a numeric dataset.
    pub fn transform(&self, table: &Table) -> Result<TabularDataset> {
        let features = self.transform_features_checked(table, true)?;
        let column = table
            .column(&self.target)
            .ok_or_else(|| DataError::MissingTarget {
                path: table.source().to_owned(),
                column: self.target.clone(),
                available: table.names().join(", "),
            })?;
        let targets = match &self.task {
            Task::Regression => match column {
                Column::Numeric(v) => v
                    .iter()
                    .enumerate()
                    .map(|(row, x)| {
                        x.map(Target::Value)
                            .ok_or_else(|| missing_target(table.source(), &self.target, row))
                    })
                    .collect::<Result<Vec<_>>>()?,
                other => {
                    return Err(DataError::InvalidInput(format!(
                        "{}: target `{}` is {:?}, expected numeric",
                        table.source(),
                        self.target,
                        other.column_type()
                    )));
                }
            },
            Task::Classification { classes } => {
                let index: std::collections::HashMap<&str, usize> = classes
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (c.as_str(), i))
                    .collect();
                let class = |row: usize, label: &str| {
                    index.get(label).map(|&i| Target::Class(i)).ok_or_else(|| {
                        DataError::InvalidInput(format!(
                            "{}, row {row}: class `{label}` of `{}` was not seen at fit time",
                            table.source(),
                            self.target
                        ))
                    })
                };
                match column {
                    // Text labels are looked up in place, without copying a million strings.
                    Column::Categorical(v) => v
                        .iter()
                        .enumerate()
                        .map(|(row, label)| match label {
                            Some(l) => class(row, l),
                            None => Err(missing_target(table.source(), &self.target, row)),
                        })
                        .collect::<Result<Vec<_>>>()?,
                    other => target_texts(table.source(), &self.target, other)?
                        .iter()
                        .enumerate()
                        .map(|(row, label)| class(row, label))
                        .collect::<Result<Vec<_>>>()?,
                }
            }
        };
        if self.keeps_missing() {
            TabularDataset::with_missing(self.schema(), features, targets)
        } else {
            TabularDataset::new(self.schema(), features, targets)
        }
    }

    /// Transforms the feature columns of a table (no target needed: serving) into row-major
    /// values. The table must have exactly the fitted input columns, with their types.
    pub fn transform_features(&self, table: &Table) -> Result<Vec<f32>> {
        self.transform_features_checked(table, false)
    }

    /// Transforms one raw record given as text by column name (as a JSON body or a CSV row
    /// would give it); missing values use the default missing-value tokens of
    /// [`CsvLoader`](crate::CsvLoader), `NaN` included (imputed like an empty cell, as in
    /// training). A number that is not finite once scaled (`1e300`) is refused, naming its
    /// column.
    pub fn transform_record(&self, record: &BTreeMap<String, String>) -> Result<Vec<f32>> {
        let inputs = self.inputs();
        let mut columns = Vec::with_capacity(inputs.len());
        for (name, ty) in inputs {
            let text = record.get(name).ok_or_else(|| {
                DataError::InvalidInput(format!("record: missing column `{name}`"))
            })?;
            let t = text.trim();
            let missing = crate::csv_loader::MISSING_TOKENS
                .iter()
                .any(|m| m.eq_ignore_ascii_case(t));
            let bad = |what: &str| {
                DataError::InvalidInput(format!("record, column `{name}`: `{t}` is not {what}"))
            };
            let column = match ty {
                ColumnType::Numeric => Column::Numeric(vec![if missing {
                    None
                } else {
                    Some(
                        t.parse::<f64>()
                            .ok()
                            .filter(|x| x.is_finite())
                            .ok_or_else(|| bad("a finite number"))?,
                    )
                }]),
                ColumnType::Boolean => Column::Boolean(vec![if missing {
                    None
                } else {
                    Some(match t.to_ascii_lowercase().as_str() {
                        "true" | "yes" => true,
                        "false" | "no" => false,
                        _ => return Err(bad("a boolean")),
                    })
                }]),
                ColumnType::Categorical => {
                    Column::Categorical(vec![(!missing).then(|| t.to_owned())])
                }
            };
            columns.push((name.to_owned(), column));
        }
        if let Some(extra) = record
            .keys()
            .find(|k| !self.inputs.iter().any(|(n, _, _)| n == *k))
        {
            return Err(DataError::InvalidInput(format!(
                "record: unexpected column `{extra}`"
            )));
        }
        self.transform_features(&Table::new("record", columns)?)
    }

    fn transform_features_checked(&self, table: &Table, allow_target: bool) -> Result<Vec<f32>> {
        for name in table.names() {
            let known = self.inputs.iter().any(|(n, _, _)| n == name);
            let is_target = allow_target && *name == self.target;
            if !(known || is_target) {
                return Err(DataError::InvalidInput(format!(
                    "{}: unexpected column `{name}` (fitted on: {})",
                    table.source(),
                    self.inputs()
                        .iter()
                        .map(|(n, _)| *n)
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
        let rows = table.n_rows();
        let width = self.features.len();
        let mut out = vec![0f32; rows * width];
        let mut offset = 0;
        for (name, ty, step) in &self.inputs {
            let column = table.column(name).ok_or_else(|| {
                DataError::InvalidInput(format!("{}: missing column `{name}`", table.source()))
            })?;
            if column.column_type() != *ty {
                return Err(DataError::InvalidInput(format!(
                    "{}: column `{name}` is {:?}, fitted as {ty:?}",
                    table.source(),
                    column.column_type()
                )));
            }
            let used = encode(table.source(), name, column, step, &mut out, width, offset)?;
            offset += used;
        }
        Ok(out)
    }
}

/// Writes `column` encoded by `step` into `out` (row-major, `width` wide) from `offset`;
/// returns how many output columns it used.
fn encode(
    source: &str,
    name: &str,
    column: &Column,
    step: &Step,
    out: &mut [f32],
    width: usize,
    offset: usize,
) -> Result<usize> {
    let mut set = |row: usize, j: usize, v: f64| out[row * width + offset + j] = v as f32;
    Ok(match (step, column) {
        (Step::Dropped { .. }, _) => 0,
        (
            Step::Numeric {
                fill,
                keep_missing,
                indicator,
                clip,
                center,
                scale,
            },
            Column::Numeric(v),
        ) => {
            for (row, x) in v.iter().enumerate() {
                if x.is_none() && *keep_missing {
                    set(row, 0, f64::NAN);
                    if *indicator {
                        set(row, 1, 1.0);
                    }
                    continue;
                }
                let mut value = x.unwrap_or(*fill);
                if let Some((lo, hi)) = clip {
                    value = value.clamp(*lo, *hi);
                }
                let scaled = (value - center) / scale;
                // A finite input can leave f32's range once scaled (1e300): refused, not
                // passed on as an infinity that makes the model answer NaN.
                if !(scaled as f32).is_finite() {
                    return Err(DataError::InvalidInput(format!(
                        "{source}, row {row}, column `{name}`: {value:?} is {scaled:?} once \
                         scaled, outside the range of the model's inputs"
                    )));
                }
                set(row, 0, scaled);
                if *indicator {
                    set(row, 1, f64::from(u8::from(x.is_none())));
                }
            }
            1 + usize::from(*indicator)
        }
        (Step::Boolean { fill, indicator }, Column::Boolean(v)) => {
            for (row, x) in v.iter().enumerate() {
                set(row, 0, f64::from(u8::from(x.unwrap_or(*fill))));
                if *indicator {
                    set(row, 1, f64::from(u8::from(x.is_none())));
                }
            }
            1 + usize::from(*indicator)
        }
        (
            Step::OneHot {
                categories,
                fill,
                indicator,
                unknown,
            },
            Column::Categorical(v),
        ) => {
            let k = categories.len();
            let other = usize::from(*unknown == UnknownCategory::Other);
            for (row, x) in v.iter().enumerate() {
                let value = x.as_deref().unwrap_or(fill);
                match categories.binary_search_by(|c| c.as_str().cmp(value)) {
                    Ok(i) => set(row, i, 1.0),
                    Err(_) => match unknown {
                        UnknownCategory::Error => {
                            return Err(DataError::InvalidInput(format!(
                                "{source}, row {row}, column `{name}`: category `{value}` was not seen at fit time"
                            )));
                        }
                        UnknownCategory::Ignore => {}
                        UnknownCategory::Other => set(row, k, 1.0),
                    },
                }
                if *indicator {
                    set(row, k + other, f64::from(u8::from(x.is_none())));
                }
            }
            k + other + usize::from(*indicator)
        }
        (
            Step::Ordinal {
                categories,
                fill,
                indicator,
            },
            Column::Categorical(v),
        ) => {
            for (row, x) in v.iter().enumerate() {
                let value = x.as_deref().unwrap_or(fill);
                let i = categories.binary_search_by(|c| c.as_str().cmp(value)).map_err(|_| {
                    DataError::InvalidInput(format!(
                        "{source}, row {row}, column `{name}`: category `{value}` was not seen at fit time"
                    ))
                })?;
                set(row, 0, i as f64);
                if *indicator {
                    set(row, 1, f64::from(u8::from(x.is_none())));
                }
            }
            1 + usize::from(*indicator)
        }
        (Step::Native { categories }, Column::Categorical(v)) => {
            for (row, x) in v.iter().enumerate() {
                let code = x
                    .as_deref()
                    .and_then(|value| categories.binary_search_by(|c| c.as_str().cmp(value)).ok());
                set(row, 0, code.map_or(f64::NAN, |i| i as f64));
            }
            1
        }
        (_, other) => {
            return Err(DataError::InvalidInput(format!(
                "{source}: column `{name}` is {:?}, which its fitted step cannot encode",
                other.column_type()
            )));
        }
    })
}

fn output_names(name: &str, step: &Step) -> Vec<String> {
    let mut names = Vec::new();
    let indicator = match step {
        Step::Numeric { indicator, .. }
        | Step::Boolean { indicator, .. }
        | Step::Ordinal { indicator, .. } => {
            names.push(name.to_owned());
            *indicator
        }
        Step::Native { .. } => {
            names.push(name.to_owned());
            false
        }
        Step::OneHot {
            categories,
            indicator,
            unknown,
            ..
        } => {
            names.extend(categories.iter().map(|c| format!("{name}={c}")));
            if *unknown == UnknownCategory::Other {
                names.push(format!("{name}=<other>"));
            }
            *indicator
        }
        Step::Dropped { .. } => false,
    };
    if indicator {
        names.push(format!("{name}:missing"));
    }
    names
}

/// The median of unsorted values (reordering them), interpolated as [`quantile`] does.
fn median_unsorted(values: &mut [f64]) -> f64 {
    let pos = 0.5 * (values.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    let (_, &mut a, right) = values.select_nth_unstable_by(lo, f64::total_cmp);
    if hi == lo {
        return a;
    }
    let b = right.iter().copied().fold(f64::INFINITY, f64::min);
    a + (b - a) * (pos - lo as f64)
}

/// The `q` quantile of sorted values, interpolated linearly (numpy's default).
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let pos = q * (sorted.len() - 1) as f64;
    let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
    sorted[lo] + (sorted[hi] - sorted[lo]) * (pos - lo as f64)
}

/// The center and scale of `values` after filling missing ones with `fill` and clipping.
fn scaling(
    kind: Scaling,
    values: &[Option<f64>],
    fill: f64,
    clip: Option<(f64, f64)>,
) -> (f64, f64) {
    let filled = || {
        values.iter().map(move |x| {
            let x = x.unwrap_or(fill);
            clip.map_or(x, |(lo, hi)| x.clamp(lo, hi))
        })
    };
    let guard = |s: f64| if s > 1e-12 { s } else { 1.0 };
    match kind {
        Scaling::None => (0.0, 1.0),
        Scaling::Standard => crate::standard_scaler::mean_and_scale(filled()),
        Scaling::MinMax => {
            let min = filled().fold(f64::INFINITY, f64::min);
            let max = filled().fold(f64::NEG_INFINITY, f64::max);
            (min, guard(max - min))
        }
        Scaling::Robust => {
            let mut sorted: Vec<f64> = filled().collect();
            sorted.sort_unstable_by(f64::total_cmp);
            let iqr = quantile(&sorted, 0.75) - quantile(&sorted, 0.25);
            (quantile(&sorted, 0.5), guard(iqr))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn median_without_sorting_matches_the_sorted_quantile(
            mut v in proptest::collection::vec(-1e6f64..1e6, 1..50)
        ) {
            let mut sorted = v.clone();
            sorted.sort_by(f64::total_cmp);
            prop_assert_eq!(median_unsorted(&mut v), quantile(&sorted, 0.5));
        }

        #[test]
        fn longest_run_finds_the_mode(v in proptest::collection::vec(0u8..5, 1..40)) {
            let mut sorted: Vec<f64> = v.iter().map(|&x| f64::from(x)).collect();
            sorted.sort_by(f64::total_cmp);
            let (mode, count) = longest_run(&sorted);
            let counts: Vec<usize> = (0..5u8).map(|k| v.iter().filter(|&&x| x == k).count()).collect();
            let best = *counts.iter().max().unwrap();
            prop_assert_eq!(count, best);
            prop_assert_eq!(mode, counts.iter().position(|&c| c == best).unwrap() as f64);
        }
    }
}
