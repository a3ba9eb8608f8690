//! Lepton's study reports: what a study tried and found, as one self-contained HTML page of
//! SVG plots drawn with `plotters` (optuna-dashboard's plots, with no server and no network
//! needed to open them).
//!
//! Each plot is two steps, so that what is drawn can be checked: a type that holds the
//! plotted data, made from a [`History`](lepton_core::History) ([`HistoryPlot`],
//! [`CurvesPlot`], [`ParallelPlot`], [`ImportancePlot`], [`SlicePlot`], [`Leaderboard`],
//! [`Confusion`]), and its `svg()`. [`StudyReport`] puts them on one page; `lepton study
//! report` writes it from a storage, and `lepton-serve --studies URL` serves it live.

mod axis;
mod confusion;
mod curves;
mod draw;
mod error;
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
pub use feature_importance_plot::{FeatureImportancePlot, MOST_BARS};
pub use history_plot::HistoryPlot;
pub use importance_plot::ImportancePlot;
pub use leaderboard::{LeaderRow, Leaderboard};
pub use page::{StudyReport, escape};
pub use parallel::{ParallelLine, ParallelPlot};
pub use slices::SlicePlot;
