//! [`StudyBuilder`]: a study's name, direction, sampler, pruner, storage and heartbeat, each
//! with a working default, and the creation (or loading) of the study in its storage.

use std::sync::Arc;
use std::time::Duration;

use lepton_core::{Direction, Error, NopPruner, Pruner, Result, Sampler, Storage};

use super::Study;
use super::heartbeat::{DEFAULT_HEARTBEAT_GRACE, DEFAULT_HEARTBEAT_INTERVAL, Heartbeat};
use crate::samplers::RandomSampler;
use crate::storage::InMemoryStorage;

/// Builds a [`Study`]; every part has a working default (random sampler, no pruning,
/// in-memory storage, minimization, and a heartbeat when the storage is persistent).
pub struct StudyBuilder {
    name: String,
    direction: Direction,
    sampler: Arc<dyn Sampler>,
    pruner: Arc<dyn Pruner>,
    storage: Arc<dyn Storage>,
    heartbeat: HeartbeatChoice,
    /// The grace period, when set (else twice a chosen interval, or the default grace).
    grace: Option<Duration>,
    retries: u32,
}

/// Whether a study keeps heartbeats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum HeartbeatChoice {
    /// Every [`DEFAULT_HEARTBEAT_INTERVAL`] on a persistent storage; none in memory.
    Default,
    /// None.
    Off,
    /// At this interval.
    Every(Duration),
}

impl StudyBuilder {
    /// Sets whether the objective is minimized or maximized.
    pub fn with_direction(mut self, direction: Direction) -> Self {
        self.direction = direction;
        self
    }

    /// Sets the sampler.
    pub fn with_sampler(mut self, sampler: impl Sampler + 'static) -> Self {
        self.sampler = Arc::new(sampler);
        self
    }

    /// Sets the pruner.
    pub fn with_pruner(mut self, pruner: impl Pruner + 'static) -> Self {
        self.pruner = Arc::new(pruner);
        self
    }

    /// Sets the storage (shared, so several studies or workers can use one).
    pub fn with_storage(mut self, storage: Arc<dyn Storage>) -> Self {
        self.storage = storage;
        self
    }

    /// Makes the study refresh each running trial's heartbeat every `interval` while its
    /// objective runs, and fail, before each `ask`, the running trials whose heartbeat is
    /// older than a grace period (twice the interval, as Optuna's default; see
    /// [`with_heartbeat_grace`](Self::with_heartbeat_grace)): their workers died, and the
    /// study goes on without them.
    ///
    /// On a persistent storage (SQLite, PostgreSQL: [`Storage::is_persistent`]) a study has
    /// a heartbeat even without this call: every [`DEFAULT_HEARTBEAT_INTERVAL`], with a grace
    /// of [`DEFAULT_HEARTBEAT_GRACE`], so that a process killed mid-trial leaves no trial
    /// running for ever. Heartbeats are refreshed while [`Study::optimize`] (and the
    /// Hyperband scheduler) run an objective; code that asks and tells by hand and holds a
    /// trial longer than the grace while other asks happen should set a longer grace or call
    /// [`without_heartbeat`](Self::without_heartbeat).
    pub fn with_heartbeat(mut self, interval: Duration) -> Self {
        self.heartbeat = HeartbeatChoice::Every(interval);
        self
    }

    /// No heartbeat, even on a persistent storage: a trial whose process dies stays running
    /// until a sweep (`lepton study sweep`, [`Study::fail_stale_trials`]) fails it.
    pub fn without_heartbeat(mut self) -> Self {
        self.heartbeat = HeartbeatChoice::Off;
        self
    }

    /// Sets the grace period after which a silent running trial is failed (at least the
    /// heartbeat interval; ignored without a heartbeat).
    pub fn with_heartbeat_grace(mut self, grace: Duration) -> Self {
        self.grace = Some(grace);
        self
    }

    /// Retries the configuration of a trial failed for a silent worker, up to `retries`
    /// times (Optuna's `RetryFailedTrialCallback`, but exactly once per failure even when
    /// the worker that failed it dies too): it is enqueued again, with user attributes
    /// `retry_of` (the failed trial's number) and `retries` (how many times it has been
    /// retried). Needs a heartbeat ([`with_heartbeat`](Self::with_heartbeat), or a
    /// persistent storage's default one).
    pub fn with_stale_retries(mut self, retries: u32) -> Self {
        self.retries = retries;
        self
    }

    /// Creates the study in its storage, or loads it if it exists with the same direction.
    /// Refuses a zero heartbeat interval or a grace period shorter than the interval.
    pub fn build(self) -> Result<Study> {
        let (interval, grace) = match self.heartbeat {
            HeartbeatChoice::Every(interval) => (Some(interval), interval.saturating_mul(2)),
            HeartbeatChoice::Default if self.storage.is_persistent() => {
                (Some(DEFAULT_HEARTBEAT_INTERVAL), DEFAULT_HEARTBEAT_GRACE)
            }
            HeartbeatChoice::Default | HeartbeatChoice::Off => (None, Duration::ZERO),
        };
        let heartbeat = interval.map(|interval| Heartbeat {
            interval,
            grace: self.grace.unwrap_or(grace),
            retries: self.retries,
        });
        if let Some(h) = heartbeat {
            let reason = if h.interval.is_zero() {
                Some("the heartbeat interval must be positive")
            } else if h.grace < h.interval {
                Some("the grace period must be at least the heartbeat interval")
            } else {
                None
            };
            if let Some(reason) = reason {
                return Err(Error::InvalidParameter {
                    name: "heartbeat".into(),
                    reason: reason.into(),
                });
            }
        }
        match self.storage.create_study(&self.name, self.direction) {
            Ok(()) => {}
            Err(Error::StudyExists(_)) => {
                let stored = self.storage.study_direction(&self.name)?;
                if stored != self.direction {
                    return Err(Error::InvalidParameter {
                        name: "direction".into(),
                        reason: format!(
                            "study `{}` exists with direction {stored:?}, not {:?}",
                            self.name, self.direction
                        ),
                    });
                }
            }
            Err(e) => return Err(e),
        }
        Ok(Study {
            name: self.name,
            direction: self.direction,
            sampler: self.sampler,
            pruner: self.pruner,
            storage: self.storage,
            heartbeat,
            last_sweep: std::sync::Mutex::new(None),
        })
    }
}

impl Study {
    /// Starts building a study called `name`.
    pub fn builder(name: impl Into<String>) -> StudyBuilder {
        StudyBuilder {
            name: name.into(),
            direction: Direction::Minimize,
            sampler: Arc::new(RandomSampler::default()),
            pruner: Arc::new(NopPruner),
            storage: Arc::new(InMemoryStorage::new()),
            heartbeat: HeartbeatChoice::Default,
            grace: None,
            retries: 0,
        }
    }
}
