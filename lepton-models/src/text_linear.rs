//! A linear text classifier, the field's classic strong baseline: TF-IDF weights of word and
//! character n-grams ([`Tfidf`]) fitted on the training documents, then a multinomial logistic
//! regression ([`SparseLogistic`]) or a linear SVM ([`SparseLinearSvm`]) on those sparse rows.
//! The fitted vocabulary travels with the weights, so the model takes raw texts.

use std::collections::BTreeMap;
use std::time::Duration;

use lepton_core::{ParamValue, Result as CoreResult, Scale, SearchSpace, Trial};
use lepton_data::{Analyzer, FittedTfidf, SparseRows, Tfidf};
use serde::{Deserialize, Serialize};

use crate::error::{ModelError, Result};
use crate::param;
use crate::sparse_classifier::SparseClassifier;
use crate::sparse_linear::FittedSparseLinear;
use crate::sparse_logistic::SparseLogistic;
use crate::sparse_svm::SparseLinearSvm;

/// How a [`FittedTextLinear`] is trained: the features and the classifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TextLinearConfig {
    /// The n-grams and their weighting.
    pub tfidf: Tfidf,
    /// The linear classifier on them.
    pub classifier: SparseClassifier,
}

impl Default for TextLinearConfig {
    /// Words and word pairs, character 3- to 5-grams, sublinear counts, n-grams of two
    /// documents or more, and a weakly regularized regression (`C = 10`): scikit-learn users'
    /// usual start on e-mail and reviews.
    fn default() -> Self {
        TextLinearConfig {
            tfidf: Tfidf {
                analyzers: vec![
                    Analyzer::Words { min: 1, max: 2 },
                    Analyzer::Chars { min: 3, max: 5 },
                ],
                sublinear_tf: true,
                ..Tfidf::default()
            },
            classifier: SparseClassifier::Logistic(SparseLogistic {
                c: 10.0,
                ..SparseLogistic::default()
            }),
        }
    }
}

impl TextLinearConfig {
    /// This configuration with a trial's parameters ([`TextLinearSpace`]'s names) applied;
    /// an unknown name or a value of the wrong type is refused. A new `classifier` starts
    /// from its trainer's defaults, `c` kept.
    pub fn with_params(mut self, params: &BTreeMap<String, ParamValue>) -> Result<Self> {
        let (mut words, mut chars, mut c, mut classifier) = (None, None, None, None);
        param::apply(params, "linear text model", |name, value| {
            match name {
                "word_ngrams" => words = Some(param::usize_value(name, value)?),
                "char_ngrams" => chars = Some(char_range(name, value)?),
                "sublinear_tf" => {
                    let ParamValue::Bool(b) = value else {
                        return Err(param::invalid(name, format!("`{value}` is no boolean")));
                    };
                    self.tfidf.sublinear_tf = *b;
                }
                "min_df" => self.tfidf.min_df = param::usize_value(name, value)?,
                "c" => c = Some(param::f64_value(name, value)?),
                "classifier" => classifier = Some(classifier_named(name, value)?),
                _ => return Ok(false),
            }
            Ok(true)
        })?;
        if let Some(new) = classifier
            && std::mem::discriminant(&new) != std::mem::discriminant(&self.classifier)
        {
            let kept = self.classifier.c();
            self.classifier = new;
            self.classifier.set_c(kept);
        }
        if let Some(c) = c {
            self.classifier.set_c(c);
        }
        if words.is_some() || chars.is_some() {
            let (old_words, old_chars) = self.analyzers();
            let words = words.or(old_words);
            let chars = chars.unwrap_or(old_chars);
            self.tfidf.analyzers = words
                .filter(|&max| max > 0)
                .map(|max| Analyzer::Words { min: 1, max })
                .into_iter()
                .chain(chars.map(|(min, max)| Analyzer::Chars { min, max }))
                .collect();
            if self.tfidf.analyzers.is_empty() {
                return Err(param::invalid(
                    "word_ngrams",
                    "0 with no character n-grams leaves no feature".into(),
                ));
            }
        }
        Ok(self)
    }

    /// The most words of the word analyzer and the character range, if any.
    fn analyzers(&self) -> (Option<usize>, Option<(usize, usize)>) {
        let mut out = (None, None);
        for a in &self.tfidf.analyzers {
            match *a {
                Analyzer::Words { max, .. } => out.0 = Some(max),
                Analyzer::Chars { min, max } => out.1 = Some((min, max)),
            }
        }
        out
    }

    /// Fits the vocabulary on `texts`, then the regression on their rows and `labels` (each
    /// below `classes`, at least 2).
    pub fn fit<S: AsRef<str> + Sync>(
        &self,
        texts: &[S],
        labels: &[usize],
        classes: usize,
    ) -> Result<FittedTextLinear> {
        let tfidf = self
            .tfidf
            .fit(texts)
            .map_err(|e| ModelError::InvalidData(e.to_string()))?;
        let rows = tfidf.transform(texts);
        self.fit_rows(tfidf, &rows, labels, classes, None)
    }

