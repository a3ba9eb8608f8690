//! The `lepton` command line on a real SQLite study.

#![allow(clippy::unwrap_used, clippy::panic)] // a failing test should panic

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use lepton::core::{Direction, Scale, TrialContext};
use lepton::search::{SqliteStorage, Study};

mod common;
use common::lepton;

/// `lepton worker` filling the study `curves` of `url` with learning-curve trials.
fn curves_worker(
    url: &str,
    sampler: &str,
    pruner: &str,
    trials: &str,
    seed: &str,
) -> (bool, String, String) {
    lepton(&[
        "worker",
        "--storage",
        url,
        "--study",
        "curves",
        "--objective",
        "curves",
        "--sampler",
        sampler,
        "--pruner",
        pruner,
        "--trials",
        trials,
        "--seed",
        seed,
    ])
}

#[test]
fn list_show_best_and_export_a_study() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let study = Study::builder("quad")
        .with_direction(Direction::Minimize)
        .with_storage(Arc::new(SqliteStorage::open(&path).unwrap()))
        .build()
        .unwrap();
    study
        .optimize(5, |t| {
            let x = t.suggest_float("x", -2.0, 2.0, Scale::Linear)?;
            t.report(1, x.abs())?;
            if t.number() == 3 {
                return Err(lepton::core::Error::Pruned { step: 1 });
            }
            Ok(x * x)
        })
        .unwrap();
    let url = format!("sqlite://{}", path.display());

    let (ok, out, _) = lepton(&["study", "list", "--storage", &url]);
    assert!(ok && out.starts_with("quad\tMinimize\t5 trials"), "{out}");

    let (ok, out, _) = lepton(&["study", "show", "--storage", &url, "--study", "quad"]);
    assert!(
        ok && out.lines().count() == 5 && out.contains("Pruned"),
        "{out}"
    );

    let (ok, out, _) = lepton(&["study", "export", "--storage", &url, "--study", "quad"]);
    assert!(ok);
    let trials: Vec<serde_json::Value> = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(trials.len(), 5);
    assert_eq!(trials[3]["state"], "pruned");
    assert!(trials[0]["params"]["x"].is_number());
    assert!(trials[0]["intermediate_values"]["1"].is_number());

    let (ok, out, _) = lepton(&[
        "study",
        "export",
        "--storage",
        &url,
        "--study",
        "quad",
        "--format",
        "csv",
    ]);
    assert!(ok);
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("number,state,value,param_x,intermediate_values")
    );
    assert_eq!(lines.count(), 5);

    let (ok, out, _) = lepton(&["study", "best", "--storage", &url, "--study", "quad"]);
    let best: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    let expected = study.best_trial().unwrap().unwrap();
    assert!(ok);
    assert_eq!(best["number"], expected.number);

    // Importance needs a few more trials; y plays no part in the value.
    let (ok, _, err) = lepton(&["study", "importance", "--storage", &url, "--study", "quad"]);
    assert!(!ok && err.contains("at least 11 complete trials"), "{err}");
    let more = Study::builder("xy")
        .with_storage(Arc::new(SqliteStorage::open(&path).unwrap()))
        .build()
        .unwrap();
    more.optimize(60, |t| {
        let x = t.suggest_float("x", -2.0, 2.0, Scale::Linear)?;
        t.suggest_float("y", -2.0, 2.0, Scale::Linear)?;
        Ok(x * x)
    })
    .unwrap();
    let (ok, out, err) = lepton(&["study", "importance", "--storage", &url, "--study", "xy"]);
    assert!(ok, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 2);
    assert!(lines[0].starts_with("x\t"), "{out}");
}

#[test]
fn bad_storage_urls_and_studies_fail_with_a_message() {
    let (ok, _, err) = lepton(&["study", "list", "--storage", "mysql://nope"]);
    assert!(!ok && err.contains("unknown storage URL"), "{err}");
    let (ok, _, err) = lepton(&["study", "show", "--storage", "memory:", "--study", "none"]);
    assert!(!ok && err.contains("unknown study"), "{err}");
}

