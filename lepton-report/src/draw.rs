//! What every plot shares: an SVG canvas as a string, the colours, the fonts, and the layers
//! that carry many data points cheaply.

use std::fmt::Write;

use plotters::coord::Shift;
use plotters::prelude::*;

use crate::error::{ReportError, Result};

/// The drawing area every plot draws on.
pub(crate) type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

/// plotters' error, for the SVG backend.
pub(crate) type DrawError = DrawingAreaErrorKind<std::io::Error>;

/// Complete trials.
pub(crate) const COMPLETE: RGBColor = RGBColor(31, 119, 180);
/// Pruned trials.
pub(crate) const PRUNED: RGBColor = RGBColor(214, 39, 40);
/// Running and failed trials.
pub(crate) const OTHER: RGBColor = RGBColor(140, 140, 140);
/// The best-so-far line.
pub(crate) const BEST: RGBColor = RGBColor(255, 127, 14);

/// The font of titles.
pub(crate) fn title() -> TextStyle<'static> {
    ("sans-serif", 16).into_font().into()
}

/// The font of axis labels.
pub(crate) fn label() -> TextStyle<'static> {
    ("sans-serif", 12).into_font().into()
}

/// Colours of an ordered scale, in this many steps (a layer draws one path per colour).
pub(crate) const STEPS: usize = 16;

/// A colour from dark (0) to bright (1), Viridis (ordered, and readable by the colour-blind),
/// in [`STEPS`] steps.
pub(crate) fn ordered(t: f64) -> RGBColor {
    let step = (t.clamp(0.0, 1.0) * (STEPS - 1) as f64).round() / (STEPS - 1) as f64;
    ViridisRGB.get_color(step as f32)
}

/// Many data points, lines or marks, drawn as one SVG path per colour (in the order the
/// colours first appear, so later colours lie on top) in a group that says how many it holds
/// (`data-points`, `data-lines` or `data-marks`). A browser draws one path of 10,000 pieces far faster than
/// 10,000 elements (a 10,000-trial report renders in a fraction of the time), so the plots
/// draw their data this way, and plotters their frames (axes, ticks, labels, legends). A point
/// is a zero-length segment with a round cap: a dot of the stroke's width.
#[derive(Debug)]
pub(crate) struct Layer {
    kind: &'static str,
    width: u32,
    opacity: f64,
    paths: Vec<(RGBColor, String)>,
    count: usize,
}

impl Layer {
    /// Dots `width` pixels across.
    pub(crate) fn points(width: u32, opacity: f64) -> Self {
        Layer {
            kind: "points",
            width,
            opacity,
            paths: Vec::new(),
            count: 0,
        }
    }

    /// Lines `width` pixels wide.
    pub(crate) fn lines(width: u32, opacity: f64) -> Self {
        Layer {
            kind: "lines",
            ..Layer::points(width, opacity)
        }
    }

    /// Marks (crosses) drawn with lines `width` pixels wide.
    pub(crate) fn marks(width: u32, opacity: f64) -> Self {
        Layer {
            kind: "marks",
            ..Layer::points(width, opacity)
        }
    }

    fn path(&mut self, colour: RGBColor) -> &mut String {
        let i = match self.paths.iter().position(|(c, _)| *c == colour) {
            Some(i) => i,
            None => {
                self.paths.push((colour, String::new()));
                self.paths.len() - 1
            }
        };
        &mut self.paths[i].1
    }

    /// A dot at pixel `(x, y)`.
    pub(crate) fn point(&mut self, (x, y): (i32, i32), colour: RGBColor) {
        let _ = write!(self.path(colour), "M{x} {y}h0");
        self.count += 1;
    }

    /// A line through pixels `at` (nothing for fewer than two), without the points that lie
    /// within half a pixel of it anyway (a learning curve flattens out: its hundred steps
    /// draw as a dozen segments, and the picture does not change).
    pub(crate) fn line(&mut self, at: impl IntoIterator<Item = (i32, i32)>, colour: RGBColor) {
        let at: Vec<(i32, i32)> = at.into_iter().collect();
        if at.len() < 2 {
            return;
        }
        let at = simplified(&at, 0.5);
        let d = self.path(colour);
        for (i, (x, y)) in at.iter().enumerate() {
            let _ = write!(d, "{}{x} {y}", if i == 0 { 'M' } else { 'L' });
        }
        self.count += 1;
    }

    /// An x of `size` pixels either side of pixel `(x, y)`.
    pub(crate) fn cross(&mut self, (x, y): (i32, i32), size: i32, colour: RGBColor) {
        let (l, r, t, b) = (x - size, x + size, y - size, y + size);
        let _ = write!(self.path(colour), "M{l} {t}L{r} {b}M{l} {b}L{r} {t}");
        self.count += 1;
    }

    fn svg(&self, out: &mut String) {
        let _ = write!(
            out,
            "<g class=\"{kind}\" data-{kind}=\"{count}\" fill=\"none\" \
             stroke-width=\"{width}\" stroke-linecap=\"round\" stroke-linejoin=\"round\" \
             stroke-opacity=\"{opacity}\">",
            kind = self.kind,
            count = self.count,
            width = self.width,
            opacity = self.opacity,
        );
        for (RGBColor(r, g, b), d) in &self.paths {
            let _ = write!(out, "<path stroke=\"#{r:02X}{g:02X}{b:02X}\" d=\"{d}\"/>");
        }
        out.push_str("</g>\n");
    }
}

