//! `lepton fit` and `lepton predict` driven as binaries: a CSV in, a saved, registered model
//! and its predictions out; bad input refused with its reason; several processes on one
//! PostgreSQL study.

#![allow(clippy::unwrap_used, clippy::panic)] // a failing test should panic

use std::path::Path;

mod common;
use common::{lepton, lepton_in};

/// 240 rows: a number with gaps, a category, an identifier, a class and a value that depend
/// on the number and the category.
fn write_csv(path: &Path) {
    let mut text = String::from("x,colour,id,label,amount\n");
    for i in 0..240 {
        let x = (i as f64 * 0.37).sin() * 3.0;
        let colour = ["red", "blue", "green"][i % 3];
        let shifted = x + if colour == "red" { 1.5 } else { 0.0 };
        let label = if shifted > 0.5 { "high" } else { "low" };
        let cell = if i % 11 == 0 {
            String::new()
        } else {
            format!("{x:.4}")
        };
        text.push_str(&format!(
            "{cell},{colour},id-{i},{label},{:.3}\n",
            3.0 * shifted + 10.0
        ));
    }
    std::fs::write(path, text).unwrap();
}

fn summary(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout.lines().last().unwrap()).unwrap()
}

#[test]
fn fit_saves_registers_and_predict_answers_in_the_original_labels() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("shop.csv");
    write_csv(&data);
    let (artifact, registry) = (dir.path().join("model"), dir.path().join("registry"));
    let report = dir.path().join("report.html");
    let (ok, out, err) = lepton(&[
        "fit",
        data.to_str().unwrap(),
        "--target",
        "label",
        "--budget-seconds",
        "8",
        "--artifact",
        artifact.to_str().unwrap(),
        "--registry",
        registry.to_str().unwrap(),
        "--report",
        report.to_str().unwrap(),
        "--json",
    ]);
    assert!(ok, "{out}\n{err}");
    let s = summary(&out);
    assert_eq!(s["task"], "classification");
    assert_eq!(s["metric"], "accuracy");
    assert!(s["test_accuracy"].as_f64().unwrap() > 0.7, "{s}");
    for metric in ["balanced_accuracy", "log_loss", "roc_auc", "macro_f1"] {
        assert!(s[format!("test_{metric}")].is_number(), "{metric}: {s}");
    }
    assert!(s["trials"].as_u64().unwrap() >= 2, "{s}");
    // One model of the default families, or an ensemble of them, weights summing to 1.
    let members = s["members"].as_array().unwrap();
    let model = s["model"].as_str().unwrap();
    assert_eq!(model == "ensemble", members.len() > 1, "{s}");
    assert!(
        ["boosted", "linear", "mlp", "ensemble"].contains(&model),
        "{s}"
    );
    let total: f64 = members.iter().map(|m| m["weight"].as_f64().unwrap()).sum();
    assert!((total - 1.0).abs() < 1e-9, "{s}");
    assert!(
        members
            .iter()
            .all(|m| ["boosted", "linear", "mlp"].contains(&m["family"].as_str().unwrap())),
        "{s}"
    );
    // Permutation importance of every input column on the test rows: the columns the label
    // follows matter; `id`, dropped, cannot matter at all.
    let importance = s["importance"].as_array().unwrap();
    let mut columns: Vec<&str> = importance
        .iter()
        .map(|f| f["column"].as_str().unwrap())
        .collect();
    assert!(importance[0]["mean"].as_f64().unwrap() > 0.05, "{s}");
    assert_ne!(columns[0], "id");
    columns.sort_unstable();
    assert_eq!(columns, ["amount", "colour", "id", "x"]);
    let id = importance.iter().find(|f| f["column"] == "id").unwrap();
    assert_eq!(
        (id["mean"].as_f64(), id["sd"].as_f64()),
        (Some(0.0), Some(0.0))
    );
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(
        html.contains("Feature importance") && html.contains("data-plot=\"feature-importance\""),
        "the report has no feature importance"
    );
    assert!(
        s["wall_seconds"].as_f64().unwrap() < 8.0 * 1.05 + 1.0,
        "{s}"
    );
    assert_eq!(s["registered"]["name"], "shop");
    assert!(out.contains("dropped column `id`"), "{out}");
    assert!(
        out.contains("trial") && out.contains("family"),
        "the leaderboard: {out}"
    );
    let (ok, list, _) = lepton(&["model", "list", "--registry", registry.to_str().unwrap()]);
    assert!(ok && list.contains("shop"), "{list}");

    // Predictions for the same file (its target and extra columns are ignored, and said so).
    let predictions = dir.path().join("predictions.csv");
    let (ok, _, err) = lepton(&[
        "predict",
        "--model",
        artifact.to_str().unwrap(),
        data.to_str().unwrap(),
        "--output",
        predictions.to_str().unwrap(),
    ]);
    assert!(ok, "{err}");
    assert!(
        err.contains("ignoring column(s)") && err.contains("label"),
        "{err}"
    );
    let text = std::fs::read_to_string(&predictions).unwrap();
    let mut lines = text.lines();
    assert_eq!(
        lines.next().unwrap(),
        "prediction,probability_high,probability_low"
    );
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len(), 240);
    assert!(
        rows.iter()
            .all(|r| r.starts_with("high,") || r.starts_with("low,"))
    );

    // A file without an input column: refused, naming it.
    let partial = dir.path().join("partial.csv");
    std::fs::write(&partial, "colour,id\nred,id-1\n").unwrap();
    let (ok, _, err) = lepton(&[
        "predict",
        "--model",
        artifact.to_str().unwrap(),
        partial.to_str().unwrap(),
    ]);
    assert!(!ok && err.contains("needs column(s) x"), "{err}");
}

