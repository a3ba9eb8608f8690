//! The leaderboard: the best complete trials with their parameters, as an HTML table.

use std::collections::BTreeSet;
use std::fmt::Write;

use lepton_core::History;

use crate::axis::{number, value_label};
use crate::escape::escape;

/// One row of the leaderboard.
#[derive(Debug, Clone, PartialEq)]
pub struct LeaderRow {
    /// 1 for the best.
    pub rank: usize,
    /// The trial.
    pub number: u64,
    /// Its objective value.
    pub value: f64,
    /// Its parameters as printed, one per column (empty where it has none).
    pub params: Vec<String>,
}

/// The best trials, best first.
#[derive(Debug, Clone, PartialEq)]
pub struct Leaderboard {
    /// The parameter columns: every parameter of the rows, by name.
    pub columns: Vec<String>,
    /// At most the asked-for number of rows.
    pub rows: Vec<LeaderRow>,
}

impl Leaderboard {
    /// The `top` best complete trials of `history` (ties: the earlier trial first).
    pub fn new(history: &History, top: usize) -> Self {
        let ranked: Vec<_> = history
            .ranked()
            .into_iter()
            .filter(|t| t.value.is_some_and(f64::is_finite))
            .take(top)
            .collect();
        let columns: Vec<String> = ranked
            .iter()
            .flat_map(|t| t.params.keys().map(ToString::to_string))
            .collect::<BTreeSet<_>>()
            .into_iter()
            .collect();
        let rows = ranked
            .iter()
            .enumerate()
            .map(|(i, t)| LeaderRow {
                rank: i + 1,
                number: t.number,
                value: t.value.unwrap_or(f64::NAN),
                params: columns
                    .iter()
                    .map(|c| t.params.get(c.as_str()).map_or(String::new(), value_label))
                    .collect(),
            })
            .collect();
        Leaderboard { columns, rows }
    }

    /// The table, as HTML.
    pub fn html(&self) -> String {
        let mut out = String::from("<table class=\"leaderboard\"><thead><tr>");
        out.push_str("<th>rank</th><th>trial</th><th>value</th>");
        for c in &self.columns {
            let _ = write!(out, "<th>{}</th>", escape(c));
        }
        out.push_str("</tr></thead><tbody>");
        for r in &self.rows {
            let _ = write!(
                out,
                "<tr><td>{}</td><td>{}</td><td>{}</td>",
                r.rank,
                r.number,
                number(r.value)
            );
            for p in &r.params {
                let _ = write!(out, "<td>{}</td>", escape(p));
            }
            out.push_str("</tr>");
        }
        out.push_str("</tbody></table>");
        out
    }
}
