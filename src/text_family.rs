//! Text model families as values: what [`AutoMl::fit_text`](crate::AutoMl::fit_text) chooses
//! among. A text family takes raw documents (its fitted vocabulary or tokenizer is part of
//! the model it trains), gives its search space and default configuration, and rebuilds a
//! model from what that model wrote into an artifact. The built-in ones are named by
//! [`TextFamilyKind`]; implement [`TextFamily`] to search your own beside them.

use std::collections::BTreeMap;
use std::fmt::Debug;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use lepton_core::{Error as CoreError, ParamValue, Prediction, Result as CoreResult, Trial};
use lepton_data::{FittedTfidf, SparseRows, Tfidf};
use lepton_models::{FittedTextLinear, TextLinearConfig, TextLinearSpace};

use crate::error::{Error, Result};
use crate::family::Searched;

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
    /// Seed of the initialization, the shuffling and any sampling.
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
    /// The seconds training it from raw documents took (a retraining's estimate; work it
    /// reused from earlier trials counted), or 0 for a model loaded from an artifact.
    fn train_seconds(&self) -> f64;
    /// Each document's class and probabilities.
    fn predict_texts(&self, texts: &[&str]) -> CoreResult<Vec<Prediction>>;
    /// The configuration its family's [`TextFamily::load`] reads back.
    fn config(&self) -> Result<serde_json::Value>;
    /// The weights (any bytes) its family's [`TextFamily::load`] reads back.
    fn weights(&self) -> Result<Vec<u8>>;
}

impl Searched for dyn TextFamily {
    fn name(&self) -> &str {
        TextFamily::name(self)
    }

    fn defaults(&self) -> BTreeMap<String, ParamValue> {
        TextFamily::defaults(self)
    }

    fn suggest(&self, trial: &mut Trial) -> CoreResult<()> {
        TextFamily::suggest(self, trial)
    }
}

/// A text family Lepton ships (each is a [`TextFamily`] through [`TextFamilyKind::family`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextFamilyKind {
    /// TF-IDF word and character n-grams under a logistic regression or a linear SVM
    /// ([`TextLinearSpace`]).
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
            TextFamilyKind::Linear => Arc::new(TextLinear::default()),
        }
    }

    /// Every built-in text family, as artifacts need them to load.
    pub fn all() -> Vec<Arc<dyn TextFamily>> {
        Self::ALL.into_iter().map(Self::family).collect()
    }
}

/// TF-IDF n-grams under a linear classifier (logistic regression or SVM) trained on sparse
/// rows. It keeps its last [`KEPT_VECTORIZATIONS`] vectorizations (the settings, the
/// documents, the rows), so that a search trying several classifiers on the same n-grams
/// vectorizes the documents once.
#[derive(Default)]
struct TextLinear {
    vectorized: Mutex<Vec<Vectorized>>,
}

/// How many vectorizations of the documents a [`TextLinear`] keeps (each is the corpus's
/// rows: hundreds of megabytes for tens of thousands of e-mails with character n-grams).
const KEPT_VECTORIZATIONS: usize = 2;

/// Documents vectorized: the settings, the documents' fingerprint, the fitted vocabulary,
/// the rows and the seconds it took.
struct Vectorized {
    settings: Tfidf,
    documents: u64,
    tfidf: FittedTfidf,
    rows: Arc<SparseRows>,
    seconds: f64,
}

/// A vocabulary, its rows and the seconds they took to make.
type Vectors = (FittedTfidf, Arc<SparseRows>, f64);

