//! Several validation reports an epoch (`with_reports_per_epoch`): they come after the right
//! batches, change nothing in training, the best weights are chosen among all of them, and
//! they go on correctly from a checkpoint. Its own test binary: burn's device seed is shared
//! by the threads of a process, so tests running beside it would change its initial weights
//! (and these compare runs exactly).

#![allow(clippy::unwrap_used, clippy::panic)] // a failing test should panic

mod common;

use common::{bars, small};
use lepton_core::{DetachedContext, Error, TrialContext};
use lepton_data::{TabularDataset, datasets, stratified_split};
use lepton_models::{
    CnnClassifier, Cpu, MlpClassifier, MlpConfig, ModelError, TrainingRun, TrainingSummary,
};

/// One test (see above).
#[test]
fn reports_within_epochs_see_the_weights_of_their_batches_and_change_nothing() {
    mlp_reports();
    cnn_reports();
    mlp_reports_climb_budgets();
    no_validation_rows_no_reports();
    pruning_stops_a_run_within_its_first_epoch();
}

/// Iris: 105 training rows in batches of 32, 4 batches an epoch.
fn iris() -> (TabularDataset, TabularDataset) {
    let iris = datasets::iris().unwrap();
    stratified_split(&iris, 0.3, 0).unwrap()
}

/// Without dropout, so runs repeat exactly.
fn config(epochs: usize) -> MlpConfig {
    MlpConfig::default()
        .with_dropout(0.0)
        .with_learning_rate(1e-2)
        .with_max_epochs(epochs)
        .with_patience(epochs)
        .with_seed(3)
}

/// The reports of a run validated `k` times an epoch, and its summary.
fn mlp_run(k: usize, epochs: usize) -> (Vec<(u64, f64)>, TrainingSummary) {
    let (train, valid) = iris();
    let mut ctx = DetachedContext::new();
    let fitted = MlpClassifier::<Cpu>::new(config(epochs))
        .unwrap()
        .with_reports_per_epoch(k)
        .train(&train, &valid, &mut ctx)
        .unwrap();
    (ctx.reports().to_vec(), fitted.summary().clone())
}

fn mlp_reports() {
    let epochs = 12;
    let (once, best_once) = mlp_run(1, epochs);
    let (two, _) = mlp_run(2, epochs);
    let (three, best_three) = mlp_run(3, epochs);
    let (four, _) = mlp_run(4, epochs);
    let steps = |r: &[(u64, f64)]| r.iter().map(|r| r.0).collect::<Vec<u64>>();
    assert_eq!(steps(&once), (1..=12).collect::<Vec<u64>>());
    assert_eq!(steps(&three), (1..=36).collect::<Vec<u64>>());
    assert_eq!(steps(&four), (1..=48).collect::<Vec<u64>>());
    let score = |r: &[(u64, f64)], step: u64| r[step as usize - 1].1;
    for e in 1..=epochs as u64 {
        // Every epoch ends as it did with one report: validating changes no weight.
        let end = score(&once, e);
        assert_eq!(score(&two, 2 * e), end, "epoch {e}");
        assert_eq!(score(&three, 3 * e), end, "epoch {e}");
        assert_eq!(score(&four, 4 * e), end, "epoch {e}");
        // Reports after the same batch see the same weights: after 2 of the 4 batches (k = 2's
        // first, k = 3's first, k = 4's second) and after 3 (k = 3's second, k = 4's third).
        let base = |k: u64| (e - 1) * k;
        assert_eq!(
            score(&three, base(3) + 1),
            score(&two, base(2) + 1),
            "epoch {e}"
        );
        assert_eq!(
            score(&four, base(4) + 2),
            score(&two, base(2) + 1),
            "epoch {e}"
        );
        assert_eq!(
            score(&four, base(4) + 3),
            score(&three, base(3) + 2),
            "epoch {e}"
        );
    }
    // ... and reports after different batches see different weights.
    assert_ne!(score(&four, 1), score(&four, 4));
    // The best weights are chosen among all reports, those within epochs too.
    let most = |r: &[(u64, f64)]| r.iter().map(|r| r.1).fold(0.0, f64::max);
    assert_eq!(best_three.best_valid_score, Some(most(&three)));
    assert_eq!(best_once.best_valid_score, Some(most(&once)));

    // In the first epoch alone, a report within it scores higher than the epoch's end, and
    // the run keeps those weights (this is why the seed and rate above were chosen).
    let (first, best) = mlp_run(4, 1);
    let end = first[3].1;
    assert!(most(&first) > end, "reports {first:?}");
    assert_eq!(best.best_valid_score, Some(most(&first)));
    assert_eq!(best.best_epoch, 1);
}

