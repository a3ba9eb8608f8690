//! TF-IDF features of texts, as scikit-learn's `TfidfVectorizer` computes them: word n-grams
//! (Unicode words of two characters or more, UAX #29) and character n-grams within words
//! (each word padded with a space, scikit-learn's `char_wb`), counted per document, weighted by
//! the smoothed inverse document frequency `ln((1 + n) / (1 + df)) + 1`, optionally with
//! sublinear term frequencies `1 + ln(tf)`, each row scaled to unit L2 norm. The rows are
//! sparse ([`SparseRows`]): a corpus has hundreds of thousands of n-grams, a document a few
//! hundred of them.
//!
//! The vocabulary is fitted on training documents only and travels with the model (it is
//! serializable); n-grams it lacks are ignored at prediction time. With `hashing_bits`, no
//! vocabulary is kept: an n-gram's column is its 64-bit FNV-1a hash modulo `2^bits`
//! (scikit-learn's `HashingVectorizer` idea, with a hash that is the same on every platform),
//! which bounds the memory whatever the corpus, at the cost of colliding n-grams.

use rayon::prelude::*;
use rustc_hash::FxHashMap;
use serde::{Deserialize, Serialize};
use unicode_segmentation::UnicodeSegmentation;

use crate::error::{DataError, Result};

/// Which n-grams of a text become features.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Analyzer {
    /// Word n-grams of `min..=max` words.
    Words {
        /// The fewest words in an n-gram.
        min: usize,
        /// The most words in an n-gram.
        max: usize,
    },
    /// Character n-grams of `min..=max` characters inside each space-padded word.
    Chars {
        /// The fewest characters in an n-gram.
        min: usize,
        /// The most characters in an n-gram.
        max: usize,
    },
}

/// How a [`Tfidf`] is fitted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tfidf {
    /// The n-grams taken, several analyzers side by side in one vocabulary.
    pub analyzers: Vec<Analyzer>,
    /// Lower-case the text first.
    pub lowercase: bool,
    /// Keep n-grams found in at least this many training documents.
    pub min_df: usize,
    /// Keep n-grams found in at most this share of the training documents.
    pub max_df: f64,
    /// Keep at most this many n-grams, the most frequent over the corpus.
    pub max_features: Option<usize>,
    /// `1 + ln(tf)` instead of the raw count.
    pub sublinear_tf: bool,
    /// Hash n-grams into `2^bits` columns (10 to 24) instead of keeping a vocabulary; the
    /// document-frequency limits and `max_features` then do not apply.
    pub hashing_bits: Option<u32>,
}

impl Default for Tfidf {
    /// Words and word pairs, lower-cased, n-grams of two documents or more, raw counts.
    fn default() -> Self {
        Tfidf {
            analyzers: vec![Analyzer::Words { min: 1, max: 2 }],
            lowercase: true,
            min_df: 2,
            max_df: 1.0,
            max_features: None,
            sublinear_tf: false,
            hashing_bits: None,
        }
    }
}

/// A fitted vocabulary and its inverse document frequencies. Stored as its settings, terms
/// and weights; the lookup index is rebuilt when it is read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "StoredTfidf", into = "StoredTfidf")]
pub struct FittedTfidf {
    config: Tfidf,
    /// The n-grams, sorted; a feature's index is its place here.
    terms: Vec<String>,
    idf: Vec<f32>,
    index: FxHashMap<String, u32>,
}

/// What a [`FittedTfidf`] stores.
#[derive(Serialize, Deserialize)]
struct StoredTfidf {
    config: Tfidf,
    terms: Vec<String>,
    idf: Vec<f32>,
}

impl TryFrom<StoredTfidf> for FittedTfidf {
    type Error = String;

    fn try_from(stored: StoredTfidf) -> std::result::Result<Self, String> {
        stored.config.check().map_err(|e| e.to_string())?;
        let columns = match stored.config.hashing_bits {
            Some(bits) if stored.terms.is_empty() => 1usize << bits,
            Some(_) => return Err("terms beside hashed columns".into()),
            None => stored.terms.len(),
        };
        if columns != stored.idf.len() {
            return Err(format!(
                "{columns} columns but {} weights",
                stored.idf.len()
            ));
        }
        if let Some(w) = stored.idf.iter().find(|w| !(w.is_finite() && **w > 0.0)) {
            return Err(format!("an inverse document frequency of {w}"));
        }
        if stored.terms.windows(2).any(|p| p[0] >= p[1]) {
            return Err("terms that are not sorted and distinct".into());
        }
        Ok(FittedTfidf::new(stored.config, stored.terms, stored.idf))
    }
}

