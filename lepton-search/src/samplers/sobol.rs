//! Quasi-Monte-Carlo search: a scrambled Sobol sequence covers the space more evenly than
//! independent random draws.

use lepton_core::{Distribution, History, JointSample, ParamValue, Result, Sampler};

use super::{stream_seed, unit};

/// The points of one Sobol sequence `sobol_burley` gives before a new scramble takes over.
const SEQUENCE_LEN: u64 = 1 << 16;

/// Draws trials from an Owen-scrambled Sobol sequence (Burley's hash-based scrambling), so that
/// the first `2^k` trials are spread evenly over the space instead of clumping as independent
/// random draws do.
///
/// Once a trial has finished, every parameter of the study's search space (the parameters
/// every finished trial has, see [`History::intersection_space`]) gets one dimension of the
/// sequence, in the order of the names; trial `n` takes point `n`. Numeric parameters map the
/// point onto their range (uniformly on the log axis for log scales, evenly per integer);
/// a categorical parameter with `k` choices takes choice `floor(u * k)`. When workers run in
/// parallel each trial still takes the point of its own number, so indices skipped by
/// enqueued or abandoned trials leave the set of points low-discrepancy.
///
/// Parameters outside that space (those of the first trial, conditional ones, new ones) are
/// drawn one at a time: each from its own one-dimensional scrambled sequence, indexed by the
/// trial number, so each is still evenly spread over its own range.
///
/// The scramble is fixed by the seed: the same seed gives the same trials, another seed an
/// independent sequence. The underlying sequences have 256 dimensions and `2^16` points;
/// further dimensions and points use further independent scrambles.
#[derive(Debug, Clone, Copy)]
pub struct SobolSampler {
    seed: u64,
}

impl SobolSampler {
    /// A sampler whose scramble is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        SobolSampler { seed }
    }

    /// Coordinate `dimension` of point `index` of the sequence scrambled by `scramble`, in
    /// `[0, 1)`.
    fn coordinate(&self, index: u64, dimension: u64, scramble: u64) -> f64 {
        let dims = u64::from(sobol_burley::NUM_DIMENSIONS);
        // Beyond one sequence's points or dimensions, a fresh scramble pads the sequence.
        let block = (index / SEQUENCE_LEN, dimension / dims);
        let seed = stream_seed(
            self.seed ^ scramble,
            block.0,
            if block.1 == 0 { "sobol" } else { "sobol+" },
        ) ^ block.1.wrapping_mul(0x9E37_79B9_7F4A_7C15);
        let u = sobol_burley::sample(
            (index % SEQUENCE_LEN) as u32,
            (dimension % dims) as u32,
            (seed ^ (seed >> 32)) as u32,
        );
        // The sequence has 23 bits; random low bits fill the rest of an f64 without leaving
        // the point's stratum.
        let low = stream_seed(seed, index, "low") >> 11;
        let u = f64::from(u) + low as f64 * (1.0 / (1u64 << 53) as f64) / (1u64 << 23) as f64;
        u.clamp(0.0, 1.0 - f64::EPSILON / 2.0)
    }
}

impl Default for SobolSampler {
    fn default() -> Self {
        SobolSampler::new(0)
    }
}

impl Sampler for SobolSampler {
    fn sample(
        &self,
        _history: &History,
        trial_number: u64,
        name: &str,
        distribution: &Distribution,
    ) -> Result<ParamValue> {
        distribution.validate(name)?;
        // Each name has its own scramble (and so its own sequence): two names never share
        // their values, whatever dimension they hash to.
        let h = stream_seed(self.seed, 0, name);
        let dimension = h % u64::from(sobol_burley::NUM_DIMENSIONS);
        let u = self.coordinate(trial_number, dimension, h);
        Ok(unit::from_unit(distribution, u))
    }

