//! Text model families as values: what [`AutoMl::fit_text`](crate::AutoMl::fit_text) chooses
//! among. A text family takes raw documents (its fitted vocabulary or tokeniser is part of
//! the model it trains), gives its search space and default configuration, and rebuilds a
//! model from what that model wrote into an artifact. The built-in ones are named by
//! [`TextFamilyKind`]; implement [`TextFamily`] to search your own beside them.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use lepton_core::{Error as CoreError, ParamValue, Prediction, Result as CoreResult, Trial};
use lepton_models::{FittedTextLinear, TextLinearConfig, TextLinearSpace, TrainingSummary};

use crate::error::{Error, Result};

/// One training run of a text family.
pub struct TextTrainRequest<'a> {
    /// The family's own parameters (without the `name.` prefix they have in the search space).
    pub params: BTreeMap<String, ParamValue>,
    /// The training documents.
    pub texts: &'a [String],
    /// Their classes, each below `classes`.
    pub labels: &'a [usize],
    /// The number of classes (at least 2).
    pub classes: usize,
    /// Seed of the initialisation, the shuffling and any sampling.
    pub seed: u64,
    /// No epoch starts after this much training time (families without epochs ignore it).
    pub time_limit: Option<Duration>,
}

/// A kind of text model [`AutoMl::fit_text`](crate::AutoMl::fit_text) can choose.
pub trait TextFamily: Send + Sync {
    /// The family's name: the value of the search space's `family` parameter, the prefix of
    /// its own parameters (`name.`), and the artifact's `model_family`.
    fn name(&self) -> &str;

    /// Suggests the family's parameters on `trial` (already scoped under `name.`).
    fn suggest(&self, trial: &mut Trial) -> CoreResult<()>;

    /// A known-good configuration, tried before the sampler's proposals.
    fn defaults(&self) -> BTreeMap<String, ParamValue>;

    /// Trains a model on `request`'s documents.
    fn train(&self, request: &TextTrainRequest<'_>) -> CoreResult<Box<dyn FittedText>>;

    /// Rebuilds a model from the `config` and `weights` its [`FittedText`] wrote.
    fn load(&self, config: &serde_json::Value, weights: &[u8]) -> Result<Box<dyn FittedText>>;
}

/// A trained model of some [`TextFamily`]: raw documents in, class probabilities out.
pub trait FittedText: Debug + Send + Sync {
    /// The artifact's `model_family` (the name of the family that loads it).
    fn family(&self) -> &str;
    /// The number of classes it tells apart.
    fn classes(&self) -> usize;
    /// What happened while it trained.
    fn summary(&self) -> &TrainingSummary;
    /// Each document's class and probabilities.
    fn predict_texts(&self, texts: &[&str]) -> CoreResult<Vec<Prediction>>;
    /// The configuration its family's [`TextFamily::load`] reads back.
    fn config(&self) -> Result<serde_json::Value>;
    /// The weights (any bytes) its family's [`TextFamily::load`] reads back.
    fn weights(&self) -> Result<Vec<u8>>;
}

/// A text family Lepton ships (each is a [`TextFamily`] through [`TextFamilyKind::family`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextFamilyKind {
    /// TF-IDF word and character n-grams under a logistic regression ([`TextLinearSpace`]).
    Linear,
}

impl TextFamilyKind {
    /// Every built-in text family.
    pub const ALL: [TextFamilyKind; 1] = [TextFamilyKind::Linear];

    /// The name used in the search space and in artifacts.
    pub fn name(self) -> &'static str {
        match self {
            TextFamilyKind::Linear => "text_linear",
        }
    }

    /// The built-in text family called `name`.
    pub fn parse(name: &str) -> Option<TextFamilyKind> {
        Self::ALL.into_iter().find(|f| f.name() == name)
    }

    /// The family itself.
    pub fn family(self) -> Arc<dyn TextFamily> {
        match self {
            TextFamilyKind::Linear => Arc::new(TextLinear),
        }
    }

    /// Every built-in text family, as artifacts need them to load.
    pub fn all() -> Vec<Arc<dyn TextFamily>> {
        Self::ALL.into_iter().map(Self::family).collect()
    }
}