impl TextLinear {
    /// The vocabulary of `settings` fitted on `texts`, their rows, and the seconds making
    /// them took (kept or made now).
    fn vectorize(&self, settings: &Tfidf, texts: &[String]) -> CoreResult<Vectors> {
        let documents = fingerprint(texts);
        let poisoned = || CoreError::InvalidInput("a text trial panicked while vectorizing".into());
        if let Some(v) = self
            .vectorized
            .lock()
            .map_err(|_| poisoned())?
            .iter()
            .find(|v| v.documents == documents && &v.settings == settings)
        {
            return Ok((v.tfidf.clone(), v.rows.clone(), v.seconds));
        }
        let started = Instant::now();
        let tfidf = settings.fit(texts)?;
        let rows = Arc::new(tfidf.transform(texts));
        let seconds = started.elapsed().as_secs_f64();
        let mut kept = self.vectorized.lock().map_err(|_| poisoned())?;
        kept.push(Vectorized {
            settings: settings.clone(),
            documents,
            tfidf: tfidf.clone(),
            rows: rows.clone(),
            seconds,
        });
        if kept.len() > KEPT_VECTORIZATIONS {
            kept.remove(0);
        }
        Ok((tfidf, rows, seconds))
    }
}

/// A fingerprint of documents: their count, lengths and bytes.
fn fingerprint(texts: &[String]) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    texts.hash(&mut hasher);
    hasher.finish()
}

/// A [`FittedTextLinear`] with the seconds its training took.
#[derive(Debug)]
struct FittedLinearText {
    model: FittedTextLinear,
    train_seconds: f64,
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
        let config = TextLinearConfig::default()
            .with_params(&request.params)
            .map_err(CoreError::from)?;
        let (tfidf, rows, vectorizing) = self.vectorize(&config.tfidf, request.texts)?;
        let fitting = Instant::now();
        let model = config
            .fit_rows(
                tfidf,
                &rows,
                request.labels,
                request.classes,
                request.time_limit,
            )
            .map_err(CoreError::from)?;
        Ok(Box::new(FittedLinearText {
            model,
            // From raw documents: a kept vectorization's time counts.
            train_seconds: vectorizing + fitting.elapsed().as_secs_f64(),
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
            train_seconds: 0.0,
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

    fn train_seconds(&self) -> f64 {
        self.train_seconds
    }

    fn predict_texts(&self, texts: &[&str]) -> CoreResult<Vec<Prediction>> {
        let probabilities = self.model.predict_proba(texts).map_err(CoreError::from)?;
        Ok(probabilities
            .into_iter()
            .map(Prediction::most_probable)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents_are_vectorized_once_per_setting_and_few_are_kept() {
        let texts: Vec<String> = [
            "cheap pills now",
            "buy cheap now",
            "meeting notes",
            "notes monday",
        ]
        .map(String::from)
        .to_vec();
        let labels = [1, 1, 0, 0];
        let family = TextLinear::default();
        let train = |params: &[(&str, ParamValue)], texts: &[String]| {
            let request = TextTrainRequest {
                params: params
                    .iter()
                    .map(|(k, v)| ((*k).to_owned(), v.clone()))
                    .collect(),
                texts,
                labels: &labels,
                classes: 2,
                seed: 0,
                time_limit: None,
            };
            family.train(&request).unwrap();
            family.vectorized.lock().unwrap().len()
        };
        let words = [
            ("min_df", ParamValue::from(1i64)),
            ("char_ngrams", "none".into()),
        ];
        assert_eq!(
            train(
                &[words[0].clone(), words[1].clone(), ("c", 1.0.into())],
                &texts
            ),
            1
        );
        // Another C on the same n-grams and documents: the rows are reused.
        assert_eq!(
            train(
                &[words[0].clone(), words[1].clone(), ("c", 9.0.into())],
                &texts
            ),
            1
        );
        // Other n-grams, then other documents: made and kept, the oldest let go.
        assert_eq!(
            train(&[words[0].clone(), ("char_ngrams", "2-4".into())], &texts),
            2
        );
        let mut other = texts.clone();
        other[0].push_str(" today");
        assert_eq!(train(&[words[0].clone(), words[1].clone()], &other), 2);
        let kept = family.vectorized.lock().unwrap();
        assert!(
            kept.iter()
                .all(|v| v.settings.analyzers.len() == 2 || v.documents == fingerprint(&other))
        );
    }
}
