//! The dataset stage: indexed samples with a known schema.

use serde::{Deserialize, Serialize};

/// What is being predicted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Task {
    /// One of a fixed set of classes, named by their original labels.
    Classification {
        /// Class labels; a target's class index points into this list.
        classes: Vec<String>,
    },
    /// A real number.
    Regression,
}

/// The columns a dataset has and what its target means. Travels with fitted models, so a
/// predictor can check incoming rows and give labels back.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Schema {
    /// Feature column names, in order.
    pub features: Vec<String>,
    /// Target column name.
    pub target: String,
    /// The task and, for classification, the class labels.
    pub task: Task,
}

impl Schema {
    /// The number of classes, or `None` for regression.
    pub fn n_classes(&self) -> Option<usize> {
        match &self.task {
            Task::Classification { classes } => Some(classes.len()),
            Task::Regression => None,
        }
    }
}

/// One sample's target.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// A class index into the schema's labels.
    Class(usize),
    /// A real value.
    Value(f64),
}

/// Indexed samples of numeric features with a target.
///
/// A dataset of points on a line:
///
/// ```
/// use lepton_core::{Dataset, Schema, Target, Task};
///
/// struct Line { xs: Vec<[f32; 1]>, schema: Schema }
///
/// impl Dataset for Line {
///     fn schema(&self) -> &Schema { &self.schema }
///     fn len(&self) -> usize { self.xs.len() }
///     fn features(&self, i: usize) -> Option<&[f32]> { self.xs.get(i).map(|x| &x[..]) }
///     fn target(&self, i: usize) -> Option<Target> {
///         self.xs.get(i).map(|x| Target::Value(2.0 * x[0] as f64))
///     }
/// }
///
/// let line = Line {
///     xs: vec![[0.0], [1.0]],
///     schema: Schema { features: vec!["x".into()], target: "y".into(), task: Task::Regression },
/// };
/// assert_eq!(line.target(1), Some(Target::Value(2.0)));
/// ```
pub trait Dataset {
    /// The columns and the task.
    fn schema(&self) -> &Schema;
    /// The number of samples.
    fn len(&self) -> usize;
    /// Whether there are no samples.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// The features of sample `index`, as many as the schema has; `None` past the end.
    fn features(&self, index: usize) -> Option<&[f32]>;
    /// The target of sample `index`; `None` past the end.
    fn target(&self, index: usize) -> Option<Target>;
}
