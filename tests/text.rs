//! AutoML on text: a search over the text families on a small corpus, the model's raw-text
//! predictions, its artifact's round trip, and the prediction server answering raw texts.

#![allow(clippy::unwrap_used, clippy::panic)] // a failing test should panic

mod common;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use lepton::core::Task;
use lepton::data::TextCorpus;
use lepton::deploy::{LocalRegistry, ModelArtifact, PRODUCTION, Registry, Server, ServerConfig};
use lepton::{ArtifactLoader, AutoMl, Metric, TextPredictor};

/// Two topics told apart by their words, 30 documents each, with a few shared words, as CSV.
fn corpus() -> TextCorpus {
    let sport = ["match", "goal", "team", "league", "coach", "score"];
    let money = ["bank", "loan", "rate", "market", "stock", "price"];
    let shared = ["today", "report", "news", "week"];
    let mut csv = String::from("text,label\n");
    for i in 0..30 {
        for (label, words) in [("sport", &sport), ("money", &money)] {
            let text: Vec<&str> = (0..6)
                .map(|k| {
                    if (i + k) % 3 == 0 {
                        shared[(i * 7 + k) % shared.len()]
                    } else {
                        words[(i * 5 + k * 3) % words.len()]
                    }
                })
                .collect();
            csv.push_str(&format!("\"{}\",{label}\n", text.join(" ")));
        }
    }
    TextCorpus::read_csv("topics.csv", csv.as_bytes(), "text", "label").unwrap()
}

