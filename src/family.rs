//! Model families as values. [`AutoMl`](crate::AutoMl) chooses among any types that implement
//! [`ModelFamily`]: the built-in ones ([`Family`](crate::Family) names them) and a user's own,
//! registered with [`AutoMl::with_family`](crate::AutoMl::with_family). A family gives its
//! search space and its default configuration, trains a [`Fitted`] model from a trial's
//! parameters, and rebuilds one from what that model wrote into an artifact.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt::Debug;
use std::path::Path;
use std::time::Duration;

use lepton_core::{
    Dataset, Features, ParamValue, Predict, Result as CoreResult, Schema, Trial, TrialContext,
};
use lepton_data::Preprocessor;
use lepton_models::{Head, Schedule, TrainingSummary};

use crate::error::Result;

/// One training run of a family, as the search or the refit asks for it.
pub struct TrainRequest<'a> {
    /// The family's own parameters (without the `name.` prefix they have in the search space).
    pub params: BTreeMap<String, ParamValue>,
    /// The training rows, already preprocessed for the family.
    pub train: &'a (dyn Dataset + Sync),
    /// Validation rows to keep the best epoch by (empty for a refit on every row).
    pub valid: &'a (dyn Dataset + Sync),
    /// The most epochs (families without epochs ignore it).
    pub max_epochs: usize,
    /// Epochs without a better validation score before training stops.
    pub patience: usize,
    /// Seed of the initialization, the shuffling and any sampling.
    pub seed: u64,
    /// The learning-rate schedule (networks).
    pub schedule: Schedule,
    /// No epoch starts after this much training time.
    pub time_limit: Option<Duration>,
    /// Devices of the backend sharing each batch (networks).
    pub devices: usize,
    /// Under Hyperband: train up to this many epochs in all, resuming from the checkpoints
    /// kept in this directory.
    pub resume: Option<(usize, &'a Path)>,
    /// The features that hold category codes (0, 1, ...; NaN where missing or unseen), as
    /// [`lepton_data::CategoricalEncoding::Native`] makes them; empty for other data.
    pub categorical: Vec<usize>,
}

/// A kind of model AutoML can choose. Implement it to let [`AutoMl`](crate::AutoMl) search
/// your own model beside the built-in ones.
///
/// ```
/// use std::any::Any;
/// use std::collections::BTreeMap;
/// use lepton::prelude::*;
/// use lepton::{Fitted, ModelFamily, TrainRequest};
/// use lepton::core::{Features, Schema, Task, Target};
/// use lepton::models::{Head, TrainingSummary};
///
/// /// Predicts the most frequent class of the training rows, whatever the input.
/// #[derive(Debug)]
/// struct Majority;
///
/// #[derive(Debug)]
/// struct FittedMajority { class: usize, classes: usize, width: usize, summary: TrainingSummary }
///
/// impl Predict for FittedMajority {
///     fn predict(&self, x: Features<'_>) -> lepton::core::Result<Vec<Prediction>> {
///         let mut p = vec![0.0; self.classes];
///         p[self.class] = 1.0;
///         Ok(vec![Prediction::Class { index: self.class, probabilities: p }; x.n_rows()])
///     }
/// }
///
/// impl Fitted for FittedMajority {
///     fn family(&self) -> &str { "majority" }
///     fn summary(&self) -> &TrainingSummary { &self.summary }
///     fn shape(&self) -> (usize, Head) { (self.width, Head::Classes { count: self.classes }) }
///     fn config(&self) -> lepton::Result<serde_json::Value> {
///         Ok(serde_json::json!([self.class, self.classes, self.width]))
///     }
///     fn weights(&self) -> lepton::Result<Vec<u8>> { Ok(Vec::new()) }
///     fn as_any(&self) -> &dyn Any { self }
/// }
///
/// impl ModelFamily for Majority {
///     fn name(&self) -> &str { "majority" }
///     fn supports(&self, schema: &Schema) -> lepton::Result<bool> {
///         Ok(matches!(schema.task, Task::Classification { .. }))
///     }
///     fn suggest(&self, _trial: &mut Trial) -> lepton::core::Result<()> { Ok(()) }
///     fn defaults(&self) -> BTreeMap<String, ParamValue> { BTreeMap::new() }
///     fn train(&self, r: &TrainRequest<'_>, _ctx: &mut dyn TrialContext)
///         -> lepton::core::Result<Box<dyn Fitted>> {
///         let classes = r.train.schema().n_classes().unwrap_or(1);
///         let mut counts = vec![0usize; classes];
///         for i in 0..r.train.len() {
///             if let Some(Target::Class(c)) = r.train.target(i) { counts[c] += 1; }
///         }
///         let class = (0..classes).max_by_key(|&c| counts[c]).unwrap_or(0);
///         let summary = TrainingSummary { epochs_run: 1, best_epoch: 1, best_valid_score: None,
///             best_valid_loss: None, best_valid_confusion: None, final_train_loss: 0.0,
///             train_seconds: 0.0, valid_seconds: 0.0 };
///         let width = r.train.schema().features.len();
///         Ok(Box::new(FittedMajority { class, classes, width, summary }))
///     }
///     fn load(&self, config: &serde_json::Value, _weights: &[u8]) -> lepton::Result<Box<dyn Fitted>> {
///         let [class, classes, width]: [usize; 3] = serde_json::from_value(config.clone())
///             .map_err(|e| LeptonError::IncompatibleArtifact(e.to_string()))?;
///         let summary = TrainingSummary { epochs_run: 1, best_epoch: 1, best_valid_score: None,
///             best_valid_loss: None, best_valid_confusion: None, final_train_loss: 0.0,
///             train_seconds: 0.0, valid_seconds: 0.0 };
///         Ok(Box::new(FittedMajority { class, classes, width, summary }))
///     }
/// }
///
/// let table = datasets::table("iris")?;
/// let run = AutoMl::new()
///     .with_families(&[Family::Linear])
///     .with_family(Majority)
///     .with_budget(std::time::Duration::from_secs(20))
///     .with_max_trials(4)
///     .fit_table::<Cpu>(&table, "target", TargetKind::Classification)?;
/// assert!(run.leaderboard.iter().any(|t| t.params["family"] == "majority".into()));
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub trait ModelFamily: Send + Sync {
    /// The family's name: the value of the search space's `family` parameter, the prefix of
    /// its own parameters (`name.`), and the artifact's `model_family`.
    fn name(&self) -> &str;

    /// Whether the family can learn data of this schema (a regression-only family says no to
    /// a classification and is left out of that search); an error when it never could.
    fn supports(&self, schema: &Schema) -> Result<bool>;

    /// Suggests the family's parameters on `trial` (already scoped under `name.`).
    fn suggest(&self, trial: &mut Trial) -> CoreResult<()>;

    /// A known-good configuration, tried before the sampler's proposals (empty when the
    /// family has no parameters).
    fn defaults(&self) -> BTreeMap<String, ParamValue>;

    /// The preprocessing the family wants of a raw table, given the run's (trees need no
    /// scaling; the default keeps the run's as it is).
    fn preprocessing(&self, run: &Preprocessor) -> Preprocessor {
        run.clone()
    }

    /// Trains a model on `request`, reporting validation scores to `ctx` and stopping when it
    /// asks to.
    fn train(
        &self,
        request: &TrainRequest<'_>,
        ctx: &mut dyn TrialContext,
    ) -> CoreResult<Box<dyn Fitted>>;

    /// Rebuilds a model from the `config` and `weights` its [`Fitted`] wrote.
    fn load(&self, config: &serde_json::Value, weights: &[u8]) -> Result<Box<dyn Fitted>>;

    /// Whether `family`, an artifact's `model_family`, is this family's (by default, its name).
    fn loads(&self, family: &str) -> bool {
        family == self.name()
    }
}

