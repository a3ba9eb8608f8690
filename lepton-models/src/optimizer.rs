//! How the training loop updates the weights: the optimizer (Adam, AdamW, SGD with momentum),
//! weight decay, gradient clipping and the learning-rate schedule, each built from burn's own
//! optimizers and schedulers. Part of every model's configuration, so it is searched and saved
//! like any other hyper-parameter.

use serde::{Deserialize, Serialize};

use burn::optim::decay::WeightDecayConfig;
use burn::optim::grad_clipping::GradientClippingConfig;
use burn::optim::lr_scheduler::LrSchedulerConfig;
use burn::optim::lr_scheduler::cosine::CosineAnnealingLrSchedulerConfig;
use burn::optim::lr_scheduler::linear::LinearLrSchedulerConfig;
use burn::optim::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::optim::lr_scheduler::sequential::SequentialLrSchedulerConfig;
use burn::optim::lr_scheduler::step::StepLrSchedulerConfig;
use burn::optim::momentum::MomentumConfig;
use burn::optim::{AdamConfig, AdamWConfig, ModuleOptimizer, SgdConfig};

use lepton_core::ParamValue;

use crate::error::Result;
use crate::param::{self, invalid};

/// The optimizer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Adam (weight decay, if any, added to the gradient as L2).
    #[default]
    Adam,
    /// AdamW (weight decay decoupled from the gradient).
    AdamW,
    /// Stochastic gradient descent, with momentum unless it is 0.
    Sgd,
}

/// How the learning rate moves over training, step by step.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Schedule {
    /// The configured rate throughout.
    #[default]
    Constant,
    /// Cosine annealing from the configured rate to 0 over `max_epochs`.
    Cosine,
    /// The rate multiplied by `gamma` (in `(0, 1]`) every `every_epochs` epochs.
    Step {
        /// Epochs between two decays (at least 1).
        every_epochs: usize,
        /// The factor of each decay.
        gamma: f64,
    },
    /// One-cycle: a linear warm-up from a tenth of the rate over the first `warmup` fraction
    /// (in `(0, 1)`) of the steps, then cosine annealing to 0.
    WarmupCosine {
        /// The fraction of the steps spent warming up.
        warmup: f64,
    },
}

/// The optimizer and its settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Optimizer {
    /// Which optimizer.
    /// (Saved before it was renamed as `optimizer`.)
    #[serde(alias = "optimizer")]
    pub kind: OptimizerKind,
    /// SGD's momentum, in `[0, 1)`; Adam and AdamW ignore it.
    pub momentum: f64,
    /// Weight decay, at least 0.
    pub weight_decay: f64,
    /// The largest L2 norm of each parameter's gradient (positive); `None`: no clipping.
    pub clip_norm: Option<f64>,
    /// The learning-rate schedule.
    pub schedule: Schedule,
}

impl Default for Optimizer {
    /// Adam at a constant rate, no weight decay, no clipping.
    fn default() -> Self {
        Optimizer {
            kind: OptimizerKind::Adam,
            momentum: 0.9,
            weight_decay: 0.0,
            clip_norm: None,
            schedule: Schedule::Constant,
        }
    }
}

impl Optimizer {
    /// Refuses settings that would make training fail or panic.
    pub fn check(&self) -> Result<()> {
        if !(self.momentum.is_finite() && (0.0..1.0).contains(&self.momentum)) {
            return Err(invalid(
                "momentum",
                format!("{} is outside [0, 1)", self.momentum),
            ));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(invalid(
                "weight_decay",
                format!("{} is not a finite value >= 0", self.weight_decay),
            ));
        }
        if let Some(c) = self.clip_norm
            && !(c.is_finite() && c > 0.0)
        {
            return Err(invalid("clip_norm", format!("{c} is not positive")));
        }
        match self.schedule {
            Schedule::Step {
                every_epochs,
                gamma,
            } if every_epochs == 0 || !(gamma > 0.0 && gamma <= 1.0) => Err(invalid(
                "schedule",
                format!("step every {every_epochs} epochs by {gamma}: needs >= 1 and (0, 1]"),
            )),
            Schedule::WarmupCosine { warmup } if !(warmup > 0.0 && warmup < 1.0) => Err(invalid(
                "schedule",
                format!("warm-up fraction {warmup} is outside (0, 1)"),
            )),
            _ => Ok(()),
        }
    }

