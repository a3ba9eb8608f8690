//! Samplers: each proposes parameter values behind the core `Sampler` trait.

mod cmaes;
mod gauss;
mod gp;
mod grid;
mod parzen;
mod random;
mod sobol;
mod tpe;
pub(crate) mod unit;

pub use cmaes::CmaEsSampler;
pub use gp::GpSampler;
pub use grid::{GridSampler, MAX_GRID_POINTS};
pub use random::RandomSampler;
pub use sobol::SobolSampler;
pub use tpe::TpeSampler;

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