/// What a search needs of any family, of tables or of texts: its name (the `family` choice and
/// the prefix of its parameters), its known-good configuration and its space.
pub(crate) trait Searched {
    fn name(&self) -> &str;
    fn defaults(&self) -> BTreeMap<String, ParamValue>;
    fn suggest(&self, trial: &mut Trial) -> CoreResult<()>;
}

impl Searched for dyn ModelFamily {
    fn name(&self) -> &str {
        ModelFamily::name(self)
    }

    fn defaults(&self) -> BTreeMap<String, ParamValue> {
        ModelFamily::defaults(self)
    }

    fn suggest(&self, trial: &mut Trial) -> CoreResult<()> {
        ModelFamily::suggest(self, trial)
    }
}

/// `values` as rows of `width` features for `model`: NaN (a missing value) is refused unless
/// the model [accepts](Fitted::accepts_missing) it; infinities always are.
pub(crate) fn features_for<'a>(
    model: &dyn Fitted,
    values: &'a [f32],
    width: usize,
) -> CoreResult<Features<'a>> {
    Features::checked(values, width, model.accepts_missing())
}

/// A trained model of some [`ModelFamily`].
pub trait Fitted: Predict + Debug + Send + Sync {
    /// The artifact's `model_family` (the name of the family that loads it).
    fn family(&self) -> &str;
    /// What happened while it trained (its best epoch sets a refit's epochs).
    fn summary(&self) -> &TrainingSummary;
    /// The input width and the output head.
    fn shape(&self) -> (usize, Head);
    /// The configuration its family's [`ModelFamily::load`] reads back.
    fn config(&self) -> Result<serde_json::Value>;
    /// The weights (any bytes) its family's [`ModelFamily::load`] reads back.
    fn weights(&self) -> Result<Vec<u8>>;
    /// The model itself, to reach the concrete type (serving fine-tunes MLPs online).
    fn as_any(&self) -> &dyn Any;
    /// Whether it answers rows with missing values (NaN), as the preprocessing of a family
    /// that handles them leaves them ([`lepton_data::Imputation::Keep`]); others are refused
    /// such rows before they reach the model.
    fn accepts_missing(&self) -> bool {
        false
    }
}
