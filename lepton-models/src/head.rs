//! What a model's outputs mean: the scores of its classes, or one standardized value.

use serde::{Deserialize, Serialize};

/// What a model's outputs mean.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "lowercase")]
pub enum Head {
    /// Logits of `count` classes.
    Classes {
        /// Number of classes.
        count: usize,
    },
    /// One standardized value: the prediction is `output * sd + mean`.
    Value {
        /// Training target mean.
        mean: f64,
        /// Training target standard deviation.
        sd: f64,
    },
}

impl Head {
    /// Width of the output layer.
    pub fn outputs(&self) -> usize {
        match self {
            Head::Classes { count } => *count,
            Head::Value { .. } => 1,
        }
    }
}