#[test]
fn a_text_run_learns_the_topics_and_its_artifact_predicts_the_same() {
    let corpus = corpus();
    let run = AutoMl::new()
        .with_budget(Duration::from_secs(30))
        .with_max_trials(4)
        .with_seed(3)
        .fit_text(&corpus)
        .unwrap();
    assert_eq!(run.metric, Metric::Accuracy);
    assert_eq!(run.trials.len(), 4);
    assert!(run.valid_score >= 0.9, "{}", run.valid_score);
    assert!(run.on_all_documents);
    assert!(run.family_seconds["text_linear"] > 0.0);
    let texts = [
        "the team scored a goal in the match",
        "the bank raised the loan rate",
    ];
    let predictions = run.predictor.predict(&texts).unwrap();
    assert_eq!(
        run.predictor.labels(&predictions).unwrap(),
        ["sport", "money"]
    );

    let dir = tempfile::tempdir().unwrap();
    run.predictor
        .save(dir.path(), [("test_accuracy".to_owned(), 1.0)].into())
        .unwrap();
    let loaded = TextPredictor::load(dir.path()).unwrap();
    assert_eq!(loaded.classes(), run.predictor.classes());
    assert_eq!(loaded.predict(&texts).unwrap(), predictions);
    // A table predictor does not take a text model.
    let e = lepton::Predictor::load(dir.path()).unwrap_err().to_string();
    assert!(e.contains("text_linear"), "{e}");
    let scores = loaded.score(&corpus).unwrap();
    assert!(scores.accuracy.unwrap() > 0.9, "{scores:?}");

    // Served: raw texts in, as a `texts` list or as rows of the `text` column.
    let registry_dir = tempfile::tempdir().unwrap();
    let registry = Arc::new(LocalRegistry::new(registry_dir.path()));
    registry
        .register("topics", &ModelArtifact::load(dir.path()).unwrap())
        .unwrap();
    registry.promote("topics", 1, PRODUCTION).unwrap();
    let server = Server::start(
        "127.0.0.1:0".parse().unwrap(),
        ServerConfig {
            poll_interval: Duration::from_millis(50),
            ..ServerConfig::default()
        },
        registry,
        Arc::new(ArtifactLoader),
    )
    .unwrap();
    let client = reqwest::blocking::Client::new();
    let url = format!("http://{}/v1/models/topics/predict", server.local_addr());
    let post = |body: Value| {
        let response = client.post(&url).json(&body).send().unwrap();
        (
            response.status().as_u16(),
            response.json::<Value>().unwrap(),
        )
    };
    let labels = |answer: &Value| -> Vec<String> {
        answer["predictions"]
            .as_array()
            .unwrap_or_else(|| panic!("{answer}"))
            .iter()
            .map(|p| p["label"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, answer) = post(json!({"texts": texts}));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(labels(&answer), ["sport", "money"]);
    let rows: Vec<Value> = texts.iter().map(|t| json!({"text": t})).collect();
    let (status, answer) = post(json!({"rows": rows}));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(labels(&answer), ["sport", "money"]);
    // A text that is missing or not a string, an unknown column, both forms at once.
    for (body, says) in [
        (json!({"texts": ["a goal", null]}), "row 1"),
        (json!({"rows": [{"text": 7}]}), "not a string"),
        (json!({"rows": [{"body": "a goal"}]}), "unknown column"),
        (
            json!({"texts": ["a goal"], "rows": [["a goal"]]}),
            "not both",
        ),
    ] {
        let (status, answer) = post(body.clone());
        assert!(status == 400 || status == 422, "{body}: {status} {answer}");
        assert!(answer.to_string().contains(says), "{body}: {answer}");
    }
    server.shutdown().unwrap();
}

#[test]
fn a_class_with_one_document_and_a_regression_metric_are_refused() {
    let csv = "text,label\na b c,x\nd e f,x\ng h i,y\n";
    let small = TextCorpus::read_csv("small.csv", csv.as_bytes(), "text", "label").unwrap();
    let e = AutoMl::new().fit_text(&small).unwrap_err().to_string();
    assert!(e.contains("class `y` has 1 document"), "{e}");
    let e = AutoMl::new()
        .with_metric(Metric::R2)
        .fit_text(&corpus())
        .unwrap_err()
        .to_string();
    assert!(e.contains("text classification"), "{e}");
}

#[test]
fn an_artifact_whose_classes_or_weights_do_not_fit_is_refused() {
    let run = AutoMl::new()
        .with_budget(Duration::from_secs(20))
        .with_max_trials(1)
        .fit_text(&corpus())
        .unwrap();
    let good = run.predictor.to_artifact(Default::default()).unwrap();
    let m = good.manifest();
    let with = |schema: lepton::core::Schema, weights: Vec<u8>| {
        ModelArtifact::new(
            &m.model_family,
            &m.model_config,
            &serde_json::Value::Null,
            schema,
            Default::default(),
            weights,
        )
        .unwrap()
    };
    assert!(
        TextPredictor::from_artifact(&with(m.input_schema.clone(), good.weights().to_vec()))
            .is_ok()
    );
    // Three class names for a model of two.
    let mut three = m.input_schema.clone();
    three.task = Task::Classification {
        classes: vec!["money".into(), "other".into(), "sport".into()],
    };
    let e = TextPredictor::from_artifact(&with(three, good.weights().to_vec()));
    assert!(e.unwrap_err().to_string().contains("3 class names"));
    // Weights that are not a linear text model.
    let e = TextPredictor::from_artifact(&with(m.input_schema.clone(), b"{}".to_vec()));
    assert!(e.unwrap_err().to_string().contains("weights"));
    // A table artifact is not a text model.
    let table_model = common::iris_predictor()
        .0
        .to_artifact(Default::default())
        .unwrap();
    let e = TextPredictor::from_artifact(&table_model)
        .unwrap_err()
        .to_string();
    assert!(e.contains("not a text family"), "{e}");
}

#[test]
fn lepton_fit_task_text_searches_a_folder_per_class_and_predict_reads_a_text_column() {
    let dir = tempfile::tempdir().unwrap();
    let corpus = corpus();
    for (i, (text, &label)) in corpus.texts().iter().zip(corpus.labels()).enumerate() {
        let class = dir.path().join("docs").join(&corpus.classes()[label]);
        std::fs::create_dir_all(&class).unwrap();
        std::fs::write(class.join(format!("{i:03}.txt")), text).unwrap();
    }
    let docs = dir.path().join("docs");
    let model = dir.path().join("model");
    let (ok, out, err) = common::lepton(&[
        "fit",
        docs.to_str().unwrap(),
        "--task",
        "text",
        "--budget-seconds",
        "20",
        "--max-trials",
        "2",
        "--artifact",
        model.to_str().unwrap(),
        "--json",
    ]);
    assert!(ok, "{out}\n{err}");
    let summary: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    assert_eq!(summary["task"], "text");
    assert_eq!(summary["model"], "text_linear");
    assert_eq!(summary["trials"], 2);
    assert!(
        summary["test_accuracy"].as_f64().unwrap() > 0.8,
        "{summary}"
    );
    assert!(summary["test_macro_f1"].is_f64() && summary["wall_seconds"].is_f64());

    let queries = dir.path().join("queries.csv");
    std::fs::write(
        &queries,
        "id,text\n1,goal for the team\n2,stock market price\n",
    )
    .unwrap();
    let (ok, out, err) = common::lepton(&[
        "predict",
        "--model",
        model.to_str().unwrap(),
        queries.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "prediction,probability_money,probability_sport");
    assert!(
        lines[1].starts_with("sport,") && lines[2].starts_with("money,"),
        "{out}"
    );

    // Table options are refused for text, and a CSV corpus needs its columns named.
    let (ok, _, err) = common::lepton(&[
        "fit",
        docs.to_str().unwrap(),
        "--task",
        "text",
        "--validation",
        "kfold:3",
    ]);
    assert!(!ok && err.contains("--validation is for tables"), "{err}");
    let (ok, _, err) = common::lepton(&["fit", queries.to_str().unwrap(), "--task", "text"]);
    assert!(!ok && err.contains("--text-column"), "{err}");
}
