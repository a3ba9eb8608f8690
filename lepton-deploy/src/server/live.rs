//! The models the server answers with, and the hot swap: the registry's alias is polled, a
//! newly promoted version is loaded and verified off to the side, then put in place with one
//! pointer swap. Requests already in flight hold the version they started with and finish
//! on it; a version that does not load is refused and the one before keeps serving.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use lepton_core::Dataset;
use tokio::sync::Semaphore;

use crate::artifact::{Manifest, ModelArtifact};
use crate::error::{DeployError, Result};
use crate::labelled::Examples;
use crate::registry::Registry;
use crate::servable::{ModelLoader, Servable};
use crate::server::batcher::{Batcher, Batching};
use crate::server::metrics::{Metrics, RequestLabels};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::histogram::Histogram;

/// One version of one model, ready to answer.
pub(crate) struct Live {
    pub name: String,
    pub version: u64,
    pub manifest: Manifest,
    pub model: Arc<dyn Servable>,
    /// The dynamic batcher in front of the model, when batching is on.
    pub batcher: Option<Batcher>,
    /// Without batching: turns to run the model, one per core, so that requests that time
    /// out while waiting never reach it and the model never runs more often at once.
    pub turns: Arc<Semaphore>,
    /// The artifact's replay sample of training rows, if it has one.
    pub replay: Option<Examples>,
    /// This model's metrics, looked up once rather than on every request.
    pub handles: Handles,
}

impl Live {
    /// The replay sample online learning guards with: without one of at least two rows (a
    /// share to train on and a share to hold out), the model does not learn.
    pub fn learnable_replay(&self) -> Option<&Examples> {
        self.replay.as_ref().filter(|r| r.len() >= 2)
    }
}

/// The metric series a served model updates on every request.
pub(crate) struct Handles {
    /// Prediction requests answered 200.
    pub ok: Counter,
    pub latency: Histogram,
    pub rows: Counter,
    pub batch_rows: Histogram,
    /// Panics of the model caught while predicting.
    pub panics: Counter,
}

impl Handles {
    fn new(metrics: &Metrics, name: &str) -> Self {
        let model = Metrics::model(name);
        Handles {
            ok: metrics
                .requests
                .get_or_create(&RequestLabels {
                    endpoint: "predict".into(),
                    model: name.to_owned(),
                    status: 200,
                })
                .clone(),
            latency: metrics.latency.get_or_create(&model).clone(),
            rows: metrics.rows.get_or_create(&model).clone(),
            batch_rows: metrics.batch_rows.get_or_create(&model).clone(),
            panics: metrics.panics.get_or_create(&model).clone(),
        }
    }
}

/// What the server knows of one model name.
#[derive(Default, Clone)]
pub(crate) struct Slot {
    /// The version being served, if any loaded.
    pub live: Option<Arc<Live>>,
    /// Why the alias's current version is not served (it failed to load), if it is not.
    pub refused: Option<(u64, String)>,
}

/// A version number with its model, loaded.
type Anchor = (u64, Arc<dyn Servable>);

/// Every model the server knows, keyed by name.
pub(crate) struct Models {
    slots: RwLock<BTreeMap<String, Slot>>,
    registry: Arc<dyn Registry>,
    loader: Arc<dyn ModelLoader>,
    alias: String,
    batching: Option<Batching>,
    /// The longest a request waits in a model's queue.
    queue_deadline: Duration,
    metrics: Arc<Metrics>,
    /// Per model, the promoted version online learning guards against, loaded.
    anchors: Mutex<BTreeMap<String, Anchor>>,
    /// Held for a whole [`sync`](Self::sync): the poller and the learner both sync, and two
    /// interleaved syncs could put an older version back after a newer one.
    syncing: Mutex<()>,
}

impl Models {
    pub fn new(
        registry: Arc<dyn Registry>,
        loader: Arc<dyn ModelLoader>,
        alias: String,
        batching: Option<Batching>,
        queue_deadline: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        Models {
            slots: RwLock::new(BTreeMap::new()),
            registry,
            loader,
            alias,
            batching,
            queue_deadline,
            metrics,
            anchors: Mutex::new(BTreeMap::new()),
            syncing: Mutex::new(()),
        }
    }

    /// The version of `name` being served.
    pub fn live(&self, name: &str) -> Option<Arc<Live>> {
        self.read(|slots| slots.get(name).and_then(|s| s.live.clone()))
    }

    /// Every model name with what is served of it.
    pub fn list(&self) -> Vec<(String, Slot)> {
        self.read(|slots| slots.iter().map(|(n, s)| (n.clone(), s.clone())).collect())
    }

    /// What is served of `name`.
    pub fn slot(&self, name: &str) -> Option<Slot> {
        self.read(|slots| slots.get(name).cloned())
    }

    /// Builds `artifact`'s model with the loader. A loader that panics (on a hostile
    /// artifact) refuses the artifact: it must not take the poll, or the learner, with it.
    pub fn load_model(&self, artifact: &ModelArtifact) -> lepton_core::Result<Arc<dyn Servable>> {
        catch_unwind(AssertUnwindSafe(|| self.loader.load(artifact))).unwrap_or_else(|_| {
            Err(lepton_core::Error::InvalidInput(
                "loading the model panicked".into(),
            ))
        })
    }

