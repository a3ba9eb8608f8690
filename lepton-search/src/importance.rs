//! Which hyper-parameters matter: PED-ANOVA (Watanabe et al., IJCAI 2023), computed from a
//! study's complete trials.
//!
//! For each parameter, PED-ANOVA compares where the best trials put it with where the trials
//! of a region put it: the Pearson divergence `sum_x p_region(x) (p_top(x) / p_region(x) - 1)^2`
//! between the two densities. A parameter the best trials concentrate somewhere scores high;
//! one they spread like everyone else scores near zero. It needs no surrogate model, so it
//! takes milliseconds for thousands of trials.

use std::collections::BTreeMap;

use lepton_core::{Distribution, Error, FrozenTrial, History, Result};

use crate::samplers::unit::to_unit;

/// PED-ANOVA parameter importance.
#[derive(Debug, Clone, Copy)]
pub struct PedAnova {
    target_quantile: f64,
    region_quantile: f64,
}

/// Points of the unit interval a numeric parameter's density is evaluated on.
const GRID: usize = 100;

impl Default for PedAnova {
    fn default() -> Self {
        PedAnova {
            target_quantile: 0.1,
            region_quantile: 1.0,
        }
    }
}

impl PedAnova {
    /// The top 10 % of the trials against all of them (global importance), densities on a
    /// grid of 100 points.
    pub fn new() -> Self {
        Self::default()
    }

    /// The share of the best trials whose parameters are compared (`target`) and the share
    /// that makes the region they are compared with (`region`; 1 for the whole space, less
    /// for importance near the optimum): `0 < target < region <= 1`.
    pub fn with_quantiles(mut self, target: f64, region: f64) -> Result<Self> {
        if !(target > 0.0 && target < region && region <= 1.0) {
            return Err(Error::InvalidParameter {
                name: "quantiles".into(),
                reason: format!("need 0 < target < region <= 1, got {target} and {region}"),
            });
        }
        self.target_quantile = target;
        self.region_quantile = region;
        Ok(self)
    }

    /// The importance of every parameter that all complete trials share with one
    /// distribution, normalized to sum to 1 (all 0 when no parameter matters). Needs enough
    /// complete trials for two in the target quantile.
    pub fn importances(&self, history: &History) -> Result<BTreeMap<String, f64>> {
        // Best first.
        let complete: Vec<&FrozenTrial> = history
            .ranked()
            .into_iter()
            .filter(|t| t.value.is_some_and(f64::is_finite))
            .collect();
        let n = complete.len();
        let n_top = (self.target_quantile * n as f64).ceil() as usize;
        if n_top < 2 {
            return Err(Error::InvalidInput(format!(
                "importance needs at least {} complete trials (two in the top {}), the study \
                 has {n}",
                (1.0 / self.target_quantile).floor() + 1.0,
                self.target_quantile
            )));
        }
        let n_region = ((self.region_quantile * n as f64).ceil() as usize).max(n_top);
        let (top, region) = (&complete[..n_top], &complete[..n_region]);
        let mut divergences = BTreeMap::new();
        for (name, distribution) in history.intersection_space() {
            let density = |trials: &[&FrozenTrial]| self.density(&name, &distribution, trials);
            let (p_top, p_region) = (density(top), density(region));
            let d: f64 = p_top
                .iter()
                .zip(&p_region)
                .filter(|(_, r)| **r > 0.0)
                .map(|(t, r)| (t - r).powi(2) / r)
                .sum();
            divergences.insert(name, d);
        }
        let total: f64 = divergences.values().sum();
        if total > 0.0 {
            divergences.values_mut().for_each(|d| *d /= total);
        }
        Ok(divergences)
    }

