//! Lepton's study reports: what a study tried and found, as one self-contained HTML page of
//! SVG plots drawn with `plotters` (optuna-dashboard's plots, with no server and no network
//! needed to open them).
//!
//! Each plot is two steps, so that what is drawn can be checked: a type that holds the
//! plotted data, made from a [`History`](lepton_core::History) ([`HistoryPlot`],
//! [`CurvesPlot`], [`ParallelPlot`], [`ImportancePlot`], [`SlicePlot`], [`Leaderboard`],
//! [`Confusion`]), and its `svg()`. [`StudyReport`] puts them on one page; `lepton study
//! report` writes it from a storage, and `lepton-serve --studies URL` serves it live.
//!
//! A report of three finished trials, written as one page:
//!
//! ```
//! use lepton_core::{Direction, FrozenTrial, History, TrialState};
//! use lepton_report::StudyReport;
//!
//! let trials = [0.9, 0.5, 0.7].into_iter().enumerate().map(|(i, loss)| FrozenTrial {
//!     state: TrialState::Complete,
//!     value: Some(loss),
//!     ..FrozenTrial::new(i as u64)
//! });
//! let history = History::new(Direction::Minimize, trials.collect());
//! let html = StudyReport::new("demand", &history).with_leaderboard(3).html()?;
//! assert!(html.starts_with("<!DOCTYPE html>") && html.contains("<svg"));
//! // std::fs::write("report.html", html)?; then open it in any browser.
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

mod axis;
mod confusion;
mod curves;
mod draw;
mod error;
mod escape;
mod feature_importance_plot;
mod history_plot;
mod importance_plot;
mod leaderboard;
mod page;
mod parallel;
mod slices;

pub use axis::{AxisScale, ParamAxis, number, value_label};
pub use confusion::{CONFUSION_ATTR, Confusion};
pub use curves::{Curve, CurvesPlot};
pub use error::{ReportError, Result};
pub use escape::escape;
pub use feature_importance_plot::{FeatureImportancePlot, MOST_BARS};
pub use history_plot::HistoryPlot;
pub use importance_plot::ImportancePlot;
pub use leaderboard::{LeaderRow, Leaderboard};
pub use page::StudyReport;
pub use parallel::{ParallelLine, ParallelPlot};
pub use slices::SlicePlot;
