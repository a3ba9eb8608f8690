//! Checkpoints of a training run. After every epoch the loop writes the network, the
//! optimizer's state, the best weights so far and the epoch count; a run started again with the
//! same directory and the same configuration goes on after the last finished epoch instead of
//! starting over (a crashed worker, a trial promoted to a larger budget).
//!
//! Layout: `epoch-N/` holds `net.bpk`, `optimizer.bin`, `best.bpk` (once there is a validated
//! epoch) and `state.json`; `latest` names the newest complete `epoch-N`. Each epoch is written
//! to a temporary directory and renamed, then `latest` is replaced by a rename, so a crash at
//! any moment leaves the previous checkpoint intact.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use burn::module::Module;
use burn::optim::{ModuleOptimizer, OptimizerRecord};
use burn::tensor::Bytes;

use crate::burnpack;
use crate::error::{ModelError, Result};
use crate::net::Net;
use crate::training_summary::TrainingSummary;

/// Where a run keeps its checkpoints, and the configuration they belong to.
#[derive(Debug, Clone)]
pub(crate) struct Checkpoints {
    dir: PathBuf,
    /// The model configuration as JSON: a checkpoint of another configuration is refused.
    config: String,
}

/// What `state.json` records besides the tensors.
#[derive(Debug, Serialize, Deserialize)]
struct State {
    config: String,
    epoch: usize,
    summary: TrainingSummary,
    /// Score, loss and epoch of the best weights, if any epoch was validated.
    best: Option<(f64, f64, usize)>,
}

/// A run restored from its checkpoint.
pub(crate) struct Resumed<M> {
    pub net: M,
    pub optimizer: ModuleOptimizer,
    pub epoch: usize,
    pub summary: TrainingSummary,
    pub best: Option<(M, f64, f64, usize)>,
}

fn io(path: &Path, e: std::io::Error) -> ModelError {
    ModelError::Checkpoint(format!("{}: {e}", path.display()))
}

fn record_error(e: impl std::fmt::Display) -> ModelError {
    ModelError::Checkpoint(e.to_string())
}

fn load_module<M: Module>(template: M, path: &Path) -> Result<M> {
    let bytes = std::fs::read(path).map_err(|e| io(path, e))?;
    burnpack::load(template, bytes)
}

impl Checkpoints {
    /// Checkpoints in `dir` of a run of `config` (a model configuration).
    pub fn new(dir: &Path, config: &impl Serialize) -> Result<Self> {
        Ok(Checkpoints {
            dir: dir.to_path_buf(),
            config: serde_json::to_string(config).map_err(record_error)?,
        })
    }

    /// Writes the state after `epoch`.
    pub fn save<M: Net>(
        &self,
        epoch: usize,
        net: &M,
        optimizer: &ModuleOptimizer,
        summary: &TrainingSummary,
        best: Option<&(M, f64, f64, usize)>,
    ) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(|e| io(&self.dir, e))?;
        let tmp = self.dir.join(format!(".tmp-epoch-{epoch}"));
        if tmp.exists() {
            std::fs::remove_dir_all(&tmp).map_err(|e| io(&tmp, e))?;
        }
        std::fs::create_dir(&tmp).map_err(|e| io(&tmp, e))?;
        let write = |name: &str, bytes: &[u8]| {
            let path = tmp.join(name);
            std::fs::write(&path, bytes).map_err(|e| io(&path, e))
        };
        write("net.bpk", &burnpack::to_bytes(net)?)?;
        let optim = optimizer.to_record().into_bytes().map_err(record_error)?;
        write("optimizer.bin", &optim)?;
        if let Some((best_net, ..)) = best {
            write("best.bpk", &burnpack::to_bytes(best_net)?)?;
        }
        let state = State {
            config: self.config.clone(),
            epoch,
            summary: summary.clone(),
            best: best.map(|(_, score, loss, at)| (*score, *loss, *at)),
        };
        write(
            "state.json",
            serde_json::to_string(&state)
                .map_err(record_error)?
                .as_bytes(),
        )?;
        let name = format!("epoch-{epoch}");
        let done = self.dir.join(&name);
        if done.exists() {
            std::fs::remove_dir_all(&done).map_err(|e| io(&done, e))?;
        }
        std::fs::rename(&tmp, &done).map_err(|e| io(&done, e))?;
        let latest = self.dir.join("latest");
        let latest_tmp = self.dir.join(".latest.tmp");
        std::fs::write(&latest_tmp, &name).map_err(|e| io(&latest_tmp, e))?;
        std::fs::rename(&latest_tmp, &latest).map_err(|e| io(&latest, e))?;
        // Older epochs are no longer needed.
        if epoch > 1 {
            let old = self.dir.join(format!("epoch-{}", epoch - 1));
            if old.exists() {
                std::fs::remove_dir_all(&old).map_err(|e| io(&old, e))?;
            }
        }
        Ok(())
    }

    /// The run saved in the directory, if any: `train_template` and `inference_template` are
    /// fresh networks of the configured shape (training and inference mode), `optimizer` a
    /// fresh optimizer. A checkpoint of another configuration is an error.
    pub fn load<M: Net>(
        &self,
        train_template: M,
        inference_template: M,
        optimizer: ModuleOptimizer,
    ) -> Result<Option<Resumed<M>>> {
        let latest = self.dir.join("latest");
        let name = match std::fs::read_to_string(&latest) {
            Ok(name) => name,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(&latest, e)),
        };
        let dir = self.dir.join(name.trim());
        let state_path = dir.join("state.json");
        let text = std::fs::read_to_string(&state_path).map_err(|e| io(&state_path, e))?;
        let state: State = serde_json::from_str(&text).map_err(record_error)?;
        if state.config != self.config {
            return Err(ModelError::Checkpoint(format!(
                "{} holds a run of another configuration",
                self.dir.display()
            )));
        }
        let net = load_module(train_template, &dir.join("net.bpk"))?;
        let path = dir.join("optimizer.bin");
        let bytes = std::fs::read(&path).map_err(|e| io(&path, e))?;
        let optim =
            OptimizerRecord::from_bytes(Bytes::from_bytes_vec(bytes)).map_err(record_error)?;
        let best = match state.best {
            Some((score, loss, at)) => Some((
                load_module(inference_template, &dir.join("best.bpk"))?,
                score,
                loss,
                at,
            )),
            None => None,
        };
        Ok(Some(Resumed {
            net,
            optimizer: optimizer.load_record(optim),
            epoch: state.epoch,
            summary: state.summary,
            best,
        }))
    }
}
