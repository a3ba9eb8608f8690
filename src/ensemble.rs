//! A weighted ensemble of fitted models of any families: each member reads its own slice of
//! the input (its preprocessor's output, side by side with the others': see
//! [`FittedPreprocessor::side_by_side`](lepton_data::FittedPreprocessor::side_by_side)),
//! and the ensemble predicts the weighted mean of their class probabilities or values.

use std::any::Any;
use std::ops::Range;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use lepton_core::{Features, Predict, Prediction};
use lepton_models::{Head, TrainingSummary};

use crate::error::{Error, Result};
use crate::family::{Fitted, ModelFamily, features_for};

/// The `model_family` of an ensemble's artifact (no family may take this name).
pub const ENSEMBLE: &str = "ensemble";

/// Models whose predictions are averaged with weights (an [`AutoMl`](crate::AutoMl) table
/// run builds one by ensemble selection when it validates better than its best model).
#[derive(Debug)]
pub struct Ensemble {
    members: Vec<Member>,
    summary: TrainingSummary,
}

#[derive(Debug)]
struct Member {
    model: Box<dyn Fitted>,
    /// Where its features start in a row of the ensemble's input.
    offset: usize,
    weight: f64,
}

/// One member as an artifact's `model_config` lists it; its weights are the next `bytes`
/// of the artifact's weights.
#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredMember {
    family: String,
    config: serde_json::Value,
    weight: f64,
    bytes: usize,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct StoredEnsemble {
    members: Vec<StoredMember>,
}

impl Ensemble {
    /// An ensemble of `members` with their weights (positive; they are normalized to sum to
    /// 1), each reading the next slice of the input, as wide as its model's input. The
    /// members must predict the same thing: as many classes, or a value.
    pub fn new(members: Vec<(Box<dyn Fitted>, f64)>) -> Result<Self> {
        let Some((first, _)) = members.first() else {
            return Err(invalid("an ensemble needs at least one member".into()));
        };
        let head = first.shape().1;
        // Weights that already sum to 1 (as saved ones do, up to rounding) are kept as they
        // are, so that a loaded ensemble predicts exactly what the saved one did.
        let total: f64 = members.iter().map(|(_, w)| w).sum();
        let total = if (total - 1.0).abs() < 1e-9 {
            1.0
        } else {
            total
        };
        let mut offset = 0;
        let mut out = Vec::with_capacity(members.len());
        for (i, (model, weight)) in members.into_iter().enumerate() {
            if !(weight.is_finite() && weight > 0.0) {
                return Err(invalid(format!(
                    "member {i}: weight {weight} is not positive"
                )));
            }
            if model.family() == ENSEMBLE {
                return Err(invalid(format!(
                    "member {i}: an ensemble cannot be a member"
                )));
            }
            let (width, member_head) = model.shape();
            let agree = match (head, member_head) {
                (Head::Classes { count: a }, Head::Classes { count: b }) => a == b,
                (Head::Value { .. }, Head::Value { .. }) => true,
                _ => false,
            };
            if !agree {
                return Err(invalid(format!(
                    "member {i} ({}) has head {member_head:?}, member 0 {head:?}",
                    model.family()
                )));
            }
            out.push(Member {
                model,
                offset,
                weight: weight / total,
            });
            offset += width;
        }
        let heaviest = out
            .iter()
            .max_by(|a, b| a.weight.total_cmp(&b.weight))
            .map(|m| m.model.summary().clone());
        let mut summary = heaviest.ok_or_else(|| invalid("no members".into()))?;
        summary.train_seconds = out.iter().map(|m| m.model.summary().train_seconds).sum();
        summary.valid_seconds = out.iter().map(|m| m.model.summary().valid_seconds).sum();
        Ok(Ensemble {
            members: out,
            summary,
        })
    }

    /// The members with their weights (summing to 1), in input order.
    pub fn members(&self) -> impl Iterator<Item = (&dyn Fitted, f64)> {
        self.members.iter().map(|m| (m.model.as_ref(), m.weight))
    }

    /// The ensemble with every member replaced by what `remake` makes of it, given the
    /// columns of the ensemble's input it reads; the weights stay.
    pub(crate) fn remade(
        &self,
        mut remake: impl FnMut(&dyn Fitted, Range<usize>) -> Result<Box<dyn Fitted>>,
    ) -> Result<Ensemble> {
        let members = self
            .members
            .iter()
            .map(|m| {
                let columns = m.offset..m.offset + m.model.shape().0;
                Ok((remake(m.model.as_ref(), columns)?, m.weight))
            })
            .collect::<Result<Vec<_>>>()?;
        Ensemble::new(members)
    }

    /// Rebuilds an ensemble from its artifact's `config` and `weights`, each member with the
    /// first of `families` that loads it.
    pub(crate) fn load(
        config: &serde_json::Value,
        weights: &[u8],
        families: &[Arc<dyn ModelFamily>],
    ) -> Result<Self> {
        let stored: StoredEnsemble = serde_json::from_value(config.clone())
            .map_err(|e| Error::IncompatibleArtifact(format!("ensemble model_config: {e}")))?;
        let mut rest = weights;
        let mut members = Vec::with_capacity(stored.members.len());
        for (i, m) in stored.members.into_iter().enumerate() {
            if m.bytes > rest.len() {
                return Err(Error::IncompatibleArtifact(format!(
                    "ensemble member {i} needs {} bytes of weights, {} are left",
                    m.bytes,
                    rest.len()
                )));
            }
            let (bytes, tail) = rest.split_at(m.bytes);
            rest = tail;
            let family = families
                .iter()
                .find(|f| m.family != ENSEMBLE && f.loads(&m.family))
                .ok_or_else(|| {
                    Error::IncompatibleArtifact(format!(
                        "ensemble member {i}: no family given loads `{}`",
                        m.family
                    ))
                })?;
            let model = family.load(&m.config, bytes)?;
            if model.family() != m.family {
                return Err(Error::IncompatibleArtifact(format!(
                    "ensemble member {i}: the weights are of a {} model, the config says `{}`",
                    model.family(),
                    m.family
                )));
            }
            members.push((model, m.weight));
        }
        if !rest.is_empty() {
            return Err(Error::IncompatibleArtifact(format!(
                "{} bytes of weights belong to no ensemble member",
                rest.len()
            )));
        }
        Self::new(members).map_err(|e| Error::IncompatibleArtifact(e.to_string()))
    }
}

