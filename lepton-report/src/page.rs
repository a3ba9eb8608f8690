//! The report page: a summary, then every plot, in one HTML file with nothing to fetch.

use std::fmt::Write;

use lepton_core::{History, TrialState};

use crate::axis::{number, value_label};
use crate::confusion::Confusion;
use crate::curves::CurvesPlot;
use crate::error::Result;
use crate::escape::escape;
use crate::feature_importance_plot::FeatureImportancePlot;
use crate::history_plot::HistoryPlot;
use crate::importance_plot::ImportancePlot;
use crate::leaderboard::Leaderboard;
use crate::parallel::ParallelPlot;
use crate::slices::SlicePlot;

/// A study's report: one self-contained HTML page (inline CSS and SVG, no network needed to
/// open it) with the optimization history, the intermediate values with pruned trials marked,
/// parallel coordinates, parameter importance, slice plots, the leaderboard, the final model's
/// feature importance when given, and, when the best trial stores one, its confusion matrix.
///
/// ```
/// use lepton_core::{Direction, FrozenTrial, History, ParamValue, TrialState};
/// use lepton_report::StudyReport;
///
/// let trials = (0..20)
///     .map(|n| {
///         let mut t = FrozenTrial::new(n);
///         t.state = TrialState::Complete;
///         t.params.insert("x".into(), ParamValue::Float(n as f64));
///         t.value = Some((n as f64 - 7.0).powi(2));
///         t
///     })
///     .collect();
/// let html = StudyReport::new("quadratic", &History::new(Direction::Minimize, trials)).html()?;
/// assert!(html.contains("<svg"));
/// # Ok::<(), lepton_report::ReportError>(())
/// ```
#[derive(Debug, Clone)]
pub struct StudyReport<'a> {
    name: &'a str,
    history: &'a History,
    top: usize,
    live: Option<String>,
    features: Option<(FeatureImportancePlot, usize)>,
}

impl<'a> StudyReport<'a> {
    /// The report of study `name`, whose trials are `history`.
    pub fn new(name: &'a str, history: &'a History) -> Self {
        StudyReport {
            name,
            history,
            top: 20,
            live: None,
            features: None,
        }
    }

    /// Shows the `top` best trials in the leaderboard (20 unless set).
    pub fn with_leaderboard(mut self, top: usize) -> Self {
        self.top = top;
        self
    }

    /// Makes the page reload itself when the study changes: it asks `progress_url` every two
    /// seconds for `{"finished": N}` and reloads when N differs from its own count of finished
    /// trials (the live view of `lepton-serve`).
    pub fn live(mut self, progress_url: &str) -> Self {
        self.live = Some(progress_url.to_owned());
        self
    }

    /// Adds the final model's feature importance: `(column, mean drop, sd)` of `metric` when
    /// each input column is shuffled (permutation importance), the most important
    /// [`MOST_BARS`](crate::MOST_BARS) drawn.
    pub fn with_feature_importance(
        mut self,
        metric: &str,
        importances: &[(String, f64, f64)],
    ) -> Self {
        self.features = Some((
            FeatureImportancePlot::new(metric, importances),
            importances.len(),
        ));
        self
    }

    /// The page.
    pub fn html(&self) -> Result<String> {
        let h = self.history;
        let finished = h.trials().iter().filter(|t| t.state.is_finished()).count();
        let mut out = String::with_capacity(1 << 20);
        let _ = write!(
            out,
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>Study {name}: Lepton report</title><style>{CSS}</style></head>\
             <body data-finished=\"{finished}\"{live}>\n<h1>Study <code>{name}</code></h1>\n",
            name = escape(self.name),
            live = self
                .live
                .as_deref()
                .map_or(String::new(), |u| format!(" data-live=\"{}\"", escape(u))),
        );
        self.summary(&mut out);

        section(&mut out, "history", "Optimizer history");
        let history = HistoryPlot::new(h);
        figure(&mut out, "history", history.is_empty(), || history.svg())?;

        section(&mut out, "intermediate", "Intermediate values");
        let curves = CurvesPlot::new(h);
        figure(&mut out, "intermediate", curves.is_empty(), || curves.svg())?;

        section(&mut out, "parallel", "Parallel coordinates");
        let parallel = ParallelPlot::new(h);
        figure(&mut out, "parallel", parallel.is_empty(), || parallel.svg())?;

        section(&mut out, "importance", "Parameter importance");
        match ImportancePlot::new(h) {
            Ok(plot) => figure(&mut out, "importance", plot.shares.is_empty(), || {
                plot.svg()
            })?,
            Err(why) => note(&mut out, &why),
        }

        section(&mut out, "slices", "Slices");
        let slices = SlicePlot::all(h);
        if slices.is_empty() {
            note(&mut out, "no complete trial with parameters yet");
        }
        out.push_str("<div class=\"grid\">");
        for s in &slices {
            figure(&mut out, "slice", s.points.is_empty(), || s.svg())?;
        }
        out.push_str("</div>\n");

        section(&mut out, "leaderboard", "Leaderboard");
        let board = Leaderboard::new(h, self.top);
        if board.rows.is_empty() {
            note(&mut out, "no complete trial yet");
        } else {
            out.push_str("<div class=\"wide\">");
            out.push_str(&board.html());
            out.push_str("</div>\n");
        }

        if let Some((plot, columns)) = &self.features {
            section(&mut out, "features", "Feature importance");
            figure(&mut out, "feature-importance", plot.bars.is_empty(), || {
                plot.svg()
            })?;
            if *columns > plot.bars.len() {
                note(
                    &mut out,
                    &format!(
                        "the {} most important of {columns} columns",
                        plot.bars.len()
                    ),
                );
            }
        }

        if let Some(best) = h.best()
            && let Some(confusion) = Confusion::of_trial(best)
        {
            section(&mut out, "confusion", "Confusion matrix");
            match confusion {
                Ok(c) => figure(&mut out, "confusion", false, || c.svg())?,
                Err(e) => note(&mut out, &e.to_string()),
            }
        }
        out.push_str(SCRIPT);
        out.push_str("</body></html>\n");
        Ok(out)
    }

