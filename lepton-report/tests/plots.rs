//! The plots hold the right data on hand-made studies, and their SVG draws that data.

#![allow(clippy::unwrap_used, clippy::panic)] // a failing test should panic

use lepton_core::{Direction, Distribution, FrozenTrial, History, ParamValue, Scale, TrialState};
use lepton_report::{
    AxisScale, CONFUSION_ATTR, Confusion, CurvesPlot, HistoryPlot, ImportancePlot, Leaderboard,
    ParallelPlot, SlicePlot, StudyReport,
};

fn trial(
    number: u64,
    state: TrialState,
    value: Option<f64>,
    params: &[(&str, f64)],
) -> FrozenTrial {
    let mut t = FrozenTrial::new(number);
    t.state = state;
    t.value = value;
    for &(name, v) in params {
        t.params.insert(name.into(), ParamValue::Float(v));
        t.distributions
            .insert(name.into(), Distribution::float(-10.0, 10.0, Scale::Linear));
    }
    t
}

fn with_reports(mut t: FrozenTrial, reports: &[(u64, f64)]) -> FrozenTrial {
    t.intermediate_values = reports.iter().copied().collect();
    t
}

/// How many data points (or lines) the layers of an SVG say they hold, and how many pieces
/// their paths draw.
fn layer(svg: &str, kind: &str) -> (usize, usize) {
    let tag = format!("data-{kind}=\"");
    let Some(i) = svg.find(&tag) else {
        return (0, 0);
    };
    let rest = &svg[i + tag.len()..];
    let said: usize = rest[..rest.find('"').unwrap()].parse().unwrap();
    let group = &rest[..rest.find("</g>").unwrap()];
    (said, group.matches('M').count())
}

#[test]
fn the_history_plots_every_complete_trial_and_the_best_so_far() {
    let trials = vec![
        trial(0, TrialState::Complete, Some(5.0), &[]),
        trial(1, TrialState::Pruned, None, &[]),
        trial(2, TrialState::Complete, Some(7.0), &[]),
        trial(3, TrialState::Failed, None, &[]),
        trial(4, TrialState::Complete, Some(2.0), &[]),
        trial(5, TrialState::Complete, Some(f64::NAN), &[]),
        trial(6, TrialState::Complete, Some(3.0), &[]),
        trial(7, TrialState::Running, None, &[]),
    ];
    let plot = HistoryPlot::new(&History::new(Direction::Minimize, trials.clone()));
    assert_eq!(plot.points, [(0, 5.0), (2, 7.0), (4, 2.0), (6, 3.0)]);
    assert_eq!(plot.best, [(0, 5.0), (2, 5.0), (4, 2.0), (6, 2.0)]);
    let svg = plot.svg().unwrap();
    assert_eq!(layer(&svg, "points"), (4, 4));
    assert!(svg.contains("best so far"));

    // Maximizing, the best so far only rises.
    let plot = HistoryPlot::new(&History::new(Direction::Maximize, trials));
    assert_eq!(plot.best, [(0, 5.0), (2, 7.0), (4, 7.0), (6, 7.0)]);
}

#[test]
fn learning_curves_mark_the_pruned_trials_where_they_stopped() {
    let trials = vec![
        with_reports(
            trial(0, TrialState::Complete, Some(0.1), &[]),
            &[(1, 0.9), (2, 0.5), (3, 0.1)],
        ),
        with_reports(
            trial(1, TrialState::Pruned, None, &[]),
            &[(1, 0.95), (2, 0.8)],
        ),
        // A missing step and a NaN report: the curve has the finite reports only.
        with_reports(
            trial(2, TrialState::Pruned, None, &[]),
            &[(1, 0.99), (3, f64::NAN)],
        ),
        trial(3, TrialState::Complete, Some(0.3), &[]),
        with_reports(
            trial(4, TrialState::Running, None, &[]),
            &[(1, 0.7), (2, 0.6)],
        ),
    ];
    let plot = CurvesPlot::new(&History::new(Direction::Minimize, trials));
    let numbers: Vec<u64> = plot.curves.iter().map(|c| c.number).collect();
    assert_eq!(numbers, [0, 1, 2, 4]);
    assert_eq!(plot.curves[2].points, [(1, 0.99)]);
    let pruned: Vec<u64> = plot.pruned().map(|c| c.number).collect();
    assert_eq!(pruned, [1, 2]);
    let svg = plot.svg().unwrap();
    // Three curves of two or more reports; one single report as a dot; two crosses.
    assert_eq!(layer(&svg, "lines").0, 3);
    assert_eq!(layer(&svg, "points"), (1, 1));
    assert_eq!(layer(&svg, "marks"), (2, 4));
    // Pruned trials are drawn in red.
    assert!(svg.contains("stroke=\"#D62728\""));
}

