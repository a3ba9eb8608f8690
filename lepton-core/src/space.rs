//! Search spaces: the parameters a trial suggests.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::param::Distribution;
use crate::trial::Trial;

/// A set of parameters to search. A space suggests its parameters on a [`Trial`], so a
/// declared space and a define-by-run objective produce the same records, and conditional
/// parameters (ones that exist only under a choice) are plain `if`s.
///
/// A conditional space written by hand:
///
/// ```
/// use lepton_core::{Result, Scale, SearchSpace, Trial};
///
/// struct Regularized;
///
/// impl SearchSpace for Regularized {
///     fn suggest(&self, trial: &mut Trial) -> Result<()> {
///         let penalty = trial.suggest_categorical("penalty", &["none", "l2"])?;
///         if penalty.as_str() == Some("l2") {
///             trial.suggest_float("alpha", 1e-6, 1.0, Scale::Log)?;
///         }
///         Ok(())
///     }
/// }
/// ```
pub trait SearchSpace {
    /// Suggests every parameter of this space on `trial`.
    fn suggest(&self, trial: &mut Trial) -> Result<()>;
}

/// A flat space declared up front: named distributions, suggested in order. Serializable.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DeclaredSpace {
    params: Vec<(String, Distribution)>,
}

impl DeclaredSpace {
    /// An empty space.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a parameter; refuses an invalid distribution or a name declared twice with a
    /// different distribution.
    pub fn with(mut self, name: &str, distribution: Distribution) -> Result<Self> {
        distribution.validate(name)?;
        match self.params.iter().find(|(n, _)| n == name) {
            Some((_, d)) if *d == distribution => {}
            Some(_) => {
                return Err(Error::ParamConflict {
                    name: name.to_owned(),
                });
            }
            None => self.params.push((name.to_owned(), distribution)),
        }
        Ok(self)
    }

    /// The declared parameters, in order.
    pub fn params(&self) -> &[(String, Distribution)] {
        &self.params
    }
}

impl SearchSpace for DeclaredSpace {
    fn suggest(&self, trial: &mut Trial) -> Result<()> {
        for (name, d) in &self.params {
            trial.suggest(name, d)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::param::Scale;

    #[test]
    fn declared_space_validates() {
        let s = DeclaredSpace::new()
            .with("lr", Distribution::float(1e-4, 1e-1, Scale::Log))
            .unwrap();
        assert!(
            s.clone()
                .with("lr", Distribution::float(1e-3, 1e-1, Scale::Log))
                .is_err()
        );
        assert!(
            s.clone()
                .with("lr", Distribution::float(1e-4, 1e-1, Scale::Log))
                .is_ok()
        );
        assert!(
            s.with("bad", Distribution::float(0.0, 1.0, Scale::Log))
                .is_err()
        );
    }
}
