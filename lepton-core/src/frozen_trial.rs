//! A trial's record as the storage holds it: its parameters, values and attributes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::name::ParamName;
use crate::param::{Distribution, ParamValue};
use crate::trial_state::TrialState;

/// A trial's record as the storage holds it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FrozenTrial {
    /// Number, unique and contiguous within a study, from 0.
    pub number: u64,
    /// Life-cycle state.
    pub state: TrialState,
    /// Suggested parameter values by name.
    pub params: BTreeMap<ParamName, ParamValue>,
    /// The distribution each parameter was drawn from.
    pub distributions: BTreeMap<ParamName, Distribution>,
    /// Final objective value, for complete trials.
    pub value: Option<f64>,
    /// Intermediate values reported during training, by step.
    pub intermediate_values: BTreeMap<u64, f64>,
    /// Free-form facts the objective recorded (best epoch, validation loss, ...).
    #[serde(default)]
    pub user_attrs: BTreeMap<String, ParamValue>,
}

impl FrozenTrial {
    /// A new running trial with no parameters.
    pub fn new(number: u64) -> Self {
        FrozenTrial {
            number,
            state: TrialState::Running,
            params: BTreeMap::new(),
            distributions: BTreeMap::new(),
            value: None,
            intermediate_values: BTreeMap::new(),
            user_attrs: BTreeMap::new(),
        }
    }

    /// Every value reported at `step`: the intermediate value first, then the further
    /// objectives of a [`report_objectives`](crate::TrialContext::report_objectives) (kept as
    /// the user attributes `lepton.report.STEP.I`, `I` from 1, so that every storage holds
    /// and exports them). `None` without a report at `step`.
    pub fn objectives_at(&self, step: u64) -> Option<Vec<f64>> {
        let mut values = vec![*self.intermediate_values.get(&step)?];
        for i in 1.. {
            match self
                .user_attrs
                .get(&objective_attr(step, i))
                .and_then(ParamValue::as_f64)
            {
                Some(v) => values.push(v),
                None => break,
            }
        }
        Some(values)
    }

    /// The last reported intermediate value and its step.
    pub fn last_step(&self) -> Option<(u64, f64)> {
        self.intermediate_values
            .last_key_value()
            .map(|(s, v)| (*s, *v))
    }
}

/// The user attribute holding objective `i` (from 1) of the report at `step`.
pub(crate) fn objective_attr(step: u64, i: usize) -> String {
    format!("lepton.report.{step}.{i}")
}
