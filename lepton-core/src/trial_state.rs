//! The life-cycle of a trial.

use serde::{Deserialize, Serialize};

/// The life-cycle of a trial.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TrialState {
    /// Asked and not yet told.
    Running,
    /// Finished with a value.
    Complete,
    /// Stopped early by a pruner.
    Pruned,
    /// The objective returned an error, a non-finite value, or panicked.
    Failed,
    /// Enqueued with fixed parameters, waiting for a worker.
    Waiting,
}

impl TrialState {
    /// The stored name (`running`, `complete`, ...), as serde writes it.
    pub fn as_str(self) -> &'static str {
        match self {
            TrialState::Running => "running",
            TrialState::Complete => "complete",
            TrialState::Pruned => "pruned",
            TrialState::Failed => "failed",
            TrialState::Waiting => "waiting",
        }
    }

    /// The state a stored name means, if any.
    pub fn parse(name: &str) -> Option<Self> {
        use TrialState::*;
        [Running, Complete, Pruned, Failed, Waiting]
            .into_iter()
            .find(|s| s.as_str() == name)
    }

    /// Whether the trial can no longer change.
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            TrialState::Complete | TrialState::Pruned | TrialState::Failed
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_names_are_serde_names_and_parse_back() {
        use TrialState::*;
        for state in [Running, Complete, Pruned, Failed, Waiting] {
            let json = serde_json::to_string(&state).unwrap();
            assert_eq!(json, format!("\"{}\"", state.as_str()));
            assert_eq!(TrialState::parse(state.as_str()), Some(state));
        }
        assert_eq!(TrialState::parse("done"), None);
    }
}