    /// The distribution of parameter `name` over `trials`, as probabilities: of each choice
    /// for a categorical parameter, else on `GRID` points of the unit interval (log scales
    /// through the logarithm), from a Gaussian kernel density with Scott's bandwidth (at least
    /// one grid cell).
    fn density(
        &self,
        name: &str,
        distribution: &Distribution,
        trials: &[&FrozenTrial],
    ) -> Vec<f64> {
        let values = trials.iter().filter_map(|t| t.params.get(name));
        let mut p = match distribution {
            Distribution::Categorical { choices } => {
                let mut counts = vec![0.0; choices.len()];
                for v in values {
                    if let Some(i) = choices.iter().position(|c| c == v) {
                        counts[i] += 1.0;
                    }
                }
                counts
            }
            numeric => {
                let xs: Vec<f64> = values.filter_map(|v| to_unit(numeric, v)).collect();
                let n = xs.len().max(1) as f64;
                let mean = xs.iter().sum::<f64>() / n;
                let sd = (xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / n).sqrt();
                let h = (1.059 * sd * n.powf(-0.2)).max(1.0 / GRID as f64);
                (0..GRID)
                    .map(|j| {
                        let g = (j as f64 + 0.5) / GRID as f64;
                        xs.iter()
                            .map(|x| (-0.5 * ((g - x) / h).powi(2)).exp())
                            .sum()
                    })
                    .collect()
            }
        };
        let total: f64 = p.iter().sum();
        if total > 0.0 {
            p.iter_mut().for_each(|v| *v /= total);
        }
        p
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RandomSampler, Study};
    use lepton_core::{Direction, Scale};

    fn study(trials: usize, objective: impl Fn(f64, f64, f64, &str) -> f64) -> Study {
        let study = Study::builder("importance")
            .with_sampler(RandomSampler::new(7))
            .build()
            .unwrap();
        study
            .optimize(trials, |t| {
                let x = t.suggest_float("x", 0.0, 1.0, Scale::Linear)?;
                let lr = t.suggest_float("lr", 1e-5, 1e-1, Scale::Log)?;
                let z = t.suggest_int("z", 0, 100, Scale::Linear)? as f64;
                let c = t.suggest_categorical("c", &["a", "b", "c"])?;
                Ok(objective(x, lr, z, c.as_str().unwrap()))
            })
            .unwrap();
        study
    }

    fn importances(s: &Study) -> BTreeMap<String, f64> {
        let history = History::new(s.direction(), s.trials().unwrap());
        PedAnova::new().importances(&history).unwrap()
    }

    #[test]
    fn the_parameter_that_decides_the_value_is_the_important_one() {
        // x decides almost everything; the categorical a little; lr and z nothing.
        let s = study(400, |x, _, _, c| {
            10.0 * (x - 0.3).powi(2) + if c == "b" { 0.0 } else { 0.05 }
        });
        let imp = importances(&s);
        assert!((imp.values().sum::<f64>() - 1.0).abs() < 1e-9);
        assert!(imp["x"] > 0.6, "{imp:?}");
        assert!(imp["c"] > imp["lr"] && imp["c"] > imp["z"], "{imp:?}");
        assert!(imp["lr"] < 0.1 && imp["z"] < 0.1, "{imp:?}");
        // A log-scale parameter is judged on its logarithm: lr alone decides here.
        let s = study(400, |_, lr, _, _| (lr.log10() + 3.0).abs());
        let imp = importances(&s);
        assert!(imp["lr"] > 0.7, "{imp:?}");
    }

    #[test]
    fn direction_counts_and_bad_settings_are_refused() {
        // Maximizing the same function makes its worst region the target: x still matters.
        let s = Study::builder("max")
            .with_direction(Direction::Maximize)
            .with_sampler(RandomSampler::new(1))
            .build()
            .unwrap();
        s.optimize(200, |t| {
            let x = t.suggest_float("x", 0.0, 1.0, Scale::Linear)?;
            let y = t.suggest_float("y", 0.0, 1.0, Scale::Linear)?;
            Ok(-(x - 0.8).powi(2) + 0.0 * y)
        })
        .unwrap();
        let imp = importances(&s);
        assert!(imp["x"] > 0.8, "{imp:?}");
        // Too few trials for two in the top 10 %.
        let few = study(10, |x, _, _, _| x);
        let history = History::new(few.direction(), few.trials().unwrap());
        assert!(PedAnova::new().importances(&history).is_err());
        assert!(PedAnova::new().with_quantiles(0.5, 0.4).is_err());
        assert!(PedAnova::new().with_quantiles(0.0, 1.0).is_err());
        assert!(PedAnova::new().with_quantiles(0.1, 0.5).is_ok());
    }
}