    /// The classifier alone, on `rows`, the documents as `tfidf` (fitted with this
    /// configuration's settings) made them: a search that tries several classifiers on the same
    /// features vectorizes once. Stops after `time_limit`, if any, at the best point so far.
    pub fn fit_rows(
        &self,
        tfidf: FittedTfidf,
        rows: &SparseRows,
        labels: &[usize],
        classes: usize,
        time_limit: Option<Duration>,
    ) -> Result<FittedTextLinear> {
        if tfidf.config() != &self.tfidf || rows.columns != tfidf.len() {
            return Err(ModelError::InvalidData(
                "rows vectorized with other tf-idf settings than the configuration's".into(),
            ));
        }
        let model = self
            .classifier
            .fit_within(rows, labels, classes, time_limit)?;
        Ok(FittedTextLinear { tfidf, model })
    }
}

/// The classifier `value` names (`logistic` or `linear_svm`), with its trainer's defaults.
fn classifier_named(name: &str, value: &ParamValue) -> Result<SparseClassifier> {
    match value.as_str() {
        Some("logistic") => Ok(SparseClassifier::Logistic(SparseLogistic::default())),
        Some("linear_svm") => Ok(SparseClassifier::LinearSvm(SparseLinearSvm::default())),
        _ => Err(param::invalid(
            name,
            format!("`{value}` is neither `logistic` nor `linear_svm`"),
        )),
    }
}

/// `value` of parameter `name` as a character n-gram range: `none` or `MIN-MAX`.
fn char_range(name: &str, value: &ParamValue) -> Result<Option<(usize, usize)>> {
    let text = value
        .as_str()
        .ok_or_else(|| param::invalid(name, format!("`{value}` is no range")))?;
    if text == "none" {
        return Ok(None);
    }
    text.split_once('-')
        .and_then(|(a, b)| Some((a.parse().ok()?, b.parse().ok()?)))
        .filter(|&(min, max): &(usize, usize)| min >= 1 && min <= max)
        .map(Some)
        .ok_or_else(|| param::invalid(name, format!("`{text}` is neither `none` nor MIN-MAX")))
}

/// A trained linear text classifier: its vocabulary and its classifier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "StoredTextLinear")]
pub struct FittedTextLinear {
    tfidf: FittedTfidf,
    model: FittedSparseLinear,
}

/// What a [`FittedTextLinear`] stores, checked when read back.
#[derive(Deserialize)]
struct StoredTextLinear {
    tfidf: FittedTfidf,
    model: FittedSparseLinear,
}

impl TryFrom<StoredTextLinear> for FittedTextLinear {
    type Error = String;

    fn try_from(stored: StoredTextLinear) -> std::result::Result<Self, String> {
        if stored.tfidf.len() != stored.model.columns() {
            return Err(format!(
                "a vocabulary of {} n-grams under a classifier of {} columns",
                stored.tfidf.len(),
                stored.model.columns()
            ));
        }
        Ok(FittedTextLinear {
            tfidf: stored.tfidf,
            model: stored.model,
        })
    }
}

impl FittedTextLinear {
    /// The number of classes.
    pub fn classes(&self) -> usize {
        self.model.classes()
    }

    /// The fitted vocabulary.
    pub fn vocabulary(&self) -> &FittedTfidf {
        &self.tfidf
    }

    /// Each text's class probabilities.
    pub fn predict_proba<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Result<Vec<Vec<f32>>> {
        self.model.predict_proba(&self.tfidf.transform(texts))
    }
}

/// The linear text model's search space: the longest word n-grams (1 to 3), the character
/// n-grams (`none`, `2-4` or `3-5`, as `MIN-MAX`), sublinear counts, the least document
/// frequency (1 to 5), the classifier (`logistic` or `linear_svm`) and its `C` (0.1 to 1,000,
/// log scale).
#[derive(Debug, Clone, Copy, Default)]
pub struct TextLinearSpace;

impl TextLinearSpace {
    /// The search's first configuration: words and word pairs, sublinear counts, n-grams of
    /// two documents or more, under a linear SVM at `C = 1` (scikit-learn's `LinearSVC()`
    /// defaults, the field's usual text baseline). Words alone vectorize several times faster
    /// than with character n-grams and the SVM trains in a fraction of the logistic
    /// regression's time (`docs/benchmarks.md`, the `text_features` bench), so a short budget
    /// still ends with a good model.
    pub fn defaults() -> BTreeMap<String, ParamValue> {
        BTreeMap::from([
            ("word_ngrams".to_owned(), ParamValue::from(2i64)),
            ("char_ngrams".to_owned(), ParamValue::from("none")),
            ("sublinear_tf".to_owned(), ParamValue::from(true)),
            ("min_df".to_owned(), ParamValue::from(2i64)),
            ("classifier".to_owned(), ParamValue::from("linear_svm")),
            ("c".to_owned(), ParamValue::from(1.0)),
        ])
    }
}

