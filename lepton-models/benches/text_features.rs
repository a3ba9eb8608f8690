//! The two costs of a linear text trial on the SpamAssassin corpus: vectorizing the training
//! e-mails (TF-IDF fit, then the rows) and the classifier on those rows (logistic regression
//! or linear SVM). The corpus
//! is `$LEPTON_DATA_DIR/text/spamassassin.tar.gz` (the shared data); every fifth e-mail is
//! left out, as a 20 % test split would.
//!
//! ```text
//! LEPTON_DATA_DIR=../shared/data cargo bench -p lepton-models --bench text_features
//! ```

use criterion::{Criterion, criterion_group, criterion_main};
use lepton_data::{Analyzer, TextCorpus, Tfidf};
use lepton_models::{SparseLinearSvm, SparseLogistic};

fn text_features(c: &mut Criterion) {
    let Some(root) = std::env::var_os("LEPTON_DATA_DIR") else {
        eprintln!("LEPTON_DATA_DIR is unset: point it at the shared data (../shared/data)");
        return;
    };
    let archive = std::path::Path::new(&root).join("text/spamassassin.tar.gz");
    let corpus = match TextCorpus::from_tar_gz(&archive) {
        Ok(corpus) => corpus,
        Err(e) => {
            eprintln!("cannot read {}: {e}", archive.display());
            return;
        }
    };
    let rows: Vec<usize> = (0..corpus.len()).filter(|i| i % 5 != 0).collect();
    let Ok(train) = corpus.select(&rows) else {
        return;
    };
    let (texts, labels) = (train.texts(), train.labels());
    let tfidf = |analyzers| Tfidf {
        analyzers,
        sublinear_tf: true,
        ..Tfidf::default()
    };
    let words = tfidf(vec![Analyzer::Words { min: 1, max: 2 }]);
    let words_and_chars = tfidf(vec![
        Analyzer::Words { min: 1, max: 2 },
        Analyzer::Chars { min: 3, max: 5 },
    ]);

    let mut group = c.benchmark_group("spamassassin");
    group.sample_size(10);
    group.bench_function("tfidf_fit_words_1_2_chars_3_5", |b| {
        b.iter(|| words_and_chars.fit(texts))
    });
    let Ok(fitted) = words.fit(texts) else {
        return;
    };
    group.bench_function("tfidf_transform_words_1_2", |b| {
        b.iter(|| fitted.transform(texts))
    });
    let x = fitted.transform(texts);
    for c in [10.0, 100.0] {
        let model = SparseLogistic {
            c,
            ..SparseLogistic::default()
        };
        group.bench_function(format!("logistic_words_1_2_c{c}"), |b| {
            b.iter(|| model.fit(&x, labels, 2))
        });
    }
    for c in [1.0, 10.0] {
        let model = SparseLinearSvm {
            c,
            ..SparseLinearSvm::default()
        };
        group.bench_function(format!("linear_svm_words_1_2_c{c}"), |b| {
            b.iter(|| model.fit(&x, labels, 2))
        });
    }
    group.finish();
}

criterion_group!(benches, text_features);
criterion_main!(benches);
