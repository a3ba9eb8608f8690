//! How long a study report takes to make: `StudyReport::html` on studies of 1,000 and 10,000
//! random trials of the six-parameter mixed problem (log, int, categorical parameters), and of
//! 10,000 learning-curve trials under ASHA (curves, pruned trials).
//!
//! ```text
//! cargo bench --bench report
//! ```

#![allow(clippy::expect_used)] // a bench whose setup fails should stop

use criterion::{Criterion, criterion_group, criterion_main};
use lepton::core::{Direction, History};
use lepton::report::StudyReport;
use lepton::search::problems::Problem;
use lepton::search::{Study, pruners, samplers};

fn study(problem: Problem, pruner: &str, trials: usize) -> History {
    let study = Study::builder("bench")
        .with_direction(Direction::Minimize)
        .with_sampler(samplers::by_name("random", 7).expect("a known sampler"))
        .with_pruner(pruners::by_name(pruner).expect("a known pruner"))
        .build()
        .expect("an in-memory study");
    study
        .optimize(trials, |t| problem.evaluate(t))
        .expect("the study runs");
    History::new(Direction::Minimize, study.trials().expect("its trials"))
}

fn report(c: &mut Criterion) {
    let mut group = c.benchmark_group("study_report");
    group.sample_size(10);
    for (name, history) in [
        ("mixed6_1000", study(Problem::Mixed6, "none", 1_000)),
        ("mixed6_10000", study(Problem::Mixed6, "none", 10_000)),
        ("curves_asha_10000", study(Problem::Curves, "asha", 10_000)),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| {
                StudyReport::new("bench", &history)
                    .html()
                    .expect("a report")
                    .len()
            })
        });
    }
    group.finish();
}

criterion_group!(benches, report);
criterion_main!(benches);