    /// Takes the search-space parameter `name` if it is one of these settings (`optimizer`:
    /// "adam", "adamw" or "sgd"; `momentum`; `weight_decay`; `clip_norm`, 0 for none;
    /// `schedule`: "constant", "cosine" or "warmup_cosine" with a tenth of the steps warming
    /// up); `false` if the name is not one of them.
    pub(crate) fn set_param(&mut self, name: &str, value: &ParamValue) -> Result<bool> {
        let wrong = || invalid(name, format!("`{value}` is not a valid {name}"));
        match name {
            "optimizer" => {
                self.kind = match value {
                    ParamValue::Str(s) if s == "adam" => OptimizerKind::Adam,
                    ParamValue::Str(s) if s == "adamw" => OptimizerKind::AdamW,
                    ParamValue::Str(s) if s == "sgd" => OptimizerKind::Sgd,
                    _ => return Err(wrong()),
                }
            }
            "schedule" => {
                self.schedule = match value {
                    ParamValue::Str(s) if s == "constant" => Schedule::Constant,
                    ParamValue::Str(s) if s == "cosine" => Schedule::Cosine,
                    ParamValue::Str(s) if s == "warmup_cosine" => {
                        Schedule::WarmupCosine { warmup: 0.1 }
                    }
                    _ => return Err(wrong()),
                }
            }
            "momentum" => self.momentum = param::f64_value(name, value)?,
            "weight_decay" => self.weight_decay = param::f64_value(name, value)?,
            "clip_norm" => {
                let c = param::f64_value(name, value)?;
                self.clip_norm = (c != 0.0).then_some(c);
            }
            _ => return Ok(false),
        }
        Ok(true)
    }

    /// The optimizer, ready for its first step.
    pub(crate) fn build(&self) -> ModuleOptimizer {
        let clip = self
            .clip_norm
            .map(|c| GradientClippingConfig::Norm(c as f32));
        let decay =
            (self.weight_decay > 0.0).then(|| WeightDecayConfig::new(self.weight_decay as f32));
        match self.kind {
            OptimizerKind::Adam => AdamConfig::new()
                .with_weight_decay(decay)
                .with_grad_clipping(clip)
                .init(),
            OptimizerKind::AdamW => AdamWConfig::new()
                .with_weight_decay(self.weight_decay as f32)
                .with_grad_clipping(clip)
                .init(),
            OptimizerKind::Sgd => SgdConfig::new()
                .with_weight_decay(decay)
                .with_momentum((self.momentum > 0.0).then(|| {
                    MomentumConfig::new()
                        .with_momentum(self.momentum)
                        .with_dampening(0.0)
                }))
                .with_gradient_clipping(clip)
                .init(),
        }
    }

