//! Slice plots: for each parameter, the objective value of every complete trial against the
//! value it gave that parameter, coloured by trial number (dark: early).

use std::collections::BTreeSet;

use lepton_core::{FrozenTrial, History};
use plotters::prelude::*;

use crate::axis::{ParamAxis, number, value_range};
use crate::draw::{self, Layer};
use crate::error::Result;

/// One parameter's slice.
#[derive(Debug, Clone, PartialEq)]
pub struct SlicePlot {
    /// The parameter's axis.
    pub axis: ParamAxis,
    /// `(coordinate on the axis, objective value, trial number)` of every complete trial
    /// with a finite value that has the parameter, by trial number.
    pub points: Vec<(f64, f64, u64)>,
    /// The last trial number of the study, for the colour scale.
    pub last_trial: u64,
}

impl SlicePlot {
    /// One slice per parameter of `history`'s complete trials, by name.
    pub fn all(history: &History) -> Vec<SlicePlot> {
        let mut complete: Vec<&FrozenTrial> = history
            .completed()
            .filter(|t| t.value.is_some_and(f64::is_finite))
            .collect();
        complete.sort_by_key(|t| t.number);
        let last_trial = complete.last().map_or(0, |t| t.number);
        let names: BTreeSet<&str> = complete
            .iter()
            .flat_map(|t| t.params.keys().map(|k| k.as_str()))
            .collect();
        names
            .into_iter()
            .filter_map(|name| {
                let axis = ParamAxis::of(name, complete.iter().copied())?;
                let points = complete
                    .iter()
                    .filter_map(|t| {
                        let x = axis.coordinate(t.params.get(name)?)?;
                        Some((x, t.value?, t.number))
                    })
                    .collect();
                Some(SlicePlot {
                    axis,
                    points,
                    last_trial,
                })
            })
            .collect()
    }

    /// The plot as an SVG document.
    pub fn svg(&self) -> Result<String> {
        let (xl, xh) = self.axis.range();
        let (low, high) = value_range(self.points.iter().map(|p| p.1));
        let last = self.last_trial.max(1) as f64;
        draw::svg("slice", (420, 300), |area| {
            let mut chart = ChartBuilder::on(area)
                .caption(&self.axis.name, draw::title())
                .margin(10)
                .x_label_area_size(32)
                .y_label_area_size(60)
                .build_cartesian_2d(xl..xh, low..high)?;
            chart
                .configure_mesh()
                .light_line_style(WHITE)
                .x_labels(self.axis.ticks())
                .y_desc("objective value")
                .label_style(draw::label())
                .x_label_formatter(&|x| self.axis.label(*x))
                .y_label_formatter(&|y| number(*y))
                .draw()?;
            let mut points = Layer::points(6, 0.7);
            for &(x, v, n) in &self.points {
                points.point(chart.backend_coord(&(x, v)), draw::ordered(n as f64 / last));
            }
            Ok(vec![points])
        })
    }
}