impl From<FittedTfidf> for StoredTfidf {
    fn from(fitted: FittedTfidf) -> Self {
        StoredTfidf {
            config: fitted.config,
            terms: fitted.terms,
            idf: fitted.idf,
        }
    }
}

/// Rows of a sparse matrix in compressed sparse row form: row `r`'s columns are
/// `indices[offsets[r]..offsets[r + 1]]` (increasing), with `values` beside them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct SparseRows {
    /// Where each row starts in `indices` and `values`, and where the last ends.
    pub offsets: Vec<usize>,
    /// The columns of the stored values.
    pub indices: Vec<u32>,
    /// The stored values.
    pub values: Vec<f32>,
    /// The number of columns.
    pub columns: usize,
}

impl SparseRows {
    /// The number of rows.
    pub fn len(&self) -> usize {
        self.offsets.len().saturating_sub(1)
    }

    /// Whether there is no row.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Row `r`'s columns and values.
    pub fn row(&self, r: usize) -> (&[u32], &[f32]) {
        let (start, end) = (self.offsets[r], self.offsets[r + 1]);
        (&self.indices[start..end], &self.values[start..end])
    }
}

impl Tfidf {
    fn check(&self) -> Result<()> {
        let bad = |m: String| Err(DataError::InvalidInput(format!("tf-idf: {m}")));
        if self.analyzers.is_empty() {
            return bad("no analyzer".into());
        }
        for a in &self.analyzers {
            let (Analyzer::Words { min, max } | Analyzer::Chars { min, max }) = *a;
            if min == 0 || min > max || max > 16 {
                return bad(format!("{a:?}: n-gram sizes must be 1 <= min <= max <= 16"));
            }
        }
        if !(self.max_df > 0.0 && self.max_df <= 1.0) {
            return bad(format!("max_df {} is not in (0, 1]", self.max_df));
        }
        if self.max_features == Some(0) {
            return bad("max_features 0 keeps nothing".into());
        }
        if let Some(bits) = self.hashing_bits
            && !(10..=24).contains(&bits)
        {
            return bad(format!("hashing_bits {bits} is not in 10..=24"));
        }
        Ok(())
    }

    /// The vocabulary of `texts` and its document frequencies. An error for a bad setting,
    /// no text, or a vocabulary left empty by the frequency limits.
    pub fn fit<S: AsRef<str> + Sync>(&self, texts: &[S]) -> Result<FittedTfidf> {
        self.check()?;
        if texts.is_empty() {
            return Err(DataError::InvalidInput("tf-idf: no text to fit".into()));
        }
        if let Some(bits) = self.hashing_bits {
            return Ok(self.fit_hashed(texts, bits));
        }
        // Document frequency and total count of every n-gram, a share of the documents on
        // each core.
        let chunk = texts.len().div_ceil(rayon::current_num_threads()).max(1);
        let seen = texts
            .par_chunks(chunk)
            .map(|chunk| {
                let mut seen: FxHashMap<String, (usize, u64)> = FxHashMap::default();
                for text in chunk {
                    for (term, count) in self.counts(text.as_ref()) {
                        let entry = seen.entry(term).or_default();
                        entry.0 += 1;
                        entry.1 += u64::from(count);
                    }
                }
                seen
            })
            .reduce(FxHashMap::default, |mut a, mut b| {
                if a.len() < b.len() {
                    std::mem::swap(&mut a, &mut b);
                }
                for (term, (df, total)) in b {
                    let entry = a.entry(term).or_default();
                    entry.0 += df;
                    entry.1 += total;
                }
                a
            });
        let n = texts.len();
        let max_df = (self.max_df * n as f64).floor().max(1.0) as usize;
        let mut kept: Vec<(String, usize, u64)> = seen
            .into_iter()
            .filter(|(_, (df, _))| *df >= self.min_df && *df <= max_df)
            .map(|(t, (df, total))| (t, df, total))
            .collect();
        if let Some(max) = self.max_features
            && kept.len() > max
        {
            kept.sort_by(|a, b| b.2.cmp(&a.2).then_with(|| a.0.cmp(&b.0)));
            kept.truncate(max);
        }
        kept.sort_by(|a, b| a.0.cmp(&b.0));
        if kept.is_empty() {
            return Err(DataError::InvalidInput(format!(
                "tf-idf: no n-gram is in at least {} of the {n} documents (and at most {max_df})",
                self.min_df
            )));
        }
        let df: Vec<usize> = kept.iter().map(|(_, df, _)| *df).collect();
        let terms = kept.into_iter().map(|(t, _, _)| t).collect();
        Ok(FittedTfidf::new(self.clone(), terms, smooth_idf(n, &df)))
    }