    /// The schedule of `learning_rate` over `epochs` epochs of `steps_per_epoch` steps.
    pub(crate) fn scheduler(
        &self,
        learning_rate: f64,
        steps_per_epoch: usize,
        epochs: usize,
    ) -> Result<ModuleLrScheduler> {
        let steps = (steps_per_epoch * epochs).max(1);
        let scheduler = match self.schedule {
            Schedule::Constant => return Ok(ModuleLrScheduler::new(learning_rate)),
            Schedule::Cosine => CosineAnnealingLrSchedulerConfig::new(learning_rate, steps).init(),
            Schedule::Step {
                every_epochs,
                gamma,
            } => StepLrSchedulerConfig::new(learning_rate, (every_epochs * steps_per_epoch).max(1))
                .with_gamma(gamma)
                .init(),
            Schedule::WarmupCosine { warmup } => {
                let warm = ((steps as f64 * warmup).round() as usize).clamp(1, steps);
                if warm >= steps {
                    CosineAnnealingLrSchedulerConfig::new(learning_rate, steps).init()
                } else {
                    SequentialLrSchedulerConfig::new(
                        vec![
                            LrSchedulerConfig::Linear(LinearLrSchedulerConfig::new(
                                learning_rate / 10.0,
                                learning_rate,
                                warm,
                            )),
                            LrSchedulerConfig::Cosine(CosineAnnealingLrSchedulerConfig::new(
                                learning_rate,
                                steps - warm,
                            )),
                        ],
                        vec![warm],
                    )
                    .init()
                }
            }
        };
        scheduler.map_err(|e| invalid("schedule", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rates(o: Optimizer, steps_per_epoch: usize, epochs: usize) -> Vec<f64> {
        let mut s = o.scheduler(0.1, steps_per_epoch, epochs).unwrap();
        (0..steps_per_epoch * epochs)
            .map(|_| s.step().base())
            .collect()
    }

    #[test]
    fn schedules_move_the_rate_as_documented() {
        let with = |schedule| Optimizer {
            schedule,
            ..Optimizer::default()
        };
        assert!(
            rates(with(Schedule::Constant), 5, 2)
                .iter()
                .all(|&r| r == 0.1)
        );

        let cosine = rates(with(Schedule::Cosine), 10, 2);
        assert!((cosine[0] - 0.1).abs() < 1e-12);
        assert!(cosine.windows(2).all(|w| w[1] <= w[0]));
        assert!(cosine[19] < 0.002, "{}", cosine[19]);
        assert!((cosine[10] - 0.05).abs() < 0.01, "{}", cosine[10]);

        let step = rates(
            with(Schedule::Step {
                every_epochs: 1,
                gamma: 0.5,
            }),
            4,
            3,
        );
        assert_eq!(&step[..4], &[0.1; 4]);
        assert!(step[4..8].iter().all(|&r| (r - 0.05).abs() < 1e-12));
        assert!(step[8..].iter().all(|&r| (r - 0.025).abs() < 1e-12));

        let one_cycle = rates(with(Schedule::WarmupCosine { warmup: 0.2 }), 10, 1);
        assert!((one_cycle[0] - 0.01).abs() < 1e-12, "{}", one_cycle[0]);
        let peak = one_cycle.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        assert!((peak - 0.1).abs() < 1e-9, "{peak}");
        assert!(one_cycle[..2].windows(2).all(|w| w[1] > w[0]));
        assert!(one_cycle[9] < one_cycle[2]);
    }

    #[test]
    fn bad_settings_are_refused_and_search_names_are_taken() {
        for bad in [
            Optimizer {
                momentum: 1.0,
                ..Optimizer::default()
            },
            Optimizer {
                weight_decay: f64::NAN,
                ..Optimizer::default()
            },
            Optimizer {
                clip_norm: Some(0.0),
                ..Optimizer::default()
            },
            Optimizer {
                schedule: Schedule::Step {
                    every_epochs: 0,
                    gamma: 0.5,
                },
                ..Optimizer::default()
            },
            Optimizer {
                schedule: Schedule::WarmupCosine { warmup: 1.0 },
                ..Optimizer::default()
            },
        ] {
            assert!(bad.check().is_err(), "{bad:?}");
        }
        let mut o = Optimizer::default();
        assert!(o.set_param("optimizer", &ParamValue::from("sgd")).unwrap());
        assert!(
            o.set_param("schedule", &ParamValue::from("cosine"))
                .unwrap()
        );
        assert!(o.set_param("clip_norm", &ParamValue::Float(0.0)).unwrap());
        assert_eq!(
            (o.kind, o.schedule, o.clip_norm),
            (OptimizerKind::Sgd, Schedule::Cosine, None)
        );
        assert!(o.set_param("optimizer", &ParamValue::from("lion")).is_err());
        assert!(!o.set_param("depth", &ParamValue::Int(2)).unwrap());
        // Saved configurations from before these settings existed still load.
        let old: Optimizer = serde_json::from_str("{}").unwrap();
        assert_eq!(old, Optimizer::default());
    }
}
