//! Parameter importance (PED-ANOVA), as horizontal bars, most important on top.

use lepton_core::History;
use lepton_search::PedAnova;
use plotters::prelude::*;

use crate::draw::{self, COMPLETE};
use crate::error::Result;

/// The bars of the importance plot.
#[derive(Debug, Clone, PartialEq)]
pub struct ImportancePlot {
    /// `(parameter, share)`, most important first; the shares sum to 1 (or are all 0 when no
    /// parameter matters).
    pub shares: Vec<(String, f64)>,
}

impl ImportancePlot {
    /// PED-ANOVA's importances of `history`, or why there are none (too few complete trials).
    pub fn new(history: &History) -> std::result::Result<Self, String> {
        let importances = PedAnova::new()
            .importances(history)
            .map_err(|e| e.to_string())?;
        let mut shares: Vec<(String, f64)> = importances.into_iter().collect();
        shares.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Ok(ImportancePlot { shares })
    }

    /// The plot as an SVG document.
    pub fn svg(&self) -> Result<String> {
        let n = self.shares.len().max(1);
        let height = (40 + 28 * n as u32).max(160);
        let widest = self.shares.iter().map(|s| s.0.len()).max().unwrap_or(8);
        let names = (widest as u32 * 7 + 16).clamp(60, 320);
        draw::svg("importance", (860, height), |area| {
            let mut chart = ChartBuilder::on(area)
                .caption("Parameter importance (PED-ANOVA)", draw::title())
                .margin(12)
                .x_label_area_size(28)
                .y_label_area_size(names)
                // A segmented `0..m` has a segment per value of `0..=m`: `n` rows.
                .build_cartesian_2d(0.0..1.0, (0..n - 1).into_segmented())?;
            chart
                .configure_mesh()
                .light_line_style(WHITE)
                .y_labels(n)
                .label_style(draw::label())
                .y_label_formatter(&|y| match y {
                    SegmentValue::CenterOf(i) => n
                        .checked_sub(i + 1)
                        .and_then(|row| self.shares.get(row))
                        .map_or(String::new(), |s| s.0.clone()),
                    _ => String::new(),
                })
                .x_label_formatter(&|x| format!("{x:.1}"))
                .draw()?;
            chart.draw_series(self.shares.iter().enumerate().map(|(i, (_, share))| {
                // The most important at the top.
                let row = n - 1 - i;
                let mut bar = Rectangle::new(
                    [
                        (0.0, SegmentValue::Exact(row)),
                        (*share, SegmentValue::Exact(row + 1)),
                    ],
                    COMPLETE.filled(),
                );
                bar.set_margin(4, 4, 0, 0);
                bar
            }))?;
            Ok(Vec::new())
        })
    }
}