    /// Hashed columns: the document frequency of each of the `2^bits` columns.
    fn fit_hashed<S: AsRef<str> + Sync>(&self, texts: &[S], bits: u32) -> FittedTfidf {
        // A share of the documents per core, each with its own column counts.
        let chunk = texts.len().div_ceil(rayon::current_num_threads()).max(1);
        let df = texts
            .par_chunks(chunk)
            .map(|chunk| {
                let mut df = vec![0usize; 1 << bits];
                for text in chunk {
                    let mut columns: Vec<u32> = self
                        .counts(text.as_ref())
                        .keys()
                        .map(|term| hashed(term, bits))
                        .collect();
                    columns.sort_unstable();
                    columns.dedup();
                    columns.into_iter().for_each(|c| df[c as usize] += 1);
                }
                df
            })
            .reduce(
                || vec![0usize; 1 << bits],
                |mut a, b| {
                    a.iter_mut().zip(b).for_each(|(a, b)| *a += b);
                    a
                },
            );
        FittedTfidf::new(self.clone(), Vec::new(), smooth_idf(texts.len(), &df))
    }

    /// The n-grams of `text` and their counts (padded words and n-grams as owned strings
    /// once per distinct n-gram of the document).
    fn counts(&self, text: &str) -> FxHashMap<String, u32> {
        let text = if self.lowercase {
            text.to_lowercase()
        } else {
            text.to_owned()
        };
        let mut counts: FxHashMap<String, u32> = FxHashMap::default();
        let mut add = |term: &str| match counts.get_mut(term) {
            Some(c) => *c += 1,
            None => {
                counts.insert(term.to_owned(), 1);
            }
        };
        for analyzer in &self.analyzers {
            match *analyzer {
                Analyzer::Words { min, max } => {
                    let words: Vec<&str> = text
                        .unicode_words()
                        .filter(|w| w.chars().nth(1).is_some())
                        .collect();
                    let mut gram = String::new();
                    for start in 0..words.len() {
                        gram.clear();
                        gram.push_str("w ");
                        for (k, word) in words[start..].iter().take(max).enumerate() {
                            if k > 0 {
                                gram.push(' ');
                            }
                            gram.push_str(word);
                            if k + 1 >= min {
                                add(&gram);
                            }
                        }
                    }
                }
                Analyzer::Chars { min, max } => {
                    let mut gram = String::new();
                    for word in text.split_whitespace() {
                        let padded: Vec<char> = std::iter::once(' ')
                            .chain(word.chars())
                            .chain([' '])
                            .collect();
                        for start in 0..padded.len() {
                            gram.clear();
                            gram.push_str("c ");
                            for (k, c) in padded[start..].iter().take(max).enumerate() {
                                gram.push(*c);
                                if k + 1 >= min {
                                    add(&gram);
                                }
                            }
                        }
                    }
                }
            }
        }
        counts
    }
}

/// scikit-learn's smoothed inverse document frequency of each of `df` among `n` documents.
fn smooth_idf(n: usize, df: &[usize]) -> Vec<f32> {
    df.iter()
        .map(|df| (((1 + n) as f64 / (1 + df) as f64).ln() + 1.0) as f32)
        .collect()
}

/// The column of `term` among `2^bits`: its 64-bit FNV-1a hash, low bits.
fn hashed(term: &str, bits: u32) -> u32 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in term.bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    (hash & ((1u64 << bits) - 1)) as u32
}

impl FittedTfidf {
    fn new(config: Tfidf, terms: Vec<String>, idf: Vec<f32>) -> Self {
        let index = terms
            .iter()
            .enumerate()
            .map(|(i, t)| (t.clone(), i as u32))
            .collect();
        FittedTfidf {
            config,
            terms,
            idf,
            index,
        }
    }