    fn sample_joint(&self, history: &History, trial_number: u64) -> Result<JointSample> {
        let mut joint = JointSample::new();
        for (dimension, (name, distribution)) in
            history.intersection_space().into_iter().enumerate()
        {
            if distribution.validate(&name).is_err() {
                continue; // left to `sample`, which reports it
            }
            let u = self.coordinate(trial_number, dimension as u64, 0);
            let value = unit::from_unit(&distribution, u);
            joint.insert(name, (distribution, value));
        }
        Ok(joint)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{RandomSampler, Study};
    use lepton_core::{Direction, FrozenTrial, Scale, TrialState};

    /// A history whose search space is `x` and `y` in `[0, 1]`.
    fn unit_square() -> History {
        let d = Distribution::float(0.0, 1.0, Scale::Linear);
        let mut t = FrozenTrial::new(0);
        t.state = TrialState::Complete;
        t.value = Some(0.0);
        for name in ["x", "y"] {
            t.params.insert(name.into(), ParamValue::Float(0.5));
            t.distributions.insert(name.into(), d.clone());
        }
        History::new(Direction::Minimize, vec![t])
    }

    fn sobol_points(seed: u64, n: u64) -> Vec<(f64, f64)> {
        let h = unit_square();
        (0..n)
            .map(|i| {
                let j = SobolSampler::new(seed).sample_joint(&h, i).unwrap();
                (j["x"].1.as_f64().unwrap(), j["y"].1.as_f64().unwrap())
            })
            .collect()
    }

    fn random_points(seed: u64, n: u64) -> Vec<(f64, f64)> {
        let h = unit_square();
        let d = Distribution::float(0.0, 1.0, Scale::Linear);
        let s = RandomSampler::new(seed);
        (0..n)
            .map(|i| {
                let x = s.sample(&h, i, "x", &d).unwrap().as_f64().unwrap();
                let y = s.sample(&h, i, "y", &d).unwrap().as_f64().unwrap();
                (x, y)
            })
            .collect()
    }

    /// How many points fall in each of the `k x k` cells of the unit square.
    fn cell_counts(points: &[(f64, f64)], k: usize) -> Vec<usize> {
        let mut counts = vec![0; k * k];
        for &(x, y) in points {
            let i = ((x * k as f64) as usize).min(k - 1);
            let j = ((y * k as f64) as usize).min(k - 1);
            counts[i * k + j] += 1;
        }
        counts
    }

    #[test]
    fn points_cover_the_square_more_evenly_than_random_ones() {
        for seed in 0..5 {
            let sobol = sobol_points(seed, 64);
            let random = random_points(seed, 64);
            // A scrambled Sobol net: 16 points in each quadrant, one in each 8 x 8 cell.
            assert_eq!(cell_counts(&sobol, 2), vec![16; 4], "seed {seed}");
            assert_eq!(cell_counts(&sobol, 8), vec![1; 64], "seed {seed}");
            // Independent draws leave about a third of the cells empty.
            let empty = cell_counts(&random, 8).iter().filter(|&&c| c == 0).count();
            assert!(empty >= 12, "seed {seed}: {empty} empty cells");
        }
    }

    #[test]
    fn reproducible_by_seed_and_different_across_seeds() {
        assert_eq!(sobol_points(3, 16), sobol_points(3, 16));
        assert_ne!(sobol_points(3, 16), sobol_points(4, 16));
        let h = History::default();
        let d = Distribution::float(-1.0, 1.0, Scale::Linear);
        let s = SobolSampler::new(3);
        assert_eq!(
            s.sample(&h, 5, "a", &d).unwrap(),
            s.sample(&h, 5, "a", &d).unwrap()
        );
        assert_ne!(
            s.sample(&h, 5, "a", &d).unwrap(),
            SobolSampler::new(4).sample(&h, 5, "a", &d).unwrap()
        );
        // Two names never share a sequence.
        assert_ne!(
            s.sample(&h, 5, "a", &d).unwrap(),
            s.sample(&h, 5, "b", &d).unwrap()
        );
    }

    #[test]
    fn one_parameter_at_a_time_is_still_stratified() {
        let d = Distribution::float(0.0, 1.0, Scale::Linear);
        let s = SobolSampler::new(11);
        let h = History::default();
        let mut counts = [0; 16];
        for t in 0..64 {
            let u = s.sample(&h, t, "lr", &d).unwrap().as_f64().unwrap();
            counts[((u * 16.0) as usize).min(15)] += 1;
        }
        assert_eq!(counts, [4; 16]);
    }

    #[test]
    fn every_kind_of_parameter_lands_in_its_distribution() {
        let ds = [
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
        let study = Study::builder("s")
            .with_sampler(SobolSampler::new(1))
            .build()
            .unwrap();
        study
            .optimize(40, |t| {
                for (i, d) in ds.iter().enumerate() {
                    t.suggest(&format!("p{i}"), d)?;
                }
                Ok(0.0)
            })
            .unwrap();
        let trials = study.trials().unwrap();
        assert!(trials.iter().all(|t| t.state == TrialState::Complete));
        // All three choices come up within a few trials.
        let choices: std::collections::HashSet<_> =
            trials.iter().map(|t| t.params["p4"].to_string()).collect();
        assert_eq!(choices.len(), 3);
        // Far indices and dimensions are padded, not refused.
        let s = SobolSampler::new(0);
        let far = s.coordinate(u64::MAX, u64::MAX, 7);
        assert!((0.0..1.0).contains(&far));
        assert!(
            s.sample(
                &History::default(),
                0,
                "x",
                &Distribution::float(1.0, 0.0, Scale::Linear)
            )
            .is_err()
        );
    }
}