#[test]
fn sweep_fails_the_running_trials_whose_heartbeat_is_stale() {
    use lepton::core::{ParamValue, STALE_ATTR, Storage, TrialState};
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("s.db");
    let url = format!("sqlite://{}", path.display());
    let storage = SqliteStorage::open(&path).unwrap();
    for name in ["a", "b"] {
        storage.create_study(name, Direction::Minimize).unwrap();
    }
    // Trials of processes that died: a0 and b0 stay running; a1 was told.
    storage.create_trial("a").unwrap();
    let told = storage.create_trial("a").unwrap();
    storage
        .finish_trial("a", told, TrialState::Complete, Some(1.0))
        .unwrap();
    storage.create_trial("b").unwrap();
    std::thread::sleep(Duration::from_millis(2500));
    // A trial whose process is alive: just started.
    let live = storage.create_trial("a").unwrap();
    let sweep = |extra: &[&str]| {
        let mut args = vec!["study", "sweep", "--storage", url.as_str()];
        args.extend_from_slice(extra);
        lepton(&args)
    };
    let (ok, out, err) = sweep(&["--study", "b", "--grace-seconds", "2"]);
    assert!(ok, "{err}");
    assert_eq!(out, "b\t0\n");
    let (ok, out, err) = sweep(&["--grace-seconds", "2"]);
    assert!(ok, "{err}");
    assert_eq!(out, "a\t0\n");
    // With the default grace (10 s) the live trial is left alone.
    let (ok, out, err) = sweep(&[]);
    assert!(ok && out.is_empty(), "{out}{err}");
    let states = |study: &str| -> Vec<TrialState> {
        storage
            .trials(study)
            .unwrap()
            .iter()
            .map(|t| t.state)
            .collect()
    };
    use TrialState::{Complete, Failed, Running};
    assert_eq!(states("a"), [Failed, Complete, Running]);
    assert_eq!(states("b"), [Failed]);
    assert_eq!(
        storage.trials("a").unwrap()[0].user_attrs.get(STALE_ATTR),
        Some(&ParamValue::Bool(true))
    );
    assert_eq!(live, 2);
    // Refused: an unknown study, a negative grace.
    let (ok, _, err) = sweep(&["--study", "none"]);
    assert!(!ok && err.contains("unknown study"), "{err}");
    for bad in ["--grace-seconds=-1", "--grace-seconds=NaN"] {
        let (ok, _, err) = sweep(&[bad]);
        assert!(!ok && err.contains("error: --grace-seconds"), "{err}");
    }
}

#[test]
fn a_worker_fills_a_study_to_its_total_and_a_second_one_finds_it_full() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("w.db").display());
    let worker = |trials: &str| {
        lepton(&[
            "worker",
            "--storage",
            &url,
            "--study",
            "h6",
            "--objective",
            "hartmann6",
            "--sampler",
            "tpe",
            "--trials",
            trials,
            "--seed",
            "1",
        ])
    };
    let (ok, out, err) = worker("30");
    assert!(ok, "{err}");
    let lines: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 30);
    assert!(
        lines
            .iter()
            .all(|l| l["state"] == "complete" && l["ask_ms"].as_f64().unwrap() >= 0.0)
    );
    // Hartmann-6's minimum is -3.32; 30 TPE trials get below -1.
    let best = lines
        .iter()
        .map(|l| l["value"].as_f64().unwrap())
        .fold(f64::INFINITY, f64::min);
    assert!((-3.33..-1.0).contains(&best), "{best}");
    assert!(err.contains("30 trials"), "{err}");
    let (ok, out, _) = worker("30");
    assert!(ok && out.is_empty(), "{out}");
    let (ok, out, _) = lepton(&["study", "list", "--storage", &url]);
    assert!(ok && out.contains("h6\tMinimize\t30 trials"), "{out}");
}

#[test]
fn a_worker_refuses_unknown_problems_and_samplers_before_touching_the_storage() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("w.db").display());
    for (objective, sampler, message) in [
        ("sphere", "tpe", "unknown problem `sphere`"),
        ("branin", "anneal", "anneal"),
    ] {
        let (ok, _, err) = lepton(&[
            "worker",
            "--storage",
            &url,
            "--study",
            "s",
            "--objective",
            objective,
            "--sampler",
            sampler,
            "--trials",
            "5",
        ]);
        assert!(!ok && err.contains(message), "{err}");
    }
    let (ok, out, _) = lepton(&["study", "list", "--storage", &url]);
    assert!(ok && out.is_empty(), "{out}");
}

