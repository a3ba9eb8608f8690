use lepton_core::{Direction, Scale};

use super::folded::Folded;
use super::rows::Rank;
use super::*;
use crate::Study;

fn sphere(sampler: impl Sampler + 'static, n: usize) -> f64 {
    let study = Study::builder("s").with_sampler(sampler).build().unwrap();
    study
        .optimize(n, |t| {
            let mut s = 0.0;
            for i in 0..4 {
                let x = t.suggest_float(&format!("x{i}"), -5.0, 5.0, Scale::Linear)?;
                s += (x - 1.0).powi(2);
            }
            Ok(s)
        })
        .unwrap();
    study.best_trial().unwrap().unwrap().value.unwrap()
}

#[test]
fn beats_random_search_on_a_sphere() {
    let (mut tpe, mut random) = (0, 0);
    for seed in 0..5 {
        let t = sphere(TpeSampler::new(seed), 100);
        let r = sphere(RandomSampler::new(seed), 100);
        tpe += usize::from(t < r);
        random += usize::from(r < t);
    }
    assert!(tpe >= 4, "TPE won {tpe} of 5, random {random}");
    let univariate = sphere(TpeSampler::new(0).with_multivariate(false), 100);
    assert!(univariate < sphere(RandomSampler::new(0), 100));
}

#[test]
fn reproducible_by_seed() {
    assert_eq!(
        sphere(TpeSampler::new(3), 40),
        sphere(TpeSampler::new(3), 40)
    );
    assert_ne!(
        sphere(TpeSampler::new(3), 40),
        sphere(TpeSampler::new(4), 40)
    );
}

#[test]
fn grouped_mode_models_a_conditional_space() {
    let study = Study::builder("c")
        .with_sampler(TpeSampler::new(1).with_group(true))
        .build()
        .unwrap();
    study
        .optimize(80, |t| {
            let kind = t.suggest_categorical("kind", &["a", "b"])?;
            if kind.as_str() == Some("a") {
                let x = t.suggest_float("xa", -4.0, 4.0, Scale::Linear)?;
                Ok(1.0 + x * x)
            } else {
                let y = t.suggest_int("yb", 0, 20, Scale::Linear)?;
                Ok(((y - 13) as f64).abs())
            }
        })
        .unwrap();
    let trials = study.trials().unwrap();
    let late_b = trials[40..]
        .iter()
        .filter(|t| t.params.get("kind") == Some(&ParamValue::from("b")))
        .count();
    assert!(
        late_b > 25,
        "TPE should favour the better branch, chose it {late_b} times"
    );
    assert_eq!(study.best_trial().unwrap().unwrap().value, Some(0.0));
    let folded = Folded {
        finished: trials.into_iter().map(Arc::new).collect(),
        ..Folded::default()
    };
    let mut groups: Vec<Vec<String>> = folded
        .groups()
        .iter()
        .map(|g| g.iter().map(|(n, _)| n.clone()).collect())
        .collect();
    groups.sort();
    assert_eq!(groups, vec![vec!["kind"], vec!["xa"], vec!["yb"]]);
}

#[test]
fn constant_liar_steers_away_from_running_trials() {
    let d = Distribution::float(0.0, 1.0, Scale::Linear);
    let mut trials = Vec::new();
    for i in 0..30u64 {
        let mut t = FrozenTrial::new(i);
        let x = i as f64 / 30.0;
        t.params.insert("x".into(), ParamValue::Float(x));
        t.distributions.insert("x".into(), d.clone());
        t.state = TrialState::Complete;
        t.value = Some((x - 0.5).abs());
        trials.push(t);
    }
    // Many workers are already evaluating points at the optimum.
    for i in 30..60u64 {
        let mut t = FrozenTrial::new(i);
        t.params.insert("x".into(), ParamValue::Float(0.5));
        t.distributions.insert("x".into(), d.clone());
        trials.push(t);
    }
    let history = History::new(Direction::Minimize, trials);
    let near = |s: &TpeSampler| {
        (0..20)
            .filter(|&n| {
                let j = s.sample_joint(&history, 100 + n).unwrap();
                (j["x"].1.as_f64().unwrap() - 0.5).abs() < 0.02
            })
            .count()
    };
    let plain = near(&TpeSampler::new(0).with_constant_liar(false));
    let liar = near(&TpeSampler::new(0));
    assert!(liar < plain, "liar {liar} vs plain {plain}");
}

