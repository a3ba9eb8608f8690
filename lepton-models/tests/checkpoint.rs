//! Checkpoints: a run stopped after some epochs and started again ends exactly as an
//! uninterrupted one. Its own test binary: burn's device seed is shared by the threads of a
//! process, so tests running beside it would change its initial weights.

#![allow(clippy::unwrap_used, clippy::panic)] // a failing test should panic

mod common;

use common::{bars, small};
use lepton_core::{DetachedContext, Features, Predict};
use lepton_models::{
    CnnClassifier, CnnConfig, Cpu, MlpClassifier, MlpConfig, ModelError, Optimizer, Schedule,
    TrainingRun,
};

/// Prunes once `epochs` epochs have been reported (a trial stopped at a rung).
struct StopAfter(u64);

impl lepton_core::TrialContext for StopAfter {
    fn report(&mut self, _step: u64, _value: f64) -> lepton_core::Result<()> {
        self.0 = self.0.saturating_sub(1);
        Ok(())
    }
    fn should_prune(&self) -> bool {
        self.0 == 0
    }
}

/// One test (see above): the CNN, then the MLP.
#[test]
fn a_run_resumed_from_its_checkpoint_ends_exactly_as_an_uninterrupted_one() {
    cnn_resumes();
    mlp_resumes();
    mlp_climbs_budgets();
}

/// Successive halving's promotions: budgets of 1, then 3, then 6 epochs of one 6-epoch run
/// (cosine schedule over all 6), each continuing the last one's checkpoint, end exactly as the
/// uninterrupted run.
fn mlp_climbs_budgets() {
    let iris = lepton_data::datasets::iris().unwrap();
    let (train, valid) = lepton_data::stratified_split(&iris, 0.3, 0).unwrap();
    let config = MlpConfig {
        dropout: 0.0,
        learning_rate: 1e-2,
        optimizer: Optimizer {
            schedule: Schedule::Cosine,
            ..Optimizer::default()
        },
        ..MlpConfig::default()
    }
    .with_max_epochs(6)
    .with_patience(6);
    let straight = MlpClassifier::<Cpu>::new(config.clone())
        .unwrap()
        .train(&train, &valid, &mut DetachedContext::new())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut reported = Vec::new();
    let mut last = None;
    for budget in [1, 3, 6] {
        let mut ctx = DetachedContext::new();
        let fitted = MlpClassifier::<Cpu>::new(config.clone())
            .unwrap()
            .with_checkpoints(dir.path())
            .with_epoch_budget(budget)
            .train(&train, &valid, &mut ctx)
            .unwrap();
        assert_eq!(fitted.summary().epochs_run, budget);
        reported.extend(ctx.reports().iter().map(|r| r.0));
        last = Some(fitted);
    }
    // Each budget trained only its own epochs.
    assert_eq!(reported, [1, 2, 3, 4, 5, 6]);
    let climbed = last.unwrap();
    let untimed = |s: &lepton_models::TrainingSummary| lepton_models::TrainingSummary {
        train_seconds: 0.0,
        valid_seconds: 0.0,
        ..s.clone()
    };
    assert_eq!(untimed(climbed.summary()), untimed(straight.summary()));
    let x = Features::new(valid.feature_values(), valid.n_features()).unwrap();
    assert_eq!(climbed.predict(x).unwrap(), straight.predict(x).unwrap());
}

fn mlp_resumes() {
    let iris = lepton_data::datasets::iris().unwrap();
    let (train, valid) = lepton_data::stratified_split(&iris, 0.3, 0).unwrap();
    let config = MlpConfig {
        dropout: 0.0,
        learning_rate: 1e-2,
        ..MlpConfig::default()
    }
    .with_max_epochs(6)
    .with_patience(6);
    let straight = MlpClassifier::<Cpu>::new(config.clone())
        .unwrap()
        .train(&train, &valid, &mut DetachedContext::new())
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let model = MlpClassifier::<Cpu>::new(config)
        .unwrap()
        .with_checkpoints(dir.path());
    assert!(model.train(&train, &valid, &mut StopAfter(3)).is_err());
    let resumed = model
        .train(&train, &valid, &mut DetachedContext::new())
        .unwrap();
    // Everything but the wall times (which differ from run to run) is the same.
    let untimed = |s: &lepton_models::TrainingSummary| lepton_models::TrainingSummary {
        train_seconds: 0.0,
        valid_seconds: 0.0,
        ..s.clone()
    };
    assert_eq!(untimed(resumed.summary()), untimed(straight.summary()));
    assert!(resumed.summary().train_seconds > 0.0);
    let x = Features::new(valid.feature_values(), valid.n_features()).unwrap();
    assert_eq!(resumed.predict(x).unwrap(), straight.predict(x).unwrap());
}

fn cnn_resumes() {
    let (train, valid) = (bars(256, 1), bars(128, 2));
    let config = CnnConfig {
        dropout: 0.0,
        optimizer: Optimizer {
            schedule: Schedule::Cosine,
            ..Optimizer::default()
        },
        ..small()
    }
    .with_max_epochs(4)
    .with_patience(4);
    let straight = CnnClassifier::<Cpu>::new(config.clone())
        .unwrap()
        .train(&train, &valid, &mut DetachedContext::new())
        .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let model = CnnClassifier::<Cpu>::new(config.clone())
        .unwrap()
        .with_checkpoints(dir.path());
    // Stopped after 2 epochs, as a pruner would; the checkpoint of epoch 2 stays.
    let stopped = model.train(&train, &valid, &mut StopAfter(2));
    assert!(matches!(
        stopped,
        Err(ModelError::Core(lepton_core::Error::Pruned { step: 2 }))
    ));
    assert_eq!(
        std::fs::read_to_string(dir.path().join("latest")).unwrap(),
        "epoch-2"
    );
    let resumed = model
        .train(&train, &valid, &mut DetachedContext::new())
        .unwrap();
    // Everything but the wall times (which differ from run to run) is the same.
    let untimed = |s: &lepton_models::TrainingSummary| lepton_models::TrainingSummary {
        train_seconds: 0.0,
        valid_seconds: 0.0,
        ..s.clone()
    };
    assert_eq!(untimed(resumed.summary()), untimed(straight.summary()));
    assert!(resumed.summary().train_seconds > 0.0);
    let test = bars(64, 4);
    let x = Features::new(test.pixels(), 64).unwrap();
    assert_eq!(resumed.predict(x).unwrap(), straight.predict(x).unwrap());

    // A checkpoint of another configuration is refused, not silently mixed in.
    let other = CnnClassifier::<Cpu>::new(CnnConfig {
        hidden: 12,
        ..config
    })
    .unwrap()
    .with_checkpoints(dir.path());
    assert!(matches!(
        other.train(&train, &valid, &mut DetachedContext::new()),
        Err(ModelError::Checkpoint(_))
    ));
}
