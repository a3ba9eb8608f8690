//! Samplers: each proposes parameter values behind the core `Sampler` trait.

mod bohb;
mod cmaes;
pub mod conformance;
mod gauss;
mod gp;
mod grid;
mod parzen;
mod random;
mod sobol;
mod tpe;
pub(crate) mod unit;

pub use bohb::BohbSampler;
pub use cmaes::CmaEsSampler;
pub use gp::GpSampler;
pub use grid::{GridSampler, MAX_GRID_POINTS};
pub use random::RandomSampler;
pub use sobol::SobolSampler;
pub use tpe::TpeSampler;

/// The names [`by_name`] knows, for help texts and error messages.
pub const SAMPLER_NAMES: &[&str] = &[
    "random",
    "sobol",
    "tpe",
    "tpe-indep",
    "tpe-group",
    "gp",
    "gp-deterministic",
    "cmaes",
    "bohb",
];

/// A sampler chosen by name with default settings and `seed`: `random`, `sobol`, `tpe`
/// (multivariate), `tpe-indep` (univariate), `tpe-group` (grouped, for conditional spaces),
/// `gp`, `cmaes` or `bohb` (TPE on the largest budget with enough reports; pair it with the
/// Hyperband pruner). The grid sampler needs its grid and has no name here.
pub fn by_name(name: &str, seed: u64) -> lepton_core::Result<Box<dyn lepton_core::Sampler>> {
    Ok(match name {
        "random" => Box::new(RandomSampler::new(seed)),
        "sobol" => Box::new(SobolSampler::new(seed)),
        "tpe" => Box::new(TpeSampler::new(seed)),
        "tpe-indep" => Box::new(TpeSampler::new(seed).with_multivariate(false)),
        "tpe-group" => Box::new(TpeSampler::new(seed).with_group(true)),
        "gp" => Box::new(GpSampler::new(seed)),
        "gp-deterministic" => Box::new(GpSampler::new(seed).with_deterministic_objective(true)),
        "cmaes" => Box::new(CmaEsSampler::new(seed)),
        "bohb" => Box::new(BohbSampler::new(seed)),
        other => {
            return Err(lepton_core::Error::InvalidParameter {
                name: "sampler".into(),
                reason: format!(
                    "unknown sampler `{other}`; one of {}",
                    SAMPLER_NAMES.join(", ")
                ),
            });
        }
    })
}

/// A stable 64-bit mix of a seed, a trial number and a parameter name, so that every draw has
/// its own reproducible random stream whatever order trials run in.
pub(crate) fn stream_seed(seed: u64, trial: u64, name: &str) -> u64 {
    let mut h = splitmix64(seed ^ splitmix64(trial));
    for b in name.bytes() {
        h = splitmix64(h ^ u64::from(b));
    }
    h
}

fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}
