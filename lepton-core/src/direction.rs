//! Whether a study's objective is minimized or maximized.

use serde::{Deserialize, Serialize};

/// Whether the objective is minimized or maximized.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Direction {
    /// Lower is better (losses, errors).
    #[default]
    Minimize,
    /// Higher is better (accuracy).
    Maximize,
}

impl Direction {
    /// The stored name (`minimize`, `maximize`), as serde writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            Direction::Minimize => "minimize",
            Direction::Maximize => "maximize",
        }
    }

    /// The direction a stored name means, if any.
    pub fn parse(name: &str) -> Option<Self> {
        [Direction::Minimize, Direction::Maximize]
            .into_iter()
            .find(|d| d.as_str() == name)
    }

    /// Whether `a` is strictly better than `b` in this direction.
    pub fn is_better(self, a: f64, b: f64) -> bool {
        match self {
            Direction::Minimize => a < b,
            Direction::Maximize => a > b,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_are_serde_names_and_parse_back() {
        for d in [Direction::Minimize, Direction::Maximize] {
            assert_eq!(
                serde_json::to_string(&d).unwrap(),
                format!("\"{}\"", d.as_str())
            );
            assert_eq!(Direction::parse(d.as_str()), Some(d));
        }
        assert_eq!(Direction::parse("up"), None);
    }
}
