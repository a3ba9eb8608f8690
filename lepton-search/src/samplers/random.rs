//! Uniform random sampling, the baseline every other sampler must beat.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use lepton_core::{Distribution, History, ParamValue, Result, Sampler, Scale};

use super::stream_seed;

/// Draws every parameter independently and uniformly (on the log axis for log scales).
/// Deterministic for a seed: a draw depends only on the seed, the trial number and the name.
#[derive(Debug, Clone, Copy)]
pub struct RandomSampler {
    seed: u64,
}

impl RandomSampler {
    /// A sampler whose draws are fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        RandomSampler { seed }
    }
}

impl Default for RandomSampler {
    fn default() -> Self {
        RandomSampler::new(0)
    }
}

impl Sampler for RandomSampler {
    fn sample(
        &self,
        _history: &History,
        trial_number: u64,
        name: &str,
        distribution: &Distribution,
    ) -> Result<ParamValue> {
        distribution.validate(name)?;
        let mut rng = StdRng::seed_from_u64(stream_seed(self.seed, trial_number, name));
        Ok(match distribution {
            Distribution::Float {
                low,
                high,
                scale,
                step,
            } => match (scale, step) {
                (_, Some(s)) => {
                    let n = ((high - low) / s).floor() as u64;
                    ParamValue::Float(low + rng.random_range(0..=n) as f64 * s)
                }
                (Scale::Log, None) => {
                    let x = rng.random_range(low.ln()..=high.ln()).exp();
                    ParamValue::Float(x.clamp(*low, *high))
                }
                (Scale::Linear, None) => ParamValue::Float(rng.random_range(*low..=*high)),
            },
            Distribution::Int {
                low,
                high,
                scale,
                step,
            } => match scale {
                Scale::Log => {
                    // Uniform on the log axis over [low - 0.5, high + 0.5], so both ends are
                    // as likely as their neighbourhood.
                    let (a, b) = ((*low as f64 - 0.5).max(0.5), *high as f64 + 0.5);
                    let x = rng.random_range(a.ln()..b.ln()).exp();
                    distribution.from_internal(x)
                }
                Scale::Linear => {
                    let n = (high - low) / step;
                    ParamValue::Int(low + rng.random_range(0..=n) * step)
                }
            },
            Distribution::Categorical { choices } => {
                let i = rng.random_range(0..choices.len());
                choices[i].clone()
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn draw(seed: u64, trial: u64, d: &Distribution) -> ParamValue {
        RandomSampler::new(seed)
            .sample(&History::default(), trial, "p", d)
            .unwrap()
    }

    #[test]
    fn draws_respect_every_distribution() {
        let ds = [
            Distribution::float(-1.0, 1.0, Scale::Linear),
            Distribution::float(1e-5, 1e-1, Scale::Log),
            Distribution::Float {
                low: 0.0,
                high: 1.0,
                scale: Scale::Linear,
                step: Some(0.1),
            },
            Distribution::int(1, 512, Scale::Log),
            Distribution::Int {
                low: 2,
                high: 20,
                scale: Scale::Linear,
                step: 3,
            },
            Distribution::categorical(["a", "b", "c"]),
        ];
        for d in &ds {
            for t in 0..300 {
                let v = draw(1, t, d);
                assert!(d.contains(&v), "{v:?} outside {d:?}");
            }
        }
    }

    #[test]
    fn log_scale_covers_the_decades_evenly() {
        let d = Distribution::float(1e-4, 1.0, Scale::Log);
        let below_1e2 = (0..4000)
            .filter(|&t| draw(3, t, &d).as_f64().unwrap() < 1e-2)
            .count();
        // Half of the four decades lie below 1e-2.
        assert!((1700..2300).contains(&below_1e2), "{below_1e2}");
    }

    #[test]
    fn reproducible_by_seed_and_independent_of_order() {
        let d = Distribution::float(0.0, 1.0, Scale::Linear);
        assert_eq!(draw(5, 7, &d), draw(5, 7, &d));
        assert_ne!(draw(5, 7, &d), draw(6, 7, &d));
        assert_ne!(draw(5, 7, &d), draw(5, 8, &d));
    }

    #[test]
    fn invalid_distribution_is_refused() {
        let d = Distribution::float(1.0, 0.0, Scale::Linear);
        assert!(
            RandomSampler::new(0)
                .sample(&History::default(), 0, "p", &d)
                .is_err()
        );
    }
}