#[test]
fn parallel_coordinates_place_each_trial_on_every_axis_it_has() {
    let mut categorical = trial(2, TrialState::Complete, Some(1.0), &[("x", 0.0)]);
    categorical
        .params
        .insert("opt".into(), ParamValue::Str("sgd".into()));
    categorical.distributions.insert(
        "opt".into(),
        Distribution::categorical(["adam", "sgd", "rmsprop"]),
    );
    let trials = vec![
        trial(0, TrialState::Complete, Some(3.0), &[("x", 10.0)]),
        trial(1, TrialState::Complete, Some(2.0), &[("x", 5.0)]),
        categorical,
        trial(3, TrialState::Pruned, None, &[("x", 1.0)]),
    ];
    let plot = ParallelPlot::new(&History::new(Direction::Minimize, trials));
    let names: Vec<&str> = plot.axes.iter().map(|a| a.name.as_str()).collect();
    assert_eq!(names, ["opt", "x", "objective"]);
    assert_eq!(
        plot.axes[0].scale,
        AxisScale::Categorical {
            labels: vec!["adam".into(), "sgd".into(), "rmsprop".into()]
        }
    );
    // Worst first, so the best are drawn on top.
    let order: Vec<u64> = plot.lines.iter().map(|l| l.number).collect();
    assert_eq!(order, [0, 1, 2]);
    // x from 0 to 10 and objective from 1 to 3, both padded by 5 %: 5 sits at the middle.
    let middle = plot.lines[1].positions[1].unwrap();
    assert!((middle - 0.5).abs() < 1e-12, "{middle}");
    assert!((plot.lines[1].positions[2].unwrap() - 0.5).abs() < 1e-12);
    // Only trial 2 has `opt`: "sgd" is the middle choice of three.
    assert_eq!(plot.lines[0].positions[0], None);
    assert!((plot.lines[2].positions[0].unwrap() - 0.5).abs() < 1e-12);
    let svg = plot.svg().unwrap();
    assert_eq!(layer(&svg, "lines"), (3, 3));
    for label in ["opt", "x", "objective", "adam", "rmsprop"] {
        assert!(svg.contains(&format!(">\n{label}\n</text>")), "{label}");
    }
}

#[test]
fn slices_plot_each_parameter_against_the_value() {
    let trials = vec![
        trial(
            0,
            TrialState::Complete,
            Some(4.0),
            &[("a", 1.0), ("b", -1.0)],
        ),
        trial(1, TrialState::Complete, Some(1.0), &[("a", 2.0)]),
        trial(2, TrialState::Pruned, None, &[("a", 3.0), ("b", 0.5)]),
        trial(
            3,
            TrialState::Complete,
            Some(0.5),
            &[("a", 3.0), ("b", 2.0)],
        ),
    ];
    let slices = SlicePlot::all(&History::new(Direction::Minimize, trials));
    assert_eq!(slices.len(), 2);
    assert_eq!(slices[0].axis.name, "a");
    assert_eq!(
        slices[0].points,
        [(1.0, 4.0, 0), (2.0, 1.0, 1), (3.0, 0.5, 3)]
    );
    assert_eq!(slices[1].points, [(-1.0, 4.0, 0), (2.0, 0.5, 3)]);
    assert_eq!(layer(&slices[0].svg().unwrap(), "points"), (3, 3));
}

#[test]
fn importance_finds_the_parameter_that_matters() {
    // y depends on x only; z is noise.
    let mut state = 7u64;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (state >> 11) as f64 / (1u64 << 53) as f64 * 20.0 - 10.0
    };
    let trials = (0..200)
        .map(|n| {
            let (x, z) = (next(), next());
            trial(n, TrialState::Complete, Some(x * x), &[("x", x), ("z", z)])
        })
        .collect();
    let plot = ImportancePlot::new(&History::new(Direction::Minimize, trials)).unwrap();
    assert_eq!(plot.shares[0].0, "x");
    assert!(plot.shares[0].1 > 0.8, "{:?}", plot.shares);
    let total: f64 = plot.shares.iter().map(|s| s.1).sum();
    assert!((total - 1.0).abs() < 1e-9);
    let svg = plot.svg().unwrap();
    // One bar per parameter, in the bars' colour.
    assert_eq!(svg.matches("fill=\"#1F77B4\"").count(), 2);
    // Too few trials: a reason, not a plot.
    let few = vec![trial(0, TrialState::Complete, Some(1.0), &[("x", 1.0)])];
    assert!(ImportancePlot::new(&History::new(Direction::Minimize, few)).is_err());
}