impl SearchSpace for TextLinearSpace {
    fn suggest(&self, trial: &mut Trial) -> CoreResult<()> {
        trial.suggest_int("word_ngrams", 1, 3, Scale::Linear)?;
        trial.suggest_categorical("char_ngrams", &["none", "2-4", "3-5"])?;
        trial.suggest_categorical("sublinear_tf", &[true, false])?;
        trial.suggest_int("min_df", 1, 5, Scale::Linear)?;
        trial.suggest_categorical("classifier", &["logistic", "linear_svm"])?;
        trial.suggest_float("c", 0.1, 1000.0, Scale::Log)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn corpus() -> (Vec<&'static str>, Vec<usize>) {
        let texts = vec![
            "cheap pills buy now",
            "buy cheap watches now",
            "win money now cheap",
            "limited offer buy money",
            "meeting notes for monday",
            "notes from the project meeting",
            "monday project review notes",
            "agenda for the review meeting",
        ];
        (texts, vec![1, 1, 1, 1, 0, 0, 0, 0])
    }

    #[test]
    fn learns_a_separable_corpus_and_reads_back_the_same() {
        let (texts, labels) = corpus();
        let config = TextLinearConfig::default()
            .with_params(&BTreeMap::from([
                ("min_df".to_owned(), ParamValue::from(1i64)),
                ("char_ngrams".to_owned(), ParamValue::from("none")),
            ]))
            .unwrap();
        assert_eq!(
            config.tfidf.analyzers,
            vec![Analyzer::Words { min: 1, max: 2 }]
        );
        let fitted = config.fit(&texts, &labels, 2).unwrap();
        let p = fitted
            .predict_proba(&["buy cheap money now", "project meeting on monday"])
            .unwrap();
        assert!(p[0][1] > 0.8 && p[1][0] > 0.8, "{p:?}");
        let json = serde_json::to_vec(&fitted).unwrap();
        let back: FittedTextLinear = serde_json::from_slice(&json).unwrap();
        assert_eq!(back, fitted);
    }

    #[test]
    fn the_classifier_is_chosen_by_name_and_keeps_its_c() {
        let with = |params: &[(&str, ParamValue)]| {
            let params = params
                .iter()
                .map(|(k, v)| ((*k).to_owned(), v.clone()))
                .collect();
            TextLinearConfig::default()
                .with_params(&params)
                .unwrap()
                .classifier
        };
        let svm = with(&[("classifier", "linear_svm".into())]);
        assert!(
            matches!(svm, SparseClassifier::LinearSvm(m) if m.c == 10.0),
            "{svm:?}"
        );
        let svm = with(&[("classifier", "linear_svm".into()), ("c", 0.5.into())]);
        assert!(
            matches!(svm, SparseClassifier::LinearSvm(m) if m.c == 0.5),
            "{svm:?}"
        );
        let logistic = with(&[("classifier", "logistic".into()), ("c", 3.0.into())]);
        assert_eq!(
            logistic,
            SparseClassifier::Logistic(SparseLogistic {
                c: 3.0,
                ..SparseLogistic::default()
            })
        );
        let (texts, labels) = corpus();
        let config = TextLinearConfig {
            classifier: svm,
            ..TextLinearConfig::default()
        }
        .with_params(&BTreeMap::from([(
            "min_df".to_owned(),
            ParamValue::from(1i64),
        )]))
        .unwrap();
        let p = config
            .fit(&texts, &labels, 2)
            .unwrap()
            .predict_proba(&["buy cheap money now", "project meeting on monday"])
            .unwrap();
        assert!(p[0][1] > 0.5 && p[1][0] > 0.5, "{p:?}");
    }

    #[test]
    fn bad_parameters_are_refused_by_name() {
        let bad = |name: &str, value: ParamValue| {
            TextLinearConfig::default()
                .with_params(&BTreeMap::from([(name.to_owned(), value)]))
                .unwrap_err()
                .to_string()
        };
        assert!(bad("char_ngrams", "5-3".into()).contains("char_ngrams"));
        assert!(bad("sublinear_tf", 1i64.into()).contains("sublinear_tf"));
        assert!(bad("depth", 1i64.into()).contains("not a parameter"));
        assert!(bad("classifier", "tree".into()).contains("classifier"));
        let none = TextLinearConfig::default().with_params(&BTreeMap::from([
            ("word_ngrams".to_owned(), ParamValue::from(0i64)),
            ("char_ngrams".to_owned(), ParamValue::from("none")),
        ]));
        assert!(none.unwrap_err().to_string().contains("no feature"));
    }

    #[test]
    fn a_vocabulary_that_does_not_fit_the_weights_is_refused() {
        let (texts, labels) = corpus();
        let config = TextLinearConfig::default()
            .with_params(&BTreeMap::from([(
                "min_df".to_owned(),
                ParamValue::from(1i64),
            )]))
            .unwrap();
        let a = config.fit(&texts, &labels, 2).unwrap();
        let b = config.fit(&texts[..5], &labels[..5], 2).unwrap();
        let mut json: serde_json::Value = serde_json::to_value(&a).unwrap();
        json["model"] = serde_json::to_value(&b.model).unwrap();
        let e = serde_json::from_value::<FittedTextLinear>(json).unwrap_err();
        assert!(e.to_string().contains("vocabulary of"), "{e}");
    }
}