fn cnn_reports() {
    // 256 bars in batches of 16, random shifts, dropout: validation must draw nothing.
    let (train, valid) = (bars(256, 1), bars(128, 2));
    let reports = |k: usize| {
        let mut ctx = DetachedContext::new();
        CnnClassifier::<Cpu>::new(small())
            .unwrap()
            .with_reports_per_epoch(k)
            .train(&train, &valid, &mut ctx)
            .unwrap();
        ctx.reports().to_vec()
    };
    let (once, four) = (reports(1), reports(4));
    assert_eq!(once.len(), 8);
    let steps: Vec<u64> = four.iter().map(|r| r.0).collect();
    assert_eq!(steps, (1..=32).collect::<Vec<u64>>());
    for (e, (_, score)) in once.iter().enumerate() {
        assert_eq!(four[4 * e + 3].1, *score, "epoch {}", e + 1);
    }
}

/// Budgets of 1, 3 and 6 epochs climbed through checkpoints report steps 1 to 12 at 2 reports
/// an epoch, and end as the uninterrupted run.
fn mlp_reports_climb_budgets() {
    let (train, valid) = iris();
    let (straight, straight_summary) = mlp_run(2, 6);
    let dir = tempfile::tempdir().unwrap();
    let mut reported = Vec::new();
    let mut summary = None;
    for budget in [1, 3, 6] {
        let mut ctx = DetachedContext::new();
        let fitted = MlpClassifier::<Cpu>::new(config(6))
            .unwrap()
            .with_reports_per_epoch(2)
            .with_checkpoints(dir.path())
            .with_epoch_budget(budget)
            .train(&train, &valid, &mut ctx)
            .unwrap();
        reported.extend_from_slice(ctx.reports());
        summary = Some(fitted.summary().clone());
    }
    assert_eq!(reported, straight);
    let untimed = |s: TrainingSummary| TrainingSummary {
        train_seconds: 0.0,
        valid_seconds: 0.0,
        ..s
    };
    assert_eq!(untimed(summary.unwrap()), untimed(straight_summary));
}

/// Without validation rows nothing is reported and every epoch runs.
fn no_validation_rows_no_reports() {
    let (train, valid) = iris();
    let empty = valid.select(&[]).unwrap();
    let mut ctx = DetachedContext::new();
    let fitted = MlpClassifier::<Cpu>::new(config(3))
        .unwrap()
        .with_reports_per_epoch(3)
        .train(&train, &empty, &mut ctx)
        .unwrap();
    assert!(ctx.reports().is_empty());
    assert_eq!(fitted.summary().epochs_run, 3);
}

/// Records what is reported and prunes at the first report.
struct PruneAtOnce(Vec<(u64, f64)>);

impl TrialContext for PruneAtOnce {
    fn report(&mut self, step: u64, value: f64) -> lepton_core::Result<()> {
        self.0.push((step, value));
        Ok(())
    }
    fn should_prune(&self) -> bool {
        !self.0.is_empty()
    }
}

/// Pruned at its first of 2 reports an epoch, a run stops after 2 of its 4 batches: its one
/// report is the unpruned run's first, not that run's first epoch end.
fn pruning_stops_a_run_within_its_first_epoch() {
    let (train, valid) = iris();
    let mut ctx = PruneAtOnce(Vec::new());
    let e = MlpClassifier::<Cpu>::new(config(2))
        .unwrap()
        .with_reports_per_epoch(2)
        .train(&train, &valid, &mut ctx)
        .unwrap_err();
    assert!(
        matches!(e, ModelError::Core(Error::Pruned { step: 1 })),
        "{e:?}"
    );
    assert_eq!(ctx.0.len(), 1);
    let (unpruned, _) = mlp_run(2, 2);
    assert_eq!(ctx.0[0], unpruned[0]);
    assert_ne!(ctx.0[0].1, unpruned[1].1);
}
