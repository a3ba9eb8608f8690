use std::f64::consts::PI;

use rand::Rng;

use lepton_core::{Direction, Scale};

use super::acquisition::log_ei;
use super::likelihood::objective;
use super::*;
use crate::Study;
use crate::samplers::gauss;

fn toy_data(n: usize, seed: u64) -> Data {
    let mut rng = StdRng::seed_from_u64(seed);
    let x: Vec<Vec<f64>> = (0..n)
        .map(|_| vec![rng.random(), rng.random(), rng.random_range(0..3) as f64])
        .collect();
    let y = x
        .iter()
        .map(|p| (3.0 * p[0]).sin() + p[1] * p[1] + if p[2] == 1.0 { 0.5 } else { 0.0 })
        .collect();
    Data {
        categorical: vec![false, false, true],
        x,
        y,
    }
}

#[test]
fn marginal_likelihood_gradient_matches_finite_differences() {
    let data = toy_data(25, 1);
    let theta = vec![0.3, -0.4, 0.1, 0.2, (0.05f64).ln()];
    let (_, grad) = objective(&data, &theta, false).unwrap();
    for k in 0..theta.len() {
        let h = 1e-5;
        let (mut a, mut b) = (theta.clone(), theta.clone());
        a[k] += h;
        b[k] -= h;
        let fd = (objective(&data, &a, false).unwrap().0 - objective(&data, &b, false).unwrap().0)
            / (2.0 * h);
        assert!(
            (fd - grad[k]).abs() < 1e-4 * (1.0 + fd.abs()),
            "{k}: {fd} vs {}",
            grad[k]
        );
    }
}

#[test]
fn log_ei_gradient_matches_finite_differences() {
    let data = toy_data(30, 2);
    let theta = fit_hyper(&data, Hyper::initial(3), false);
    let post = Posterior::new(&data, Hyper::from_raw(&theta, false)).unwrap();
    for x in [
        vec![0.2, 0.7, 1.0],
        vec![0.9, 0.1, 0.0],
        vec![0.55, 0.45, 2.0],
    ] {
        let (_, grad) = post.log_ei_grad(&x).unwrap();
        for k in 0..2 {
            let h = 1e-6;
            let (mut a, mut b) = (x.clone(), x.clone());
            a[k] += h;
            b[k] -= h;
            let fd =
                (post.log_ei_grad(&a).unwrap().0 - post.log_ei_grad(&b).unwrap().0) / (2.0 * h);
            assert!(
                (fd - grad[k]).abs() < 1e-3 * (1.0 + fd.abs()),
                "{fd} vs {}",
                grad[k]
            );
        }
        assert_eq!(grad[2], 0.0, "choices are not differentiated");
    }
}

#[test]
fn log_ei_is_continuous_and_finite_deep_in_the_tail() {
    // Across the switch between the direct and the continued-fraction forms.
    let below = log_ei(3.0 - 1e-9, 1.0, 0.0).0;
    let above = log_ei(3.0 + 1e-9, 1.0, 0.0).0;
    assert!((below - above).abs() < 1e-6, "{below} vs {above}");
    // Direct evaluation where it is still accurate.
    let z: f64 = -2.0;
    let direct = (z * gauss::cdf(z) + gauss::pdf(z)).ln();
    assert!((log_ei(2.0, 1.0, 0.0).0 - direct).abs() < 1e-12);
    // EI underflows at z = -40; its logarithm does not.
    let far = log_ei(40.0, 1.0, 0.0);
    assert!(far.0.is_finite() && far.0 < -800.0, "{far:?}");
    assert!(far.1.is_finite() && far.2.is_finite());
}

fn branin(trial: &mut lepton_core::Trial) -> Result<f64> {
    let x = trial.suggest_float("x", -5.0, 10.0, Scale::Linear)?;
    let y = trial.suggest_float("y", 0.0, 15.0, Scale::Linear)?;
    let b = 5.1 / (4.0 * PI * PI);
    let c = 5.0 / PI;
    Ok((y - b * x * x + c * x - 6.0).powi(2) + 10.0 * (1.0 - 1.0 / (8.0 * PI)) * x.cos() + 10.0)
}

#[test]
fn finds_the_branin_optimum_far_better_than_random_search() {
    let best = |s: Box<dyn Fn() -> Study>| {
        let study = s();
        study.optimize(40, branin).unwrap();
        study.best_trial().unwrap().unwrap().value.unwrap() - 0.397_887
    };
    let gp = best(Box::new(|| {
        Study::builder("b")
            .with_sampler(GpSampler::new(0))
            .build()
            .unwrap()
    }));
    let random = best(Box::new(|| {
        Study::builder("b")
            .with_sampler(RandomSampler::new(0))
            .build()
            .unwrap()
    }));
    assert!(gp < 0.01, "GP regret after 40 trials: {gp}");
    assert!(gp < random / 10.0, "GP {gp} vs random {random}");
}

