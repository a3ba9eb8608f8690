//! The intermediate values (learning curves): each trial's reports by step, pruned trials in
//! red with a cross where they were stopped.

use lepton_core::{History, TrialState};
use plotters::prelude::*;

use crate::axis::{number, value_range, whole};
use crate::draw::{self, COMPLETE, Layer, OTHER, PRUNED};
use crate::error::Result;

/// One trial's learning curve.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    /// The trial.
    pub number: u64,
    /// How it ended (or that it runs).
    pub state: TrialState,
    /// `(step, value)` of its finite reports, by step.
    pub points: Vec<(u64, f64)>,
}

/// The points of the intermediate-values plot.
#[derive(Debug, Clone, PartialEq)]
pub struct CurvesPlot {
    /// One curve per trial that reported a finite value, by trial number.
    pub curves: Vec<Curve>,
}

impl CurvesPlot {
    /// The plot of `history`.
    pub fn new(history: &History) -> Self {
        let curves = history
            .trials()
            .iter()
            .filter_map(|t| {
                let points: Vec<(u64, f64)> = t
                    .intermediate_values
                    .iter()
                    .filter(|(_, v)| v.is_finite())
                    .map(|(&s, &v)| (s, v))
                    .collect();
                (!points.is_empty()).then(|| Curve {
                    number: t.number,
                    state: t.state,
                    points,
                })
            })
            .collect();
        CurvesPlot { curves }
    }

    /// Whether there is nothing to plot.
    pub fn is_empty(&self) -> bool {
        self.curves.is_empty()
    }

    /// The pruned trials' curves.
    pub fn pruned(&self) -> impl Iterator<Item = &Curve> {
        self.curves.iter().filter(|c| c.state == TrialState::Pruned)
    }

    /// The plot as an SVG document.
    pub fn svg(&self) -> Result<String> {
        let all = || self.curves.iter().flat_map(|c| c.points.iter());
        let last = all().map(|p| p.0).max().unwrap_or(1).max(1) as f64;
        let first = all().map(|p| p.0).min().unwrap_or(0) as f64;
        let (low, high) = value_range(all().map(|p| p.1));
        let colour = |state: TrialState| match state {
            TrialState::Complete => COMPLETE,
            TrialState::Pruned => PRUNED,
            _ => OTHER,
        };
        draw::svg("intermediate values", (860, 360), |area| {
            let mut chart = ChartBuilder::on(area)
                .caption(
                    "Intermediate values (pruned trials in red, x where stopped)",
                    draw::title(),
                )
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(64)
                .build_cartesian_2d(first..last, low..high)?;
            chart
                .configure_mesh()
                .light_line_style(WHITE)
                .x_desc("step")
                .y_desc("intermediate value")
                .label_style(draw::label())
                .x_labels(((last - first) as usize + 1).min(10))
                .x_label_formatter(&|x| whole(*x))
                .y_label_formatter(&|y| number(*y))
                .draw()?;
            // Complete trials under the rest, so the pruned ones stay visible.
            let mut lines = Layer::lines(1, 0.45);
            let mut dots = Layer::points(4, 0.45);
            let mut crosses = Layer::marks(2, 1.0);
            let mut order: Vec<&Curve> = self.curves.iter().collect();
            order.sort_by_key(|c| c.state != TrialState::Complete);
            for c in order {
                let at = c
                    .points
                    .iter()
                    .map(|&(s, v)| chart.backend_coord(&(s as f64, v)));
                match c.points.as_slice() {
                    [(s, v)] => dots.point(chart.backend_coord(&(*s as f64, *v)), colour(c.state)),
                    _ => lines.line(at, colour(c.state)),
                }
            }
            for c in self.pruned() {
                if let Some(&(s, v)) = c.points.last() {
                    crosses.cross(chart.backend_coord(&(s as f64, v)), 4, PRUNED);
                }
            }
            Ok(vec![lines, dots, crosses])
        })
    }
}
