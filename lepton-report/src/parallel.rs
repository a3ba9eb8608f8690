//! Parallel coordinates: one vertical axis per parameter and one for the objective, one line
//! per complete trial, coloured by its value (bright: best).

use std::collections::BTreeSet;

use lepton_core::{FrozenTrial, History, ParamValue};
use plotters::prelude::*;

use crate::axis::{AxisScale, ParamAxis, extent};
use crate::draw::{self, Layer};
use crate::error::Result;

/// One complete trial's line.
#[derive(Debug, Clone, PartialEq)]
pub struct ParallelLine {
    /// The trial.
    pub number: u64,
    /// Its objective value.
    pub value: f64,
    /// Where it crosses each axis, from 0 (bottom) to 1 (top); `None` where the trial has no
    /// such parameter (a conditional one), and the line skips that axis. The last entry is
    /// the objective.
    pub positions: Vec<Option<f64>>,
}

/// The lines of the parallel-coordinates plot.
#[derive(Debug, Clone, PartialEq)]
pub struct ParallelPlot {
    /// The axes, the parameters by name then the objective (named `objective`).
    pub axes: Vec<ParamAxis>,
    /// One line per complete trial with a finite value, worst first (the best are drawn on
    /// top).
    pub lines: Vec<ParallelLine>,
}

impl ParallelPlot {
    /// The plot of `history`'s complete trials.
    pub fn new(history: &History) -> Self {
        // Best first; reversed below.
        let complete: Vec<&FrozenTrial> = history
            .ranked()
            .into_iter()
            .filter(|t| t.value.is_some_and(f64::is_finite))
            .collect();
        let names: BTreeSet<&str> = complete
            .iter()
            .flat_map(|t| t.params.keys().map(|k| k.as_str()))
            .collect();
        let mut axes: Vec<ParamAxis> = names
            .into_iter()
            .filter_map(|n| ParamAxis::of(n, complete.iter().copied()))
            .collect();
        if let Some((low, high)) = extent(complete.iter().filter_map(|t| t.value)) {
            axes.push(ParamAxis {
                name: "objective".into(),
                scale: AxisScale::Numeric {
                    low,
                    high,
                    log: false,
                },
            });
        }
        let params = axes.len().saturating_sub(1);
        let lines = complete
            .iter()
            .rev()
            .map(|t| {
                let value = t.value.unwrap_or(f64::NAN);
                let mut positions: Vec<Option<f64>> = axes[..params]
                    .iter()
                    .map(|a| t.params.get(a.name.as_str()).and_then(|v| a.position(v)))
                    .collect();
                positions.extend(axes.last().map(|a| a.position(&ParamValue::Float(value))));
                ParallelLine {
                    number: t.number,
                    value,
                    positions,
                }
            })
            .collect();
        ParallelPlot { axes, lines }
    }

    /// Whether there is nothing to plot.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// The plot as an SVG document.
    pub fn svg(&self) -> Result<String> {
        let k = self.axes.len().max(2);
        let width = (150 * k as u32).clamp(860, 3000);
        let n = self.lines.len().max(2) as f64 - 1.0;
        draw::svg("parallel coordinates", (width, 400), |area| {
            let chart = ChartBuilder::on(area)
                .caption(
                    "Parallel coordinates (colour: rank, brightest best)",
                    draw::title(),
                )
                .margin(12)
                .margin_left(60)
                .margin_right(60)
                // Room for the axis names and end values above, and the ends below.
                .set_label_area_size(LabelAreaPosition::Top, 34)
                .set_label_area_size(LabelAreaPosition::Bottom, 20)
                .build_cartesian_2d(0.0..(k - 1) as f64, 0.0..1.0)?;
            let mut lines = Layer::lines(1, 0.5);
            // A trial on one axis only (no parameters) is a dot there.
            let mut dots = Layer::points(5, 0.8);
            for (i, line) in self.lines.iter().enumerate() {
                let at: Vec<(i32, i32)> = line
                    .positions
                    .iter()
                    .enumerate()
                    .filter_map(|(a, p)| p.map(|p| chart.backend_coord(&(a as f64, p))))
                    .collect();
                match at.as_slice() {
                    [only] => dots.point(*only, draw::ordered(i as f64 / n)),
                    _ => lines.line(at, draw::ordered(i as f64 / n)),
                }
            }
            let plot = chart.plotting_area();
            for (a, axis) in self.axes.iter().enumerate() {
                let x = a as f64;
                plot.draw(&PathElement::new(
                    [(x, 0.0), (x, 1.0)],
                    BLACK.mix(0.7).stroke_width(1),
                ))?;
                let (px, py) = plot.map_coordinate(&(x, 1.0));
                let (_, by) = plot.map_coordinate(&(x, 0.0));
                let above = draw::label().pos(plotters::style::text_anchor::Pos::new(
                    plotters::style::text_anchor::HPos::Center,
                    plotters::style::text_anchor::VPos::Bottom,
                ));
                area.draw_text(&axis.name, &above.color(&BLACK), (px, py - 14))?;
                let grey = BLACK.mix(0.6);
                let ticks = draw::label().color(&grey);
                match &axis.scale {
                    // Every choice beside the axis, at its place.
                    AxisScale::Categorical { labels } => {
                        let (l, h) = axis.range();
                        for (i, label) in labels.iter().enumerate() {
                            let y = (i as f64 - l) / (h - l);
                            let (_, cy) = plot.map_coordinate(&(x, y));
                            let beside = ticks.pos(plotters::style::text_anchor::Pos::new(
                                plotters::style::text_anchor::HPos::Left,
                                plotters::style::text_anchor::VPos::Center,
                            ));
                            area.draw_text(label, &beside, (px + 4, cy))?;
                        }
                    }
                    // The ends of the axis, above and below it.
                    AxisScale::Numeric { .. } => {
                        let (l, h) = axis.range();
                        let top = ticks.pos(plotters::style::text_anchor::Pos::new(
                            plotters::style::text_anchor::HPos::Center,
                            plotters::style::text_anchor::VPos::Bottom,
                        ));
                        area.draw_text(&axis.label(h), &top, (px, py - 2))?;
                        let bottom = ticks.pos(plotters::style::text_anchor::Pos::new(
                            plotters::style::text_anchor::HPos::Center,
                            plotters::style::text_anchor::VPos::Top,
                        ));
                        area.draw_text(&axis.label(l), &bottom, (px, by + 4))?;
                    }
                }
            }
            Ok(vec![lines, dots])
        })
    }
}
