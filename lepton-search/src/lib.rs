//! Lepton's search stage: studies that ask samplers for trials and keep them in a storage.
//!
//! ```
//! use lepton_search::{RandomSampler, Study};
//! use lepton_core::{Direction, Scale};
//!
//! let study = Study::builder("quadratic")
//!     .with_direction(Direction::Minimize)
//!     .with_sampler(RandomSampler::new(42))
//!     .build()?;
//! study.optimize(50, |trial| {
//!     let x = trial.suggest_float("x", -10.0, 10.0, Scale::Linear)?;
//!     Ok((x - 2.0).powi(2))
//! })?;
//! let best = study.best_trial()?.expect("50 complete trials");
//! assert!(best.value.unwrap() < 1.0);
//! # Ok::<(), lepton_core::Error>(())
//! ```

pub mod export;
pub mod importance;
pub mod problems;
pub mod pruners;
pub mod samplers;
pub mod scheduler;
pub mod storage;
mod study;

pub use importance::PedAnova;
pub use pruners::{
    HyperbandPruner, ParetoPruner, PatientPruner, PercentilePruner, SuccessiveHalvingPruner,
    ThresholdPruner,
};
pub use samplers::{BohbSampler, CmaEsSampler, GridSampler, SobolSampler};
pub use samplers::{GpSampler, RandomSampler, TpeSampler};
pub use scheduler::{Budget, HyperbandScheduler};
pub use storage::InMemoryStorage;
#[cfg(feature = "postgres")]
pub use storage::PostgresStorage;
#[cfg(feature = "sqlite")]
pub use storage::SqliteStorage;
pub use study::{
    DEFAULT_HEARTBEAT_GRACE, DEFAULT_HEARTBEAT_INTERVAL, Observe, OptimizeOptions, Study,
    StudyBuilder,
};