#[test]
fn a_worker_prunes_learning_curves_and_the_export_carries_them() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("c.db").display());
    let (ok, out, err) = curves_worker(&url, "random", "asha", "40", "2");
    assert!(ok, "{err}");
    let states: Vec<String> = out
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["state"].to_string())
        .collect();
    assert_eq!(states.len(), 40);
    assert!(states.iter().any(|s| s == "\"pruned\""), "{states:?}");
    assert!(states.iter().any(|s| s == "\"complete\""), "{states:?}");
    let (ok, out, _) = lepton(&["study", "export", "--storage", &url, "--study", "curves"]);
    assert!(ok);
    let trials: Vec<serde_json::Value> = serde_json::from_str(out.trim()).unwrap();
    for t in &trials {
        let steps = t["intermediate_values"].as_object().unwrap().len();
        match t["state"].as_str().unwrap() {
            "complete" => assert_eq!(steps, 100),
            "pruned" => assert!((1..100).contains(&steps), "{steps}"),
            other => panic!("state {other}"),
        }
    }
    // BOHB: Hyperband's pruning with the BOHB sampler.
    let worker = |study: &str, pruner: &str| {
        lepton(&[
            "worker",
            "--storage",
            &url,
            "--study",
            study,
            "--objective",
            "curves",
            "--pruner",
            pruner,
            "--trials",
            "40",
            "--seed",
            "3",
        ])
    };
    let (ok, out, err) = worker("bohb", "bohb");
    assert!(ok, "{err}");
    assert_eq!(out.lines().count(), 40);
    assert!(
        out.contains("\"pruned\"") && out.contains("\"complete\""),
        "{out}"
    );
    let (ok, _, err) = worker("lion", "lion");
    assert!(!ok && err.contains("unknown pruner `lion`"), "{err}");
}

