//! Online learning from feedback: labelled rows posted to `/v1/models/{name}/feedback` are
//! buffered; every interval, a model with enough of them gets a candidate, a copy of the live
//! version fine-tuned on the feedback mixed with a replay sample of its training rows. The
//! candidate is scored on a guard set it never trained on (held-out feedback, and held-out
//! replay rows for the training distribution) and becomes a new registry version, promoted,
//! only if it does significantly better than the live version on the feedback guard (a paired
//! one-sided test on the rows, so that a candidate no better than the live one passes with a
//! known small chance) and no worse than the margin on the replay guard. Either way the round
//! and its reason are recorded.
//!
//! Feedback is written by clients, so it is not trusted to judge itself: consistent wrong
//! labels pass the feedback guard. What holds is the replay guard, and so
//! - a model without a replay sample does not learn (its feedback is refused);
//! - the replay margin is measured against the version an operator promoted (the one the
//!   learned versions descend from), not the live one, so that rounds cannot ratchet the
//!   model away from its training distribution a margin at a time;
//! - at most one promotion per [`OnlineLearning::min_promotion_interval`];
//! - learned versions beyond the newest [`OnlineLearning::keep_learned`] are removed from the
//!   registry, so that learning does not fill the disk.
//!
//! What the replay guard cannot see, it cannot defend: labels flipped in a region of the
//! input space the replay sample has no rows in are learned like a genuine shift there.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::Serialize;

use lepton_core::{Dataset, Features, Prediction, Target, Task};

use crate::labelled::Examples;
use crate::servable::{Servable, Tuning};
use crate::server::live::{Live, Models};
use crate::server::metrics::{CandidateLabels, Metrics};

/// When and how the server learns from feedback.
#[derive(Debug, Clone, PartialEq)]
pub struct OnlineLearning {
    /// How often buffered feedback is looked at.
    pub interval: Duration,
    /// The fewest buffered rows worth a candidate.
    pub min_feedback: usize,
    /// The most rows buffered per model (the oldest go first).
    pub max_buffer: usize,
    /// The share of the feedback, and of the replay sample, held out as the guard set.
    pub guard_fraction: f64,
    /// Replay rows mixed in per feedback row when fine-tuning.
    pub replay_ratio: f64,
    /// How much worse than the live version a candidate may score on the replay guard.
    pub margin: f64,
    /// How sure the feedback guard must make the gain: the one-sided z-score the mean paired
    /// per-row improvement (correctness, or squared error) must exceed. 2.33 lets a candidate
    /// that is no better than the live one through about 1 % of the time.
    pub gain_z: f64,
    /// The shortest time between two promotions of one model: feedback waits meanwhile.
    pub min_promotion_interval: Duration,
    /// How many learned versions of a model the registry keeps (the newest; any an alias
    /// points at are kept too).
    pub keep_learned: usize,
    /// How candidates are fine-tuned.
    pub tuning: Tuning,
}

impl Default for OnlineLearning {
    fn default() -> Self {
        OnlineLearning {
            interval: Duration::from_secs(30),
            min_feedback: 200,
            max_buffer: 10_000,
            guard_fraction: 0.25,
            replay_ratio: 1.0,
            margin: 0.01,
            gain_z: 2.33,
            min_promotion_interval: Duration::from_secs(600),
            keep_learned: 5,
            tuning: Tuning::default(),
        }
    }
}

/// Scores on the guard set: accuracy for a classification, R² for a regression.
#[derive(Debug, Clone, Copy, Serialize)]
pub(crate) struct GuardScores {
    feedback: f64,
    replay: f64,
}

/// One learning round, as `/v1/models/{name}` reports the last one.
#[derive(Debug, Clone, Serialize)]
pub(crate) struct Round {
    at_unix: u64,
    parent_version: u64,
    feedback_rows: usize,
    replay_rows: usize,
    live: Option<GuardScores>,
    candidate: Option<GuardScores>,
    promoted_version: Option<u64>,
    reason: String,
}

#[derive(Default)]
struct Buffer {
    pending: Option<Examples>,
    received: u64,
    rounds: u64,
    last: Option<Round>,
    promoted_at: Option<Instant>,
}

