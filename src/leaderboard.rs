//! A run's leaderboard as text, for terminals.

use std::fmt::Write;

use lepton_core::{FrozenTrial, ParamValue};

use crate::metric::Metric;

/// The `top` trials of `leaderboard` (best first), one line each: number, family, score in
/// `metric`, best epoch and the family's own parameters.
pub fn leaderboard_text(leaderboard: &[FrozenTrial], metric: Metric, top: usize) -> String {
    let mut out = format!(
        "{:>5}  {:<8}  {:>10}  {:>6}  parameters\n",
        "trial",
        "family",
        metric.name(),
        "epochs"
    );
    for t in leaderboard.iter().take(top) {
        let family = t
            .params
            .get("family")
            .and_then(ParamValue::as_str)
            .unwrap_or("-");
        let prefix = format!("{family}.");
        let params: Vec<String> = t
            .params
            .iter()
            .filter_map(|(k, v)| Some(format!("{}={v}", k.strip_prefix(&prefix)?)))
            .collect();
        let epochs = t
            .user_attrs
            .get("best_epoch")
            .map_or("-".into(), ToString::to_string);
        let _ = writeln!(
            out,
            "{:>5}  {family:<8}  {:>10.4}  {epochs:>6}  {}",
            t.number,
            t.value.unwrap_or(f64::NAN),
            params.join(" ")
        );
    }
    out
}