#[test]
fn the_model_registry_from_a_shell() {
    use lepton::core::{Schema, Task};
    use lepton::deploy::ModelArtifact;
    let tmp = tempfile::tempdir().unwrap();
    let schema = Schema {
        features: vec!["x".into()],
        target: "y".into(),
        task: Task::Regression,
    };
    let artifact = tmp.path().join("artifact");
    ModelArtifact::new(
        "test",
        &1,
        &2,
        schema,
        std::collections::BTreeMap::from([("r2".into(), 0.5)]),
        vec![1, 2, 3],
    )
    .unwrap()
    .save(&artifact)
    .unwrap();
    let registry = tmp.path().join("registry");
    let (reg, art) = (registry.to_str().unwrap(), artifact.to_str().unwrap());
    // Four processes registering at once get four distinct versions.
    let children: Vec<_> = (0..4)
        .map(|_| {
            Command::new(env!("CARGO_BIN_EXE_lepton"))
                .args(["model", "register", "--registry", reg, "--name", "m", art])
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    let mut versions: Vec<u64> = children
        .into_iter()
        .map(|child| {
            let o = child.wait_with_output().unwrap();
            assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
            String::from_utf8_lossy(&o.stdout).trim().parse().unwrap()
        })
        .collect();
    versions.sort_unstable();
    assert_eq!(versions, [1, 2, 3, 4]);
    let promote = |version: &str| {
        lepton(&[
            "model",
            "promote",
            "--registry",
            reg,
            "--name",
            "m",
            "--version",
            version,
        ])
    };
    let (ok, out, _) = promote("2");
    assert!(ok);
    assert_eq!(out.trim(), "m production -> v2");
    let (ok, _, _) = promote("latest");
    assert!(ok);
    let (ok, out, _) = lepton(&["model", "list", "--registry", reg]);
    assert!(ok);
    assert_eq!(out.trim(), "m\t4 versions\tproduction=v4");
    let (ok, out, _) = lepton(&["model", "list", "--registry", reg, "--name", "m"]);
    assert!(ok);
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(
        lines[3].starts_with("v4\tproduction\ttest\t"),
        "{}",
        lines[3]
    );
    assert!(lines[3].contains("r2=0.5000"), "{}", lines[3]);
    let (ok, out, _) = lepton(&["model", "rollback", "--registry", reg, "--name", "m"]);
    assert!(ok);
    assert_eq!(out.trim(), "2");
    // Refusals: a bad name, an unknown version, nothing to roll back, a damaged artifact.
    let (ok, _, err) = lepton(&[
        "model",
        "register",
        "--registry",
        reg,
        "--name",
        "../x",
        art,
    ]);
    assert!(!ok && err.contains("invalid name"), "{err}");
    let (ok, _, err) = promote("9");
    assert!(!ok && err.contains("no version `9`"), "{err}");
    let (ok, _, err) = lepton(&["model", "rollback", "--registry", reg, "--name", "m"]);
    assert!(!ok && err.contains("no earlier version"), "{err}");
    std::fs::write(artifact.join("weights.bpk"), [0]).unwrap();
    let (ok, _, err) = lepton(&["model", "register", "--registry", reg, "--name", "m", art]);
    assert!(!ok && err.contains("checksum"), "{err}");
    let (_, out, _) = lepton(&["model", "list", "--registry", reg]);
    assert_eq!(out.trim(), "m\t4 versions\tproduction=v2");

    // A version written before manifests were checksummed (format 2): refused, then
    // registered again with --upgrade.
    let old = registry.join("m/v2");
    let mut manifest: serde_json::Value =
        serde_json::from_slice(&std::fs::read(old.join("manifest.json")).unwrap()).unwrap();
    manifest["format_version"] = 2.into();
    manifest.as_object_mut().unwrap().remove("manifest_sha256");
    std::fs::write(old.join("manifest.json"), manifest.to_string()).unwrap();
    let old = old.to_str().unwrap();
    let (ok, _, err) = lepton(&["model", "register", "--registry", reg, "--name", "m", old]);
    assert!(!ok && err.contains("--upgrade"), "{err}");
    let (ok, out, err) = lepton(&[
        "model",
        "register",
        "--registry",
        reg,
        "--name",
        "m",
        "--upgrade",
        old,
    ]);
    assert!(ok, "{err}");
    assert_eq!(out.trim(), "5");
    let (ok, _, err) = promote("5");
    assert!(ok, "{err}");
}

/// The number a plot's layer of data says it holds (`data-KIND="N"`), in the figure of `plot`;
/// the layers of one kind in that figure are summed.
fn plotted(html: &str, plot: &str, kind: &str) -> usize {
    let start = html
        .find(&format!("data-plot=\"{plot}\""))
        .unwrap_or_else(|| panic!("no {plot} figure"));
    let figure = &html[start..start + html[start..].find("</figure>").unwrap()];
    let tag = format!("data-{kind}=\"");
    figure
        .match_indices(&tag)
        .map(|(i, _)| {
            let rest = &figure[i + tag.len()..];
            rest[..rest.find('"').unwrap()].parse::<usize>().unwrap()
        })
        .sum()
}

/// `lepton study report` of `study` in `url` into `out`.
fn report(url: &str, study: &str, out: &str) -> (bool, String, String) {
    lepton(&[
        "study",
        "report",
        "--storage",
        url,
        "--study",
        study,
        "--out",
        out,
    ])
}

#[test]
fn a_report_of_a_pruned_study_plots_every_trial() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("r.db").display());
    let (ok, out, err) = curves_worker(&url, "random", "asha", "30", "5");
    assert!(ok, "{err}");
    let complete = out.matches("\"complete\"").count();
    let pruned = out.matches("\"pruned\"").count();
    assert_eq!(complete + pruned, 30);
    assert!(pruned > 0 && complete > 0, "{out}");

    let page = dir.path().join("report.html");
    let page_arg = page.display().to_string();
    let (ok, out, err) = report(&url, "curves", &page_arg);
    assert!(ok, "{err}");
    assert!(out.contains("30 trials"), "{out}");
    let html = std::fs::read_to_string(&page).unwrap();
    assert_eq!(plotted(&html, "history", "points"), complete);
    // Every trial reported: a curve (or a lone dot), and a cross per pruned trial.
    assert_eq!(plotted(&html, "intermediate", "marks"), pruned);
    let curves = plotted(&html, "intermediate", "lines") + plotted(&html, "intermediate", "points");
    assert_eq!(curves, 30);
    assert_eq!(plotted(&html, "parallel", "lines"), complete);
    // One slice per parameter (x0, x1, speed), each with every complete trial.
    assert_eq!(html.matches("data-plot=\"slice\"").count(), 3);
    assert_eq!(plotted(&html, "slice", "points"), complete);

    let (ok, _, err) = report(&url, "nope", &page_arg);
    assert!(!ok && err.contains("nope"), "{err}");
    let nowhere = dir.path().join("missing/dir/report.html");
    let (ok, _, err) = report(&url, "curves", &nowhere.display().to_string());
    assert!(!ok && err.contains("cannot write"), "{err}");
}