impl Fitted for Ensemble {
    fn family(&self) -> &str {
        ENSEMBLE
    }
    fn summary(&self) -> &TrainingSummary {
        &self.summary
    }
    fn shape(&self) -> (usize, Head) {
        let width = self.members.iter().map(|m| m.model.shape().0).sum();
        (width, self.members[0].model.shape().1)
    }
    fn config(&self) -> Result<serde_json::Value> {
        let members = self
            .members
            .iter()
            .map(|m| {
                Ok(StoredMember {
                    family: m.model.family().to_owned(),
                    config: m.model.config()?,
                    weight: m.weight,
                    bytes: m.model.weights()?.len(),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        serde_json::to_value(StoredEnsemble { members })
            .map_err(|e| Error::IncompatibleArtifact(format!("ensemble model_config: {e}")))
    }
    fn weights(&self) -> Result<Vec<u8>> {
        let mut out = Vec::new();
        for m in &self.members {
            out.extend(m.model.weights()?);
        }
        Ok(out)
    }
    fn accepts_missing(&self) -> bool {
        // NaN may reach the slices of members that take it; the others' are checked below.
        self.members.iter().any(|m| m.model.accepts_missing())
    }
    fn as_any(&self) -> &dyn Any {
        self
    }
}

impl Predict for Ensemble {
    fn predict(&self, x: Features<'_>) -> lepton_core::Result<Vec<Prediction>> {
        let (width, _) = self.shape();
        if x.n_features() != width {
            return Err(lepton_core::Error::InvalidInput(format!(
                "the ensemble takes {width} features per row, not {}",
                x.n_features()
            )));
        }
        let rows = x.n_rows();
        let mut blend = Blend::default();
        let mut slice = Vec::new();
        for m in &self.members {
            let w = m.model.shape().0;
            slice.clear();
            slice.reserve(rows * w);
            for row in x.values().chunks_exact(width) {
                slice.extend_from_slice(&row[m.offset..m.offset + w]);
            }
            let predictions = m
                .model
                .predict(features_for(m.model.as_ref(), &slice, w)?)?;
            blend.add(&predictions, m.weight)?;
        }
        Ok(blend.predictions())
    }
}

/// A running weighted sum of several models' predictions of the same rows.
#[derive(Debug, Default, Clone)]
pub(crate) struct Blend {
    /// Per row, the weighted sums of the class probabilities (or the one value).
    sums: Vec<f64>,
    /// Values per row: the classes, or 1 for a regression (0 while empty).
    width: usize,
    classifies: bool,
    total: f64,
}

impl Blend {
    /// Adds `predictions` with `weight`.
    pub(crate) fn add(
        &mut self,
        predictions: &[Prediction],
        weight: f64,
    ) -> lepton_core::Result<()> {
        let (classifies, width) = match predictions.first() {
            Some(Prediction::Class { probabilities, .. }) => (true, probabilities.len()),
            Some(Prediction::Value(_)) => (false, 1),
            None => (self.classifies, self.width),
        };
        if self.total == 0.0 {
            (self.classifies, self.width) = (classifies, width);
            self.sums = vec![0.0; predictions.len() * width];
        }
        if classifies != self.classifies || self.sums.len() != predictions.len() * self.width {
            return Err(lepton_core::Error::InvalidInput(format!(
                "{} predictions of {width} values do not blend with {} of {}",
                predictions.len(),
                self.sums.len() / self.width.max(1),
                self.width
            )));
        }
        for (p, sums) in predictions
            .iter()
            .zip(self.sums.chunks_exact_mut(self.width.max(1)))
        {
            match p {
                Prediction::Class { probabilities, .. } if probabilities.len() == sums.len() => {
                    for (s, q) in sums.iter_mut().zip(probabilities) {
                        *s += weight * f64::from(*q);
                    }
                }
                Prediction::Value(v) if !self.classifies => sums[0] += weight * v,
                other => {
                    return Err(lepton_core::Error::InvalidInput(format!(
                        "prediction {other:?} does not blend with the others"
                    )));
                }
            }
        }
        self.total += weight;
        Ok(())
    }

    /// The blend so far: the weighted mean probabilities (and their most probable class), or
    /// the weighted mean value.
    pub(crate) fn predictions(&self) -> Vec<Prediction> {
        let total = if self.total > 0.0 { self.total } else { 1.0 };
        self.sums
            .chunks_exact(self.width.max(1))
            .map(|sums| {
                if self.classifies {
                    Prediction::most_probable(sums.iter().map(|s| (s / total) as f32).collect())
                } else {
                    Prediction::Value(sums[0] / total)
                }
            })
            .collect()
    }
}

fn invalid(message: String) -> Error {
    lepton_core::Error::InvalidInput(message).into()
}