#[test]
fn the_leaderboard_ranks_complete_trials_best_first() {
    let trials = vec![
        trial(0, TrialState::Complete, Some(0.9), &[("lr", 0.1)]),
        trial(
            1,
            TrialState::Complete,
            Some(0.95),
            &[("lr", 0.01), ("wd", 1e-4)],
        ),
        trial(2, TrialState::Pruned, None, &[("lr", 0.5)]),
        trial(3, TrialState::Complete, Some(0.95), &[("lr", 0.02)]),
        trial(4, TrialState::Complete, Some(0.5), &[("lr", 1.0)]),
    ];
    let board = Leaderboard::new(&History::new(Direction::Maximize, trials), 3);
    let order: Vec<(usize, u64)> = board.rows.iter().map(|r| (r.rank, r.number)).collect();
    // A tie keeps the earlier trial first.
    assert_eq!(order, [(1, 1), (2, 3), (3, 0)]);
    assert_eq!(board.columns, ["lr", "wd"]);
    assert_eq!(board.rows[1].params, ["0.02", ""]);
    let html = board.html();
    assert_eq!(html.matches("<tr>").count(), 4);
}

#[test]
fn the_page_has_every_section_and_the_best_trials_confusion_matrix() {
    let mut trials: Vec<FrozenTrial> = (0..30)
        .map(|n| {
            let x = n as f64 / 3.0 - 5.0;
            with_reports(
                trial(n, TrialState::Complete, Some(x * x), &[("x", x)]),
                &[(1, x * x + 1.0), (2, x * x)],
            )
        })
        .collect();
    // Trial 15 (x = 0) is the best; it stores its confusion matrix.
    let confusion = Confusion {
        labels: vec!["no".into(), "yes".into()],
        counts: vec![vec![40, 2], vec![3, 55]],
    };
    trials[15]
        .user_attrs
        .insert(CONFUSION_ATTR.into(), confusion.to_attr());
    let history = History::new(Direction::Minimize, trials);
    let html = StudyReport::new("demo <1>", &history)
        .live("/studies/demo/progress")
        .html()
        .unwrap();
    for kind in [
        "history",
        "intermediate",
        "parallel",
        "importance",
        "slice",
        "confusion",
    ] {
        assert!(
            html.contains(&format!("data-plot=\"{kind}\"")),
            "no {kind} plot"
        );
    }
    assert!(html.contains("Study <code>demo &lt;1&gt;</code>"));
    assert!(html.contains("data-finished=\"30\""));
    assert!(html.contains("data-live=\"/studies/demo/progress\""));
    assert!(html.contains("Best: trial 15 with 0"));
    // The confusion matrix shows its counts.
    let at = html.find("data-plot=\"confusion\"").unwrap();
    let figure = &html[at..at + html[at..].find("</figure>").unwrap()];
    for count in ["40", "2", "3", "55"] {
        assert!(figure.contains(&format!(">\n{count}\n</text>")), "{count}");
    }
    // Nothing to fetch: no external address anywhere but the SVG namespace.
    let outside = html.matches("http").count() - html.matches("http://www.w3.org/2000/svg").count();
    assert_eq!(outside, 0);
}

#[test]
fn an_empty_study_still_makes_a_page() {
    let history = History::new(Direction::Minimize, Vec::new());
    let html = StudyReport::new("empty", &history).html().unwrap();
    assert!(html.contains("0 trials"));
    assert!(!html.contains("<svg"));
    assert!(html.contains("nothing to plot yet"));
}

#[test]
fn a_malformed_confusion_matrix_is_reported_on_the_page() {
    let mut best = trial(0, TrialState::Complete, Some(1.0), &[("x", 1.0)]);
    best.user_attrs
        .insert(CONFUSION_ATTR.into(), ParamValue::Str("[[1, 2]".into()));
    let history = History::new(Direction::Minimize, vec![best]);
    let html = StudyReport::new("bad", &history).html().unwrap();
    assert!(html.contains("attribute `lepton.confusion_matrix` is malformed"));
    assert!(!html.contains("data-plot=\"confusion\""));
}

#[test]
fn a_penalty_of_f64_max_still_draws_and_stays_on_the_axes() {
    let trials = vec![
        trial(0, TrialState::Complete, Some(f64::MAX), &[("x", 1.0)]),
        trial(1, TrialState::Complete, Some(1.0), &[("x", 2.0)]),
        trial(2, TrialState::Complete, Some(-f64::MAX), &[("x", 3.0)]),
        // No parameters: on the objective axis only, a dot.
        trial(3, TrialState::Complete, Some(2.0), &[]),
    ];
    let history = History::new(Direction::Minimize, trials);
    let html = StudyReport::new("penalty", &history).html().unwrap();
    for kind in ["history", "parallel", "slice"] {
        assert!(html.contains(&format!("data-plot=\"{kind}\"")), "{kind}");
    }
    let plot = ParallelPlot::new(&history);
    for p in plot.lines.iter().flat_map(|l| l.positions.iter().flatten()) {
        assert!((0.0..=1.0).contains(p), "{p}");
    }
    let svg = plot.svg().unwrap();
    assert_eq!(layer(&svg, "lines"), (3, 3));
    assert_eq!(layer(&svg, "points"), (1, 1));
}