#[test]
fn integers_and_choices_are_searched_on_their_grids() {
    let study = Study::builder("m")
        .with_sampler(GpSampler::new(3))
        .build()
        .unwrap();
    study
        .optimize(30, |t| {
            let width = t.suggest_int("width", 1, 1024, Scale::Log)?;
            let depth = t.suggest_int("depth", 1, 8, Scale::Linear)?;
            let act = t.suggest_categorical("act", &["relu", "tanh", "gelu"])?;
            let penalty = if act.as_str() == Some("gelu") {
                0.0
            } else {
                1.0
            };
            Ok(((width as f64).log2() - 7.0).powi(2) + ((depth - 5) as f64).powi(2) + penalty)
        })
        .unwrap();
    let best = study.best_trial().unwrap().unwrap();
    assert!(best.value.unwrap() <= 1.0, "{best:?}");
    assert_eq!(best.params["act"], ParamValue::from("gelu"));
}

#[test]
fn the_proposal_is_the_best_grid_point_of_a_discrete_space() {
    // 40 integers x 3 choices: few enough to score every point, too many integers for
    // the search to try each one.
    let dims = vec![
        ("k".to_owned(), Distribution::int(0, 39, Scale::Linear)),
        ("c".to_owned(), Distribution::categorical(["a", "b", "c"])),
    ];
    let mut rng = StdRng::seed_from_u64(4);
    for seed in 0..5u64 {
        let mut x = Vec::new();
        let mut y = Vec::new();
        for _ in 0..14 {
            let k = rng.random_range(0..40i64);
            let c = rng.random_range(0..3usize);
            x.push(vec![
                unit::to_unit(&dims[0].1, &ParamValue::Int(k)).unwrap(),
                c as f64,
            ]);
            y.push(((k as f64 - 23.0) / 8.0).powi(2) + if c == 2 { 0.0 } else { 0.7 });
        }
        let data = Data {
            categorical: vec![false, true],
            x,
            y,
        };
        let theta = fit_hyper(&data, Hyper::initial(2), false);
        let post = Posterior::new(&data, Hyper::from_raw(&theta, false)).unwrap();
        let sampler = GpSampler::new(seed);
        let proposal = maximize_log_ei(&post, &data, &dims, &sampler, &mut rng);
        let every: Vec<Vec<f64>> = (0..40)
            .flat_map(|k| (0..3).map(move |c| (k, c)))
            .map(|(k, c)| {
                let u = unit::to_unit(&dims[0].1, &ParamValue::Int(k)).unwrap();
                vec![u, c as f64]
            })
            .collect();
        let scores = post.log_ei_many(&every);
        let best = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        assert!(
            every.contains(&proposal),
            "seed {seed}: {proposal:?} is off the grid"
        );
        let got = post.log_ei_many(std::slice::from_ref(&proposal))[0];
        assert!(
            got >= best - 1e-9,
            "seed {seed}: {got} < {best} at {proposal:?}"
        );
    }
}

#[test]
fn wide_integer_and_stepped_ranges_are_searched_on_their_grids() {
    // 401 integers and 201 steps: too many to try every one, so the search moves on the
    // grids; a search between grid values proposes cells already tried, whose neighbours
    // look uncertain.
    let run = |seed| {
        let study = Study::builder("w")
            .with_sampler(GpSampler::new(seed))
            .build()
            .unwrap();
        study
            .optimize(30, |t| {
                let k = t.suggest_int("k", -200, 200, Scale::Linear)?;
                let stepped = Distribution::Float {
                    low: 0.0,
                    high: 10.0,
                    scale: Scale::Linear,
                    step: Some(0.05),
                };
                let s = t.suggest("s", &stepped)?.as_f64().unwrap_or(f64::NAN);
                Ok(((k - 37) as f64 / 40.0).powi(2) + (s - 6.45).powi(2))
            })
            .unwrap();
        let trials = study.trials().unwrap();
        for t in &trials {
            let s = t.params["s"].as_f64().unwrap();
            assert!(
                (s / 0.05 - (s / 0.05).round()).abs() < 1e-6,
                "{s} is off the grid"
            );
        }
        study.best_trial().unwrap().unwrap().value.unwrap()
    };
    for seed in 0..3 {
        let best = run(seed);
        eprintln!("seed {seed}: {best}");
        assert!(best < 1e-3, "seed {seed}: best {best}");
    }
}

#[test]
fn reproducible_by_seed_and_maximizes() {
    let run = |seed| {
        let study = Study::builder("r")
            .with_direction(Direction::Maximize)
            .with_sampler(GpSampler::new(seed))
            .build()
            .unwrap();
        study
            .optimize(20, |t| {
                let x = t.suggest_float("x", 0.0, 1.0, Scale::Linear)?;
                Ok(-(x - 0.3f64).powi(2))
            })
            .unwrap();
        study.best_trial().unwrap().unwrap().value.unwrap()
    };
    assert_eq!(run(5), run(5));
    assert!(run(5) > -1e-4);
}
