//! The optimization history: every complete trial's value by trial number, and the best value
//! so far.

use lepton_core::{Direction, History};
use plotters::prelude::*;

use crate::axis::{number, value_range, whole};
use crate::draw::{self, BEST, COMPLETE, Layer};
use crate::error::Result;

/// The points of the optimization-history plot.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPlot {
    /// Whether lower or higher is better.
    pub direction: Direction,
    /// `(trial number, value)` of every complete trial with a finite value, by number.
    pub points: Vec<(u64, f64)>,
    /// `(trial number, best value up to and including it)`, one per point.
    pub best: Vec<(u64, f64)>,
}

impl HistoryPlot {
    /// The plot of `history`.
    pub fn new(history: &History) -> Self {
        let direction = history.direction();
        let mut points: Vec<(u64, f64)> = history
            .completed()
            .filter_map(|t| t.value.filter(|v| v.is_finite()).map(|v| (t.number, v)))
            .collect();
        points.sort_by_key(|p| p.0);
        let mut best = Vec::with_capacity(points.len());
        let mut so_far: Option<f64> = None;
        for &(n, v) in &points {
            let b = match so_far {
                Some(b) if !direction.is_better(v, b) => b,
                _ => v,
            };
            so_far = Some(b);
            best.push((n, b));
        }
        HistoryPlot {
            direction,
            points,
            best,
        }
    }

    /// Whether there is nothing to plot.
    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }

    /// The plot as an SVG document.
    pub fn svg(&self) -> Result<String> {
        let last = self.points.last().map_or(1, |p| p.0 + 1) as f64;
        let (low, high) = value_range(self.points.iter().map(|p| p.1));
        draw::svg("history", (860, 360), |area| {
            let mut chart = ChartBuilder::on(area)
                .caption("Optimizer history", draw::title())
                .margin(12)
                .x_label_area_size(36)
                .y_label_area_size(64)
                .build_cartesian_2d(-0.5..last - 0.5, low..high)?;
            chart
                .configure_mesh()
                .light_line_style(WHITE)
                .x_desc("trial")
                .y_desc("objective value")
                .label_style(draw::label())
                .x_labels((last as usize).min(10))
                .x_label_formatter(&|x| whole(*x))
                .y_label_formatter(&|y| number(*y))
                .draw()?;
            let mut points = Layer::points(6, 0.6);
            for &(n, v) in &self.points {
                points.point(chart.backend_coord(&(n as f64, v)), COMPLETE);
            }
            // The points are a layer on top; this series only gives the legend its entry.
            chart
                .draw_series(std::iter::empty::<Circle<(f64, f64), i32>>())?
                .label("trial")
                .legend(|(x, y)| Circle::new((x + 8, y), 3, COMPLETE.filled()));
            chart
                .draw_series(LineSeries::new(
                    self.best.iter().map(|&(n, v)| (n as f64, v)),
                    BEST.stroke_width(2),
                ))?
                .label("best so far")
                .legend(|(x, y)| PathElement::new([(x, y), (x + 16, y)], BEST.stroke_width(2)));
            chart
                .configure_series_labels()
                .background_style(WHITE.mix(0.8))
                .border_style(BLACK.mix(0.3))
                .label_font(draw::label())
                .draw()?;
            Ok(vec![points])
        })
    }
}