#[test]
fn a_given_test_file_scores_the_model_and_every_data_row_trains_it() {
    let dir = tempfile::tempdir().unwrap();
    let (data, test) = (dir.path().join("shop.csv"), dir.path().join("test.csv"));
    write_csv(&data);
    // The test rows: the data's first 41 rows (and its header), and two rows of a class the
    // data lacks, which cannot be scored: left out, and said so.
    let text = std::fs::read_to_string(&data).unwrap();
    let head: Vec<&str> = text.lines().take(42).collect();
    let unseen = "0.5,red,id-900,medium,12.000\n-1.0,blue,id-901,medium,7.000\n";
    std::fs::write(&test, head.join("\n") + "\n" + unseen).unwrap();
    let (ok, out, err) = lepton(&[
        "fit",
        data.to_str().unwrap(),
        "--target",
        "label",
        "--test",
        test.to_str().unwrap(),
        "--budget-seconds",
        "4",
        "--artifact",
        dir.path().join("model").to_str().unwrap(),
        "--json",
    ]);
    assert!(ok, "{out}\n{err}");
    assert!(err.contains("searching on 240 rows"), "{err}");
    assert!(
        err.contains("2 test rows are of classes the training rows lack (medium)"),
        "{err}"
    );
    assert!(out.contains("test (41 rows)"), "{out}");
    assert!(
        summary(&out)["test_accuracy"].as_f64().unwrap() > 0.7,
        "{out}"
    );
    // A test fraction and a test file are one choice too many.
    let (ok, _, err) = lepton(&[
        "fit",
        data.to_str().unwrap(),
        "--target",
        "label",
        "--test",
        test.to_str().unwrap(),
        "--test-fraction",
        "0.3",
    ]);
    assert!(!ok && err.contains("--test-fraction"), "{err}");
}