/// The feedback buffers and the learning rounds.
pub(crate) struct Learner {
    config: OnlineLearning,
    buffers: Mutex<BTreeMap<String, Buffer>>,
}

impl Learner {
    pub fn new(config: OnlineLearning) -> Self {
        Learner {
            config,
            buffers: Mutex::new(BTreeMap::new()),
        }
    }

    pub fn interval(&self) -> Duration {
        self.config.interval
    }

    fn buffers(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Buffer>> {
        self.buffers.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Buffers feedback for `name`; returns how many rows wait.
    pub fn add(&self, name: &str, examples: &Examples) -> lepton_core::Result<usize> {
        let mut buffers = self.buffers();
        let buffer = buffers.entry(name.to_owned()).or_default();
        let pending = buffer.pending.get_or_insert_with(|| {
            Examples::empty(examples.schema().task.clone(), examples.width())
        });
        if pending.width() != examples.width() || pending.schema().task != examples.schema().task {
            // The served version changed shape: older feedback no longer fits.
            *pending = Examples::empty(examples.schema().task.clone(), examples.width());
        }
        pending.extend(examples)?;
        pending.keep_last(self.config.max_buffer);
        buffer.received += examples.len() as u64;
        Ok(pending.len())
    }

    /// What `/v1/models/{name}` shows of learning.
    pub fn status(&self, name: &str) -> serde_json::Value {
        let buffers = self.buffers();
        let buffer = buffers.get(name);
        serde_json::json!({
            "buffered": buffer.and_then(|b| b.pending.as_ref()).map_or(0, Examples::len),
            "received": buffer.map_or(0, |b| b.received),
            "rounds": buffer.map_or(0, |b| b.rounds),
            "last_round": buffer.and_then(|b| b.last.clone()),
        })
    }

    /// Runs a round for every model with enough feedback. Blocking (it trains).
    pub fn run_rounds(&self, models: &Models, metrics: &Metrics) {
        let ready: Vec<(String, Examples, u64)> = {
            let mut buffers = self.buffers();
            buffers
                .iter_mut()
                .filter(|(_, b)| {
                    b.pending
                        .as_ref()
                        .is_some_and(|p| p.len() >= self.config.min_feedback.max(2))
                        && b.promoted_at
                            .is_none_or(|t| t.elapsed() >= self.config.min_promotion_interval)
                })
                .filter_map(|(name, b)| Some((name.clone(), b.pending.take()?, b.rounds + 1)))
                .collect()
        };
        for (name, feedback, round) in ready {
            let Some(live) = models.live(&name) else {
                continue;
            };
            let outcome = self.round(models, &live, feedback, round);
            let label = if outcome.promoted_version.is_some() {
                "promoted"
            } else {
                "rejected"
            };
            tracing::info!(model = %name, parent = outcome.parent_version,
                promoted = ?outcome.promoted_version, reason = %outcome.reason, "learning round");
            metrics
                .candidates
                .get_or_create(&CandidateLabels {
                    model: name.clone(),
                    outcome: label.to_owned(),
                })
                .inc();
            let promoted = outcome.promoted_version.is_some();
            if promoted {
                models.remove_old_learned(&name, self.config.keep_learned);
            }
            if let Some(b) = self.buffers().get_mut(&name) {
                // Counted once finished, with its outcome, so a reader sees both or neither.
                b.rounds = round;
                b.last = Some(outcome);
                if promoted {
                    b.promoted_at = Some(Instant::now());
                }
            }
        }
    }

    /// One round for one model: fine-tune, guard, and promote or not.
    fn round(&self, models: &Models, live: &Live, feedback: Examples, round: u64) -> Round {
        let c = &self.config;
        let seed = c.tuning.seed ^ round.wrapping_mul(0x9e37_79b9_7f4a_7c15);
        let mut record = Round {
            at_unix: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
            parent_version: live.version,
            feedback_rows: feedback.len(),
            replay_rows: 0,
            live: None,
            candidate: None,
            promoted_version: None,
            reason: String::new(),
        };
        // Held-out feedback: a random share. Held-out replay rows: the sample's last share
        // (the same rows every round, never trained on by any candidate).
        let mut order: Vec<usize> = (0..feedback.len()).collect();
        order.shuffle(&mut StdRng::seed_from_u64(seed));
        let held = held_out(feedback.len(), c.guard_fraction);
        let (feedback_guard, feedback_train) = (
            feedback.select(&order[..held]),
            feedback.select(&order[held..]),
        );
        let Some(replay) = live.learnable_replay() else {
            record.reason = "no replay sample of the training rows to guard them: \
                             a model without one does not learn"
                .into();
            return record;
        };
        let (replay_train, replay_guard) =
            replay.split_at(replay.len() - held_out(replay.len(), c.guard_fraction));
        // The version an operator promoted, which the replay guard holds every round to.
        let anchor_version = live.manifest.parent_version.unwrap_or(live.version);
        let anchor = match models.anchor(&live.name, anchor_version) {
            Ok(model) => model,
            Err(e) => {
                record.reason =
                    format!("the promoted version v{anchor_version} to guard against: {e}");
                return record;
            }
        };
        let mut train = feedback_train;
        let wanted = (train.len() as f64 * c.replay_ratio).round() as usize;
        match Examples::sample(&replay_train, wanted, seed).and_then(|s| train.extend(&s)) {
            Ok(()) => record.replay_rows = wanted.min(replay_train.len()),
            Err(e) => {
                record.reason = format!("replay sample: {e}");
                return record;
            }
        }
        let tuning = Tuning { seed, ..c.tuning };
        let artifact = live
            .model
            .fine_tune(&train, &tuning)
            .map(|a| a.with_parent_version(anchor_version))
            .and_then(|a| a.with_replay(replay).map_err(Into::into));
        let artifact = match artifact {
            Ok(a) => a,
            Err(e) => {
                record.reason = format!("fine-tuning failed: {e}");
                return record;
            }
        };
        let candidate = match models.load_model(&artifact) {
            Ok(m) => m,
            Err(e) => {
                record.reason = format!("the candidate does not load: {e}");
                return record;
            }
        };
        let guard = |model: &dyn Servable| -> lepton_core::Result<(Vec<f64>, GuardScores)> {
            let rows = per_row(model, &feedback_guard)?;
            let replay_rows = per_row(model, &replay_guard)?;
            Ok((
                rows.clone(),
                GuardScores {
                    feedback: score(&rows, &feedback_guard),
                    replay: score(&replay_rows, &replay_guard),
                },
            ))
        };
        let scored = (
            guard(live.model.as_ref()),
            guard(candidate.as_ref()),
            per_row(anchor.as_ref(), &replay_guard).map(|r| score(&r, &replay_guard)),
        );
        let ((old_rows, old), (new_rows, new), promoted_replay) = match scored {
            (Ok(old), Ok(new), Ok(promoted)) => (old, new, promoted),
            (Err(e), _, _) | (_, Err(e), _) | (_, _, Err(e)) => {
                record.reason = format!("scoring failed: {e}");
                return record;
            }
        };
        record.live = Some(old);
        record.candidate = Some(new);
        let z = paired_z(&old_rows, &new_rows);
        let loss = promoted_replay - new.replay;
        let replay_text = format!(
            "replay guard {:.4} against the promoted v{anchor_version}'s {promoted_replay:.4}",
            new.replay
        );
        if z <= c.gain_z {
            record.reason = format!(
                "no significant gain on held-out feedback: {:.4} against the live {:.4} \
                 (z = {z:.2}, needs more than {}); {replay_text}",
                new.feedback, old.feedback, c.gain_z
            );
            return record;
        }
        if loss > c.margin {
            record.reason = format!(
                "forgets the training distribution: {replay_text}, worse by {loss:.4} (margin \
                 {}); feedback guard {:.4} against {:.4}",
                c.margin, new.feedback, old.feedback
            );
            return record;
        }
        match models.promote_candidate(&live.name, live.version, &artifact) {
            Ok(version) => {
                record.promoted_version = Some(version);
                record.reason = format!(
                    "feedback guard {:.4} against {:.4}; {replay_text}",
                    new.feedback, old.feedback
                );
            }
            Err(e) => record.reason = format!("not promoted: {e}"),
        }
        record
    }
}

/// How many of `n` rows a share `fraction` holds out: at least 1, at most `n - 1`.
fn held_out(n: usize, fraction: f64) -> usize {
    ((n as f64 * fraction).round() as usize).clamp(1, n.saturating_sub(1).max(1))
}

/// How good each row's prediction is: 1 or 0 (right or wrong class), or the negated squared
/// error of a value.
fn per_row(model: &dyn Servable, data: &Examples) -> lepton_core::Result<Vec<f64>> {
    let predictions = model.predict(Features::new(data.feature_values(), data.width())?)?;
    Ok(predictions
        .iter()
        .zip(data.targets())
        .map(|(p, t)| match (p, t) {
            (_, Target::Class(c)) => f64::from(u8::from(p.class() == Some(*c))),
            (Prediction::Value(p), Target::Value(t)) => -(p - t).powi(2),
            (Prediction::Class { .. }, Target::Value(_)) => f64::NEG_INFINITY,
        })
        .collect())
}

/// Accuracy (classification) or R² (regression; the negated mean squared error when the
/// targets do not vary) from [`per_row`]'s values.
fn score(rows: &[f64], data: &Examples) -> f64 {
    let n = rows.len().max(1) as f64;
    match &data.schema().task {
        Task::Classification { .. } => rows.iter().sum::<f64>() / n,
        Task::Regression => {
            let values: Vec<f64> = data
                .targets()
                .iter()
                .filter_map(|t| match t {
                    Target::Value(v) => Some(*v),
                    Target::Class(_) => None,
                })
                .collect();
            let mean = values.iter().sum::<f64>() / n;
            let sse = -rows.iter().sum::<f64>();
            let sst: f64 = values.iter().map(|t| (t - mean).powi(2)).sum();
            if sst > 0.0 { 1.0 - sse / sst } else { -sse / n }
        }
    }
}

/// The z-score of the mean paired improvement `new - old` (0 when nothing improves).
fn paired_z(old: &[f64], new: &[f64]) -> f64 {
    let d: Vec<f64> = new.iter().zip(old).map(|(n, o)| n - o).collect();
    let n = d.len() as f64;
    if d.len() < 2 {
        return 0.0;
    }
    let mean = d.iter().sum::<f64>() / n;
    let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    if !var.is_finite() {
        return 0.0;
    }
    if var == 0.0 {
        // Every row moved by the same amount: certain, in whichever direction.
        return if mean > 0.0 { f64::INFINITY } else { 0.0 };
    }
    mean / (var / n).sqrt()
}

/// Runs learning rounds every interval.
pub(crate) async fn follow_feedback(
    learner: Arc<Learner>,
    models: Arc<Models>,
    metrics: Arc<Metrics>,
) {
    let mut tick = tokio::time::interval(learner.interval());
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let (learner, models, metrics) = (learner.clone(), models.clone(), metrics.clone());
        if let Err(e) =
            tokio::task::spawn_blocking(move || learner.run_rounds(&models, &metrics)).await
        {
            tracing::error!(error = %e, "a learning round failed");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_paired_test_needs_a_consistent_gain() {
        assert_eq!(paired_z(&[0.0; 10], &[0.0; 10]), 0.0);
        assert_eq!(paired_z(&[0.0; 10], &[1.0; 10]), f64::INFINITY);
        assert_eq!(paired_z(&[1.0; 10], &[0.0; 10]), 0.0);
        // 12 rows better, 8 worse out of 100: not significant; 30 better, 5 worse: it is.
        let old = vec![0.0; 100];
        let mut new = old.clone();
        new[..12].fill(1.0);
        new[12..20].fill(-1.0);
        assert!(paired_z(&old, &new) < 2.33);
        new[..30].fill(1.0);
        new[30..35].fill(-1.0);
        new[35..].fill(0.0);
        assert!(paired_z(&old, &new) > 2.33);
        assert_eq!(held_out(100, 0.25), 25);
        assert_eq!(held_out(2, 0.25), 1);
        assert_eq!(held_out(3, 0.9), 2);
    }
}