    /// The settings it was fitted with.
    pub fn config(&self) -> &Tfidf {
        &self.config
    }

    /// The number of features: n-grams kept, or hashed columns.
    pub fn len(&self) -> usize {
        self.idf.len()
    }

    /// Whether there is no feature (never, for a fitted vocabulary).
    pub fn is_empty(&self) -> bool {
        self.idf.is_empty()
    }

    /// The n-gram of feature `i`, as `w WORDS` or `c CHARS` (none when hashing).
    pub fn term(&self, i: usize) -> Option<&str> {
        self.terms.get(i).map(String::as_str)
    }

    /// The TF-IDF rows of `texts`, each of unit L2 norm (a text with no known n-gram is an
    /// empty row).
    pub fn transform<S: AsRef<str> + Sync>(&self, texts: &[S]) -> SparseRows {
        let rows: Vec<Vec<(u32, f32)>> = texts.par_iter().map(|t| self.row(t.as_ref())).collect();
        let mut out = SparseRows {
            offsets: Vec::with_capacity(rows.len() + 1),
            columns: self.idf.len(),
            ..SparseRows::default()
        };
        out.offsets.push(0);
        let stored: usize = rows.iter().map(Vec::len).sum();
        out.indices.reserve(stored);
        out.values.reserve(stored);
        for row in rows {
            for (i, v) in row {
                out.indices.push(i);
                out.values.push(v);
            }
            out.offsets.push(out.indices.len());
        }
        out
    }

