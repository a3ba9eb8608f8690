//! Rebuilding [`FrozenTrial`]s from the rows of a relational storage (SQLite, PostgreSQL):
//! one trials table, then parameters, intermediate values and attributes keyed by number.

use lepton_core::{Distribution, FrozenTrial, ParamValue, TrialState};

use super::names::Names;

/// Trials being assembled; every error is a description of a corrupt row.
#[derive(Debug)]
pub(crate) struct TrialRows {
    /// The number of the first trial (a storage that caches finished trials reads only the
    /// ones after them).
    first: i64,
    trials: Vec<FrozenTrial>,
    /// Parameter names read so far: every trial's keys share one allocation per name.
    names: Names,
}

impl TrialRows {
    /// Trials numbered from `first` on, their parameter names interned in `names`.
    pub fn from_number(first: u64, names: Names) -> Self {
        TrialRows {
            first: first as i64,
            trials: Vec::new(),
            names,
        }
    }

    /// A trial row, in number order (numbers are contiguous from the first).
    pub fn trial(&mut self, number: i64, state: &str, value: Option<f64>) -> Result<(), String> {
        if number != self.first + self.trials.len() as i64 {
            return Err(format!("trial {number} out of order"));
        }
        let mut t = FrozenTrial::new(number as u64);
        t.state = TrialState::parse(state).ok_or_else(|| format!("state `{state}`"))?;
        t.value = value;
        self.trials.push(t);
        Ok(())
    }

    /// A parameter row: its distribution and value as JSON.
    pub fn param(
        &mut self,
        number: i64,
        name: String,
        distribution: &str,
        value: &str,
    ) -> Result<(), String> {
        let distribution: Distribution =
            serde_json::from_str(distribution).map_err(|e| e.to_string())?;
        let value: ParamValue = serde_json::from_str(value).map_err(|e| e.to_string())?;
        let name = self.names.intern(&name);
        let t = self.get(number)?;
        t.distributions.insert(name.clone(), distribution);
        t.params.insert(name, value);
        Ok(())
    }

    /// An intermediate value row.
    pub fn report(&mut self, number: i64, step: i64, value: f64) -> Result<(), String> {
        let step = u64::try_from(step).map_err(|_| format!("step {step}"))?;
        self.get(number)?.intermediate_values.insert(step, value);
        Ok(())
    }

    /// A user attribute row, its value as JSON.
    pub fn attr(&mut self, number: i64, key: String, value: &str) -> Result<(), String> {
        let value: ParamValue = serde_json::from_str(value).map_err(|e| e.to_string())?;
        self.get(number)?.user_attrs.insert(key, value);
        Ok(())
    }

    /// The assembled trials, in number order, and the names they use.
    pub fn into_parts(self) -> (Vec<FrozenTrial>, Names) {
        (self.trials, self.names)
    }

    fn get(&mut self, number: i64) -> Result<&mut FrozenTrial, String> {
        usize::try_from(number - self.first)
            .ok()
            .and_then(|i| self.trials.get_mut(i))
            .ok_or_else(|| format!("row of missing trial {number}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn assembles_trials_and_names_corrupt_rows() {
        let mut rows = TrialRows::from_number(0, Names::default());
        rows.trial(0, "complete", Some(1.0)).unwrap();
        rows.param(
            0,
            "x".into(),
            r#"{"type":"int","low":0,"high":3,"scale":"linear","step":1}"#,
            "2",
        )
        .unwrap();
        rows.report(0, 4, 0.5).unwrap();
        rows.attr(0, "k".into(), "\"v\"").unwrap();
        assert!(
            rows.trial(2, "running", None)
                .unwrap_err()
                .contains("out of order")
        );
        assert!(rows.trial(1, "done", None).unwrap_err().contains("state"));
        assert!(
            rows.report(7, 1, 0.1)
                .unwrap_err()
                .contains("missing trial 7")
        );
        assert!(rows.param(0, "y".into(), "{", "1").is_err());
        assert!(rows.report(0, -1, 0.1).is_err());
        let (t, _) = rows.into_parts();
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].params["x"], ParamValue::Int(2));
        assert_eq!(t[0].intermediate_values[&4], 0.5);
        assert_eq!(t[0].user_attrs["k"], ParamValue::from("v"));
    }

    #[test]
    fn a_window_starts_at_its_first_number() {
        let mut rows = TrialRows::from_number(5, Names::default());
        assert!(rows.trial(0, "running", None).is_err());
        rows.trial(5, "running", None).unwrap();
        rows.trial(6, "complete", Some(2.0)).unwrap();
        rows.report(6, 1, 0.5).unwrap();
        assert!(rows.report(4, 1, 0.5).is_err());
        let (t, _) = rows.into_parts();
        assert_eq!(t.iter().map(|t| t.number).collect::<Vec<_>>(), [5, 6]);
        assert_eq!(t[1].intermediate_values[&1], 0.5);
    }
}