    fn summary(&self, out: &mut String) {
        let h = self.history;
        let count = |s: TrialState| h.trials().iter().filter(|t| t.state == s).count();
        let _ = write!(
            out,
            "<p class=\"summary\">{} trials: {} complete, {} pruned, {} failed, {} running, \
             {} waiting. Direction: {}.",
            h.trials().len(),
            count(TrialState::Complete),
            count(TrialState::Pruned),
            count(TrialState::Failed),
            count(TrialState::Running),
            count(TrialState::Waiting),
            h.direction().as_str(),
        );
        if let Some(best) = h.best() {
            let params: Vec<String> = best
                .params
                .iter()
                .map(|(k, v)| format!("{}={}", escape(k), escape(&value_label(v))))
                .collect();
            let _ = write!(
                out,
                " Best: trial {} with {} <code>{}</code>.",
                best.number,
                best.value.map_or("-".into(), number),
                params.join(" ")
            );
        }
        out.push_str("</p>\n");
    }
}

fn section(out: &mut String, id: &str, title: &str) {
    let _ = writeln!(out, "<h2 id=\"{id}\">{title}</h2>");
}

fn note(out: &mut String, text: &str) {
    let _ = writeln!(out, "<p class=\"empty\">{}</p>", escape(text));
}

/// The plot's SVG in a figure tagged with its kind, or a note when it has nothing to show.
fn figure(
    out: &mut String,
    kind: &str,
    empty: bool,
    svg: impl FnOnce() -> Result<String>,
) -> Result<()> {
    if empty {
        note(out, "nothing to plot yet");
        return Ok(());
    }
    let svg = svg()?;
    let _ = write!(out, "<figure class=\"plot\" data-plot=\"{kind}\">");
    // plotters writes an XML declaration first; inline SVG starts at the element.
    out.push_str(svg.find("<svg").map_or(svg.as_str(), |i| &svg[i..]));
    out.push_str("</figure>\n");
    Ok(())
}

const CSS: &str = "body{font-family:sans-serif;margin:24px auto;max-width:1280px;color:#222}\
h2{margin-top:32px;border-bottom:1px solid #ddd}\
figure.plot{margin:8px 0;overflow-x:auto}\
.grid{display:flex;flex-wrap:wrap;gap:8px}.grid figure.plot{margin:0}\
.empty{color:#777;font-style:italic}.wide{overflow-x:auto}\
table.leaderboard{border-collapse:collapse;font-size:13px}\
.leaderboard th,.leaderboard td{border:1px solid #ddd;padding:3px 8px;text-align:right}\
.leaderboard th{background:#f4f4f4}";

/// Records how long the page took, in milliseconds since navigation started, on the body:
/// `data-layout-ms` once it is parsed and laid out (reading `offsetHeight` forces the layout),
/// `data-render-ms` once it has painted (two animation frames later). On a live page, it also
/// reloads the page when the study has changed.
const SCRIPT: &str = "<script>\
(function(){var b=document.body;b.offsetHeight;\
b.setAttribute('data-layout-ms',String(Math.round(performance.now())));})();\
requestAnimationFrame(function(){requestAnimationFrame(function(){\
document.body.setAttribute('data-render-ms',String(Math.round(performance.now())));});});\
(function(){var b=document.body,u=b.getAttribute('data-live');if(!u)return;\
var seen=b.getAttribute('data-finished');\
setInterval(function(){fetch(u,{cache:'no-store'}).then(function(r){return r.json();})\
.then(function(p){if(String(p.finished)!==seen)location.reload();}).catch(function(){});},2000);\
})();</script>\n";
