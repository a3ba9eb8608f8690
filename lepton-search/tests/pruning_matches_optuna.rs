//! Lepton's pruners make Optuna's decisions: 80 fixed configurations of the synthetic learning
//! curves run, in order, through ASHA, the median and a percentile pruner, and every trial
//! must be pruned at the step Optuna 5.0.0 pruned it at (or complete where it completed).
//! `tests/data/pruning_reference.json` holds Optuna's decisions; `tests/data/
//! pruning_reference.py` wrote it.

#![allow(clippy::unwrap_used, clippy::panic)] // a failing test should panic

use std::collections::BTreeMap;

use lepton_core::{ParamValue, Pruner, TrialState};
use lepton_search::problems::Problem;
use lepton_search::{PercentilePruner, RandomSampler, Study, SuccessiveHalvingPruner};

fn reference() -> serde_json::Value {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/data/pruning_reference.json"
    );
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The step each trial was pruned at (`None`: it completed), run through `pruner`.
fn decisions(pruner: impl Pruner + 'static, configs: &[serde_json::Value]) -> Vec<Option<u64>> {
    let study = Study::builder("curves")
        .with_sampler(RandomSampler::new(0))
        .with_pruner(pruner)
        .build()
        .unwrap();
    for c in configs {
        let params: BTreeMap<String, ParamValue> = ["x0", "x1", "speed"]
            .iter()
            .enumerate()
            .map(|(i, name)| {
                (
                    (*name).to_owned(),
                    ParamValue::Float(c[i].as_f64().unwrap()),
                )
            })
            .collect();
        study.enqueue(params).unwrap();
    }
    study
        .optimize(configs.len(), |t| Problem::Curves.evaluate(t))
        .unwrap();
    study
        .trials()
        .unwrap()
        .iter()
        .map(|t| match t.state {
            TrialState::Pruned => t.last_step().map(|(step, _)| step),
            TrialState::Complete => None,
            other => panic!("trial {} {other:?}", t.number),
        })
        .collect()
}

fn expected(reference: &serde_json::Value, key: &str) -> Vec<Option<u64>> {
    reference[key]
        .as_array()
        .unwrap()
        .iter()
        .map(serde_json::Value::as_u64)
        .collect()
}

#[test]
fn asha_median_and_percentile_prune_where_optuna_does() {
    let reference = reference();
    let configs = reference["configs"].as_array().unwrap().clone();
    assert_eq!(configs.len(), 80);
    let cases: [(&str, Box<dyn Pruner>); 3] = [
        ("asha", Box::new(SuccessiveHalvingPruner::new())),
        ("median", Box::new(PercentilePruner::median())),
        (
            "percentile_25_warmup_5",
            Box::new(PercentilePruner::new(25.0).unwrap().with_n_warmup_steps(5)),
        ),
    ];
    for (key, pruner) in cases {
        let ours = decisions(pruner, &configs);
        let theirs = expected(&reference, key);
        let differing: Vec<(usize, Option<u64>, Option<u64>)> = ours
            .iter()
            .zip(&theirs)
            .enumerate()
            .filter(|(_, (a, b))| a != b)
            .map(|(i, (a, b))| (i, *a, *b))
            .collect();
        assert!(
            differing.is_empty(),
            "{key}: trials (number, Lepton, Optuna) differ: {differing:?}"
        );
        // The reference prunes most trials, so the check has teeth.
        assert!(theirs.iter().filter(|s| s.is_some()).count() > 60, "{key}");
    }
}