#[test]
fn fit_regresses_with_the_metric_asked_for() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("shop.csv");
    write_csv(&data);
    let (ok, out, err) = lepton_in(
        dir.path(),
        &[
            "fit",
            data.to_str().unwrap(),
            "--target",
            "amount",
            "--metric",
            "rmse",
            "--families",
            "linear,forest",
            "--validation",
            "kfold:3",
            "--budget-seconds",
            "6",
            "--json",
        ],
    );
    assert!(ok, "{out}\n{err}");
    let s = summary(&out);
    assert_eq!(s["validation"], "KFold(3)", "{s}");
    assert_eq!(s["bagged_folds"], 3, "{s}");
    assert_eq!(
        (s["task"].as_str(), s["metric"].as_str()),
        (Some("regression"), Some("rmse"))
    );
    assert!(s["test_r2"].as_f64().unwrap() > 0.5, "{s}");
    assert!(s["test_rmse"].is_number() && s["test_mae"].is_number());
    // The artifact is in the current directory by default.
    assert!(dir.path().join("shop-model/manifest.json").exists());
}

#[test]
fn bad_input_is_refused_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("shop.csv");
    write_csv(&data);
    let d = data.to_str().unwrap();
    let fails = |args: &[&str], expected: &str| {
        let (ok, out, err) = lepton(args);
        assert!(!ok, "{args:?} succeeded: {out}");
        assert!(err.contains(expected), "{args:?}: {err}");
    };
    fails(&["fit", d, "--target", "nope"], "no column `nope`");
    fails(
        &["fit", d, "--target", "amount", "--metric", "roc_auc"],
        "roc_auc scores a classification",
    );
    fails(
        &["fit", d, "--target", "label", "--metric", "speed"],
        "unknown metric",
    );
    fails(&["fit", d, "--target", "label", "--families", "cnn"], "cnn");
    fails(
        &["fit", d, "--target", "label", "--validation", "kfold:1"],
        "kfold:K with K at least 2",
    );
    fails(
        &["fit", d, "--target", "label", "--budget-seconds", "0"],
        "positive",
    );
    let empty = dir.path().join("empty.csv");
    std::fs::write(&empty, "x,label\n").unwrap();
    let (ok, _, err) = lepton(&["fit", empty.to_str().unwrap(), "--target", "label"]);
    assert!(!ok && err.starts_with("error:"), "{err}");
    fails(
        &[
            "predict",
            "--model",
            dir.path().join("none").to_str().unwrap(),
            d,
        ],
        "manifest",
    );
}

#[test]
fn several_processes_search_one_postgres_study_and_one_refits() {
    let Some(url) =
        lepton_test_support::env_or_skip("LEPTON_TEST_POSTGRES_URL", "the shared-study test")
    else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("shop.csv");
    write_csv(&data);
    let study = format!("fit-workers-{}", std::process::id());
    let (ok, out, err) = lepton_in(
        dir.path(),
        &[
            "fit",
            data.to_str().unwrap(),
            "--target",
            "label",
            "--families",
            "linear,forest",
            "--budget-seconds",
            "15",
            "--storage",
            &url,
            "--study",
            &study,
            "--workers",
            "3",
            "--json",
        ],
    );
    assert!(ok, "{out}\n{err}");
    let s = summary(&out);
    assert!(s["processes"].as_u64().unwrap() >= 2, "{s}");
    // Every trial once, none left running; one refit: one summary. (A helper may finish a
    // trial it started at the deadline after the refit chose: the study can hold more.)
    let (ok, shown, err) = lepton(&["study", "show", "--storage", &url, "--study", &study]);
    assert!(ok, "{err}");
    let numbers: Vec<u64> = shown
        .lines()
        .map(|l| l.split('\t').next().unwrap().parse().unwrap())
        .collect();
    let mut unique = numbers.clone();
    unique.dedup();
    assert_eq!(unique, numbers);
    assert!(numbers.len() as u64 >= s["trials"].as_u64().unwrap());
    assert!(!shown.contains("Running"), "{shown}");
    assert_eq!(out.lines().filter(|l| l.starts_with('{')).count(), 1);
}