    /// Registers `artifact` (a candidate fine-tuned from version `parent`) as the next
    /// version of `name` and points the alias at it, unless the alias has moved off `parent`
    /// meanwhile (an operator's promotion or rollback wins; the candidate stays registered,
    /// unserved, until learning removes it); then serves it at once. Returns the new version.
    pub fn promote_candidate(
        &self,
        name: &str,
        parent: u64,
        artifact: &ModelArtifact,
    ) -> Result<u64> {
        // Checked before as well as while promoting: a candidate that would lose is not
        // written at all.
        let found = self.registry.aliases(name)?.get(&self.alias).copied();
        if found != Some(parent) {
            return Err(DeployError::AliasMoved {
                name: name.to_owned(),
                alias: self.alias.clone(),
                expected: parent,
                found,
            });
        }
        let version = self
            .registry
            .register_and_promote_if(name, artifact, &self.alias, parent)?;
        self.sync();
        Ok(version)
    }

    /// Version `version` of `name` as a model (the served one, or loaded once and kept): the
    /// version an operator promoted, which online learning holds candidates to.
    pub fn anchor(&self, name: &str, version: u64) -> Result<Arc<dyn Servable>> {
        if let Some(live) = self.live(name).filter(|l| l.version == version) {
            return Ok(live.model.clone());
        }
        let mut anchors = self.anchors.lock().unwrap_or_else(|p| p.into_inner());
        if let Some((v, model)) = anchors.get(name)
            && *v == version
        {
            return Ok(model.clone());
        }
        let artifact = self.registry.get(name, version)?;
        let model = self.load_model(&artifact)?;
        anchors.insert(name.to_owned(), (version, model.clone()));
        Ok(model)
    }

    /// Removes the learned versions of `name` (those with a parent) beyond the newest
    /// `keep`, except any an alias points at.
    pub fn remove_old_learned(&self, name: &str, keep: usize) {
        let versions = match self.registry.versions(name) {
            Ok(versions) => versions,
            Err(e) => {
                tracing::warn!(model = %name, error = %e, "cannot list versions to remove");
                return;
            }
        };
        let learned: Vec<u64> = versions
            .into_iter()
            .filter(|&v| {
                self.registry
                    .manifest(name, v)
                    .is_ok_and(|m| m.parent_version.is_some())
            })
            .collect();
        for &version in learned.iter().rev().skip(keep) {
            match self.registry.remove(name, version) {
                Ok(()) => tracing::info!(model = %name, version, "removed an old learned version"),
                Err(DeployError::Kept { .. }) => {}
                Err(e) => tracing::warn!(model = %name, version, error = %e,
                    "could not remove an old learned version"),
            }
        }
    }

    /// The alias the server follows.
    pub fn alias(&self) -> &str {
        &self.alias
    }

    fn read<T>(&self, f: impl FnOnce(&BTreeMap<String, Slot>) -> T) -> T {
        f(&self.slots.read().unwrap_or_else(|p| p.into_inner()))
    }

    /// Brings every model up to the version its alias points at. Blocking (it reads and
    /// verifies artifacts and builds models): run it off the async threads. Returns how many
    /// versions were swapped in.
    pub fn sync(&self) -> usize {
        let _one_at_a_time = self.syncing.lock().unwrap_or_else(|p| p.into_inner());
        let names = match self.registry.models() {
            Ok(names) => names,
            Err(e) => {
                tracing::warn!(error = %e, "cannot list the registry's models");
                return 0;
            }
        };
        let mut swapped = 0;
        for name in names {
            let wanted = match self.registry.aliases(&name) {
                Ok(aliases) => aliases.get(&self.alias).copied(),
                Err(e) => {
                    tracing::warn!(model = %name, error = %e, "cannot read aliases");
                    continue;
                }
            };
            let Some(wanted) = wanted else { continue };
            let (served, refused) = self.read(|slots| {
                let slot = slots.get(&name);
                (
                    slot.and_then(|s| s.live.as_ref().map(|l| l.version)),
                    slot.and_then(|s| s.refused.as_ref().map(|r| r.0)),
                )
            });
            if served == Some(wanted) || refused == Some(wanted) {
                continue;
            }
            let outcome = self.load(&name, wanted);
            let mut slots = self.slots.write().unwrap_or_else(|p| p.into_inner());
            let slot = slots.entry(name.clone()).or_default();
            match outcome {
                Ok(live) => {
                    tracing::info!(model = %name, version = wanted, from = ?served, "serving");
                    self.metrics
                        .version
                        .get_or_create(&Metrics::model(&name))
                        .set(wanted as i64);
                    slot.live = Some(Arc::new(live));
                    slot.refused = None;
                    swapped += 1;
                }
                Err(e) => {
                    tracing::error!(model = %name, version = wanted, error = %e,
                        "refused to serve a version that does not load; the previous one keeps serving");
                    self.metrics
                        .load_failures
                        .get_or_create(&Metrics::model(&name))
                        .inc();
                    slot.refused = Some((wanted, e));
                }
            }
        }
        swapped
    }

    fn load(&self, name: &str, version: u64) -> std::result::Result<Live, String> {
        let artifact = self
            .registry
            .get(name, version)
            .map_err(|e| e.to_string())?;
        let replay = artifact.replay().map_err(|e| e.to_string())?;
        let model = self.load_model(&artifact).map_err(|e| e.to_string())?;
        if model.width() == 0 || model.schema() != &artifact.manifest().input_schema {
            return Err("the loaded model's schema disagrees with its manifest".into());
        }
        let handles = Handles::new(&self.metrics, name);
        let batcher = self.batching.map(|batching| {
            let (histogram, panics) = (handles.batch_rows.clone(), handles.panics.clone());
            Batcher::start(
                model.clone(),
                batching,
                self.queue_deadline,
                move |rows| histogram.observe(rows as f64),
                move || {
                    panics.inc();
                },
            )
        });
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(Live {
            name: name.to_owned(),
            version,
            manifest: artifact.manifest().clone(),
            model,
            batcher,
            turns: Arc::new(Semaphore::new(cores)),
            replay,
            handles,
        })
    }
}