#[test]
fn presorted_bandwidths_equal_sorted_ones() {
    use rand::Rng;
    let dims = vec![
        (
            "a".to_owned(),
            Distribution::float(-3.0, 7.0, Scale::Linear),
        ),
        ("b".to_owned(), Distribution::float(1e-4, 1.0, Scale::Log)),
        ("c".to_owned(), Distribution::int(0, 40, Scale::Linear)),
    ];
    let mut rng = StdRng::seed_from_u64(9);
    let mut folded = Folded::default();
    let trials: Vec<FrozenTrial> = (0..300u64)
        .map(|i| {
            let mut t = FrozenTrial::new(i);
            for (name, d) in &dims {
                let v = match d {
                    Distribution::Int { .. } => ParamValue::Int(rng.random_range(0..=40)),
                    Distribution::Float {
                        scale: Scale::Log, ..
                    } => ParamValue::Float(10f64.powf(rng.random_range(-4.0..0.0))),
                    _ => ParamValue::Float(rng.random_range(-3.0..7.0)),
                };
                t.params.insert(name.as_str().into(), v);
                t.distributions.insert(name.as_str().into(), d.clone());
            }
            t.state = TrialState::Complete;
            t.value = Some(rng.random());
            t
        })
        .collect();
    // Fold in two steps, so the cached orders are both built and extended.
    folded.fold(&History::new(Direction::Minimize, trials[..150].to_vec()));
    let _ = folded.intersection_rows();
    folded.fold(&History::new(Direction::Minimize, trials.clone()));
    let (rows, order) = folded.intersection_rows();
    let sampler = TpeSampler::new(0);
    let (good, bad) = sampler.split(rows, &[]);
    let gaps = presorted_gaps(&dims, rows, order, &good, bad.len());
    assert!(gaps.iter().take(3).all(Option::is_some));
    let axes: Vec<Axis> = dims.iter().map(|(_, d)| Axis::of(d)).collect();
    let xs: Vec<&[f64]> = bad.iter().map(|r| &r.x[..]).collect();
    let w = recency_weights(xs.len());
    let config = sampler.config();
    let sorted = Parzen::fit(&axes, &xs, &w, config, &[]);
    let presorted = Parzen::fit(&axes, &xs, &w, config, &gaps);
    let points: Vec<Vec<f64>> = (0..50)
        .map(|i| {
            vec![
                -3.0 + i as f64 * 0.2,
                10f64.powf(-4.0 + i as f64 * 0.08),
                (i % 41) as f64,
            ]
        })
        .collect();
    assert_eq!(sorted.ln_pdf(&points), presorted.ln_pdf(&points));
}

#[test]
fn a_sampler_reused_for_another_study_forgets_the_first() {
    let sampler = Arc::new(TpeSampler::new(0));
    let d = Distribution::float(0.0, 1.0, Scale::Linear);
    let history = |offset: f64| {
        let trials = (0..20u64)
            .map(|i| {
                let mut t = FrozenTrial::new(i);
                let x = (i as f64 / 20.0 + offset) % 1.0;
                t.params.insert("x".into(), ParamValue::Float(x));
                t.distributions.insert("x".into(), d.clone());
                t.state = TrialState::Complete;
                t.value = Some((x - 0.5).abs());
                t
            })
            .collect();
        History::new(Direction::Minimize, trials)
    };
    let (first, second) = (history(0.0), history(0.37));
    sampler.sample_joint(&first, 20).unwrap();
    let reused = sampler.sample_joint(&second, 20).unwrap();
    let fresh = TpeSampler::new(0).sample_joint(&second, 20).unwrap();
    assert_eq!(reused, fresh);
}

#[test]
fn pruned_trials_rank_after_complete_ones_and_failed_are_ignored() {
    let mut a = FrozenTrial::new(0);
    a.state = TrialState::Pruned;
    a.intermediate_values.insert(5, 0.1);
    let mut b = FrozenTrial::new(1);
    b.state = TrialState::Pruned;
    b.intermediate_values.insert(2, 0.01);
    let mut c = FrozenTrial::new(2);
    c.state = TrialState::Complete;
    c.value = Some(9.0);
    let mut f = FrozenTrial::new(3);
    f.state = TrialState::Failed;
    let ranks: Vec<Rank> = [&a, &b, &c]
        .iter()
        .map(|t| Rank::of(t, Direction::Minimize).unwrap())
        .collect();
    assert!(ranks[2].cmp(&ranks[0]).is_lt());
    assert!(
        ranks[0].cmp(&ranks[1]).is_lt(),
        "further pruned trials rank higher"
    );
    assert!(Rank::of(&f, Direction::Minimize).is_none());
}