    /// The TF-IDF row of one text: its columns, increasing, with their unit-norm weights.
    fn row(&self, text: &str) -> Vec<(u32, f32)> {
        let mut row: Vec<(u32, f32)> = self
            .config
            .counts(text)
            .into_iter()
            .filter_map(|(term, count)| {
                let i = match self.config.hashing_bits {
                    Some(bits) => hashed(&term, bits),
                    None => *self.index.get(&term)?,
                };
                let tf = if self.config.sublinear_tf {
                    1.0 + (count as f32).ln()
                } else {
                    count as f32
                };
                Some((i, tf * self.idf[i as usize]))
            })
            .collect();
        row.sort_unstable_by_key(|(i, _)| *i);
        // Hashed n-grams that share a column add up.
        row.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                kept.1 += later.1;
            }
            same
        });
        let norm = row.iter().map(|(_, v)| v * v).sum::<f32>().sqrt();
        if norm > 0.0 {
            row.iter_mut().for_each(|(_, v)| *v /= norm);
        }
        row
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dense(rows: &SparseRows, r: usize) -> Vec<f32> {
        let mut out = vec![0.0; rows.columns];
        let (cols, vals) = rows.row(r);
        for (c, v) in cols.iter().zip(vals) {
            out[*c as usize] = *v;
        }
        out
    }

    const PETS: [&str; 3] = ["the cat sat", "the dog sat down", "a cat and a dog"];

    /// Single words, kept from one document on: scikit-learn's `TfidfVectorizer(min_df=1)`.
    fn words() -> Tfidf {
        Tfidf {
            analyzers: vec![Analyzer::Words { min: 1, max: 1 }],
            min_df: 1,
            ..Tfidf::default()
        }
    }

    #[test]
    fn matches_scikit_learns_tfidf_on_a_small_corpus() {
        // scikit-learn 1.9: TfidfVectorizer(min_df=1).fit_transform(texts) (word unigrams,
        // its token pattern keeps words of two characters or more, as here).
        let texts = PETS;
        let fitted = words().fit(&texts).unwrap();
        let terms: Vec<&str> = (0..fitted.len()).map(|i| fitted.term(i).unwrap()).collect();
        assert_eq!(
            terms,
            ["w and", "w cat", "w dog", "w down", "w sat", "w the"]
        );
        let rows = fitted.transform(&texts);
        // scikit-learn's rows, to 6 decimals.
        let expected = [
            [0.0, 0.57735, 0.0, 0.0, 0.57735, 0.57735],
            [0.0, 0.0, 0.459854, 0.604652, 0.459854, 0.459854],
            [0.680919, 0.517856, 0.517856, 0.0, 0.0, 0.0],
        ];
        for (r, want) in expected.iter().enumerate() {
            let got = dense(&rows, r);
            for (g, w) in got.iter().zip(want) {
                assert!((g - w).abs() < 2e-6, "row {r}: {got:?}");
            }
        }
        // Unit rows; an unknown text is an empty row.
        for r in 0..3 {
            let n: f32 = rows.row(r).1.iter().map(|v| v * v).sum();
            assert!((n - 1.0).abs() < 1e-5);
        }
        let unknown = fitted.transform(&["zebra"]);
        assert_eq!((unknown.len(), unknown.row(0).0.len()), (1, 0));
    }

    #[test]
    fn ngrams_limits_and_a_round_trip() {
        let texts = ["Good movie", "good plot", "bad movie", "bad plot"];
        let config = Tfidf {
            analyzers: vec![
                Analyzer::Words { min: 1, max: 2 },
                Analyzer::Chars { min: 3, max: 3 },
            ],
            min_df: 2,
            sublinear_tf: true,
            ..Tfidf::default()
        };
        let fitted = config.fit(&texts).unwrap();
        let terms: Vec<&str> = (0..fitted.len()).map(|i| fitted.term(i).unwrap()).collect();
        // Lower-cased words in two documents; no word pair is; character trigrams of padded
        // words (" go", "goo", ...).
        assert!(terms.contains(&"w good") && terms.contains(&"w movie"));
        assert!(
            !terms
                .iter()
                .any(|t| t.starts_with("w ") && t[2..].contains(' '))
        );
        assert!(terms.contains(&"c  go") && terms.contains(&"c ie "));
        let limited = Tfidf {
            max_features: Some(3),
            ..config.clone()
        }
        .fit(&texts)
        .unwrap();
        assert_eq!(limited.len(), 3);
        let json = serde_json::to_string(&fitted).unwrap();
        let back: FittedTfidf = serde_json::from_str(&json).unwrap();
        assert_eq!(back.transform(&texts), fitted.transform(&texts));
        // A stored vocabulary that was tampered with is refused.
        let short = json.replacen("\"idf\":[", "\"idf\":[1.0,", 1);
        assert!(serde_json::from_str::<FittedTfidf>(&short).is_err());
    }

    #[test]
    fn hashed_columns_bound_the_features_and_keep_the_weights() {
        let texts = PETS;
        let exact = words().fit(&texts).unwrap();
        let hashed = Tfidf {
            hashing_bits: Some(16),
            ..words()
        }
        .fit(&texts)
        .unwrap();
        assert_eq!((hashed.len(), hashed.term(0)), (1 << 16, None));
        // Six words in 65,536 columns do not collide here: the same values, other columns.
        let (a, b) = (exact.transform(&texts), hashed.transform(&texts));
        for r in 0..3 {
            let mut x = a.row(r).1.to_vec();
            let mut y = b.row(r).1.to_vec();
            x.sort_by(f32::total_cmp);
            y.sort_by(f32::total_cmp);
            assert_eq!(x, y, "row {r}");
        }
        // Stored and read back; hashes are the same on every platform.
        let back: FittedTfidf =
            serde_json::from_str(&serde_json::to_string(&hashed).unwrap()).unwrap();
        assert_eq!(back.transform(&texts), b);
        // FNV-1a's published 64-bit test vector for "a", to its low 24 bits.
        assert_eq!(super::hashed("a", 24), 0x01ec8c);
    }

    #[test]
    fn bad_settings_and_empty_vocabularies_are_refused() {
        let texts = ["one text"];
        for bad in [
            Tfidf {
                analyzers: vec![],
                ..Tfidf::default()
            },
            Tfidf {
                analyzers: vec![Analyzer::Chars { min: 4, max: 2 }],
                ..Tfidf::default()
            },
            Tfidf {
                max_df: 0.0,
                ..Tfidf::default()
            },
            Tfidf {
                max_features: Some(0),
                ..Tfidf::default()
            },
            Tfidf {
                hashing_bits: Some(30),
                ..Tfidf::default()
            },
        ] {
            assert!(bad.fit(&texts).is_err(), "{bad:?}");
        }
        // min_df 2 on one document keeps nothing: said so.
        let e = Tfidf::default().fit(&texts).unwrap_err();
        assert!(e.to_string().contains("at least 2"), "{e}");
        assert!(Tfidf::default().fit::<&str>(&[]).is_err());
    }
}