/// TF-IDF n-grams under a multinomial logistic regression, trained on sparse rows.
#[derive(Debug, Clone, Copy)]
struct TextLinear;

/// A [`FittedTextLinear`] with what its training took.
#[derive(Debug)]
struct FittedLinearText {
    model: FittedTextLinear,
    summary: TrainingSummary,
}

impl TextFamily for TextLinear {
    fn name(&self) -> &str {
        TextFamilyKind::Linear.name()
    }

    fn suggest(&self, trial: &mut Trial) -> CoreResult<()> {
        lepton_core::SearchSpace::suggest(&TextLinearSpace, trial)
    }

    fn defaults(&self) -> BTreeMap<String, ParamValue> {
        TextLinearSpace::defaults()
    }

    fn train(&self, request: &TextTrainRequest<'_>) -> CoreResult<Box<dyn FittedText>> {
        let started = std::time::Instant::now();
        let config = TextLinearConfig::default()
            .with_params(&request.params)
            .map_err(CoreError::from)?;
        let model = config
            .fit(request.texts, request.labels, request.classes)
            .map_err(CoreError::from)?;
        Ok(Box::new(FittedLinearText {
            model,
            summary: TrainingSummary {
                epochs_run: 1,
                best_epoch: 1,
                best_valid_score: None,
                best_valid_loss: None,
                best_valid_confusion: None,
                final_train_loss: f64::NAN,
                train_seconds: started.elapsed().as_secs_f64(),
                valid_seconds: 0.0,
            },
        }))
    }

    fn load(&self, config: &serde_json::Value, weights: &[u8]) -> Result<Box<dyn FittedText>> {
        let model: FittedTextLinear = serde_json::from_slice(weights).map_err(|e| {
            Error::IncompatibleArtifact(format!("the linear text model's weights: {e}"))
        })?;
        let classes = config.get("classes").and_then(serde_json::Value::as_u64);
        if classes != Some(model.classes() as u64) {
            return Err(Error::IncompatibleArtifact(format!(
                "the configuration says {classes:?} classes, the weights {}",
                model.classes()
            )));
        }
        Ok(Box::new(FittedLinearText {
            model,
            summary: TrainingSummary {
                epochs_run: 1,
                best_epoch: 1,
                best_valid_score: None,
                best_valid_loss: None,
                best_valid_confusion: None,
                final_train_loss: f64::NAN,
                train_seconds: 0.0,
                valid_seconds: 0.0,
            },
        }))
    }
}

impl FittedText for FittedLinearText {
    fn family(&self) -> &str {
        TextFamilyKind::Linear.name()
    }

    fn classes(&self) -> usize {
        self.model.classes()
    }

    fn summary(&self) -> &TrainingSummary {
        &self.summary
    }

    fn predict_texts(&self, texts: &[&str]) -> CoreResult<Vec<Prediction>> {
        let probabilities = self.model.predict_proba(texts).map_err(CoreError::from)?;
        Ok(probabilities
            .into_iter()
            .map(|p| Prediction::Class {
                index: argmax(&p),
                probabilities: p,
            })
            .collect())
    }

    fn config(&self) -> Result<serde_json::Value> {
        Ok(serde_json::json!({
            "classes": self.model.classes(),
            "vocabulary": self.model.vocabulary().len(),
            "tfidf": self.model.vocabulary().config(),
        }))
    }

    fn weights(&self) -> Result<Vec<u8>> {
        serde_json::to_vec(&self.model)
            .map_err(|e| Error::IncompatibleArtifact(format!("the linear text model: {e}")))
    }
}

/// The index of the largest probability (the first of equals).
fn argmax(p: &[f32]) -> usize {
    p.iter()
        .enumerate()
        .fold((0, f32::NEG_INFINITY), |best, (i, &v)| {
            if v > best.1 { (i, v) } else { best }
        })
        .0
}