/// `line` without the points within `tolerance` pixels of the line that remains
/// (Ramer-Douglas-Peucker); the first and last points always stay.
fn simplified(line: &[(i32, i32)], tolerance: f64) -> Vec<(i32, i32)> {
    let mut keep = vec![false; line.len()];
    keep[0] = true;
    keep[line.len() - 1] = true;
    let mut spans = vec![(0, line.len() - 1)];
    while let Some((first, last)) = spans.pop() {
        let (ax, ay) = (line[first].0 as f64, line[first].1 as f64);
        let (dx, dy) = (line[last].0 as f64 - ax, line[last].1 as f64 - ay);
        let length = (dx * dx + dy * dy).sqrt();
        let mut farthest = (0.0, first);
        for (i, &(x, y)) in line.iter().enumerate().take(last).skip(first + 1) {
            let (px, py) = (x as f64 - ax, y as f64 - ay);
            let distance = if length == 0.0 {
                (px * px + py * py).sqrt()
            } else {
                (px * dy - py * dx).abs() / length
            };
            if distance > farthest.0 {
                farthest = (distance, i);
            }
        }
        if farthest.0 > tolerance {
            keep[farthest.1] = true;
            spans.push((first, farthest.1));
            spans.push((farthest.1, last));
        }
    }
    line.iter()
        .zip(keep)
        .filter_map(|(&p, k)| k.then_some(p))
        .collect()
}

/// Draws with `draw` on a white `width` x `height` canvas and returns the SVG document, with
/// the layers `draw` returns on top of what it drew.
pub(crate) fn svg(
    plot: &'static str,
    (width, height): (u32, u32),
    draw: impl FnOnce(&Area) -> std::result::Result<Vec<Layer>, DrawError>,
) -> Result<String> {
    let mut out = String::new();
    let layers = {
        let area = SVGBackend::with_string(&mut out, (width, height)).into_drawing_area();
        let drawn = area
            .fill(&WHITE)
            .and_then(|()| draw(&area))
            .and_then(|layers| area.present().map(|()| layers));
        drawn.map_err(|e| ReportError::Plot {
            plot,
            message: e.to_string(),
        })?
    };
    let end = out.rfind("</svg>").unwrap_or(out.len());
    let mut tail = out.split_off(end);
    for layer in layers.iter().filter(|l| l.count > 0) {
        layer.svg(&mut out);
    }
    if tail.is_empty() {
        tail.push_str("</svg>\n");
    }
    out.push_str(&tail);
    Ok(out)
}

/// Horizontal bars from zero, the first at the top, each named on the left: `(name, value,
/// spread)`, a whisker drawn over `value ± spread` where the spread is positive. `x` is the
/// value axis, labelled by `x_label`.
pub(crate) fn horizontal_bars(
    plot: &'static str,
    caption: &str,
    bars: &[(String, f64, f64)],
    x: std::ops::Range<f64>,
    x_label: &dyn Fn(&f64) -> String,
) -> Result<String> {
    // Rows: at least two (a one-row axis gets no label).
    let n = bars.len().max(2);
    let height = (40 + 28 * n as u32).max(160);
    let widest = bars.iter().map(|b| b.0.len()).max().unwrap_or(8);
    let names = (widest as u32 * 7 + 16).clamp(60, 320);
    svg(plot, (860, height), |area| {
        let mut chart = ChartBuilder::on(area)
            .caption(caption, title())
            .margin(12)
            .x_label_area_size(28)
            .y_label_area_size(names)
            // A segmented `0..m` has a segment per value of `0..=m`: `n` rows.
            .build_cartesian_2d(x, (0..n - 1).into_segmented())?;
        chart
            .configure_mesh()
            .light_line_style(WHITE)
            .y_labels(n)
            .label_style(label())
            .y_label_formatter(&|y| match y {
                SegmentValue::CenterOf(i) => n
                    .checked_sub(i + 1)
                    .and_then(|row| bars.get(row))
                    .map_or(String::new(), |b| b.0.clone()),
                _ => String::new(),
            })
            .x_label_formatter(x_label)
            .draw()?;
        // Bar i on row n - 1 - i: the first at the top.
        chart.draw_series(bars.iter().enumerate().map(|(i, (_, value, _))| {
            let row = n - 1 - i;
            let mut bar = Rectangle::new(
                [
                    (0.0, SegmentValue::Exact(row)),
                    (*value, SegmentValue::Exact(row + 1)),
                ],
                COMPLETE.filled(),
            );
            bar.set_margin(4, 4, 0, 0);
            bar
        }))?;
        chart.draw_series(
            bars.iter()
                .enumerate()
                .filter(|(_, (_, _, spread))| *spread > 0.0)
                .map(|(i, (_, value, spread))| {
                    let row = SegmentValue::CenterOf(n - 1 - i);
                    PathElement::new(
                        vec![(value - spread, row.clone()), (value + spread, row)],
                        OTHER.stroke_width(2),
                    )
                }),
        )?;
        Ok(Vec::new())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simplifying_keeps_corners_and_drops_what_lies_on_the_line() {
        let flat: Vec<(i32, i32)> = (0..100).map(|x| (x, 50)).collect();
        assert_eq!(simplified(&flat, 0.5), [(0, 50), (99, 50)]);
        let corner = [(0, 0), (5, 5), (10, 10), (10, 0), (10, -10)];
        assert_eq!(simplified(&corner, 0.5), [(0, 0), (10, 10), (10, -10)]);
        // A point one pixel off the line stays.
        let bump = [(0, 0), (5, 1), (10, 0)];
        assert_eq!(simplified(&bump, 0.5), bump);
        assert_eq!(simplified(&[(3, 3), (3, 3)], 0.5), [(3, 3), (3, 3)]);
    }
}
