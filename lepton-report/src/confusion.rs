//! A classifier's confusion matrix, kept as a trial attribute so that every storage holds it,
//! and drawn as a heat map.

use lepton_core::{FrozenTrial, ParamValue};
use plotters::prelude::*;
use serde::{Deserialize, Serialize};

use crate::draw;
use crate::error::{ReportError, Result};

/// The user attribute holding a trial's validation confusion matrix: the JSON of
/// [`Confusion`], as a string.
pub const CONFUSION_ATTR: &str = "lepton.confusion_matrix";

/// A confusion matrix: `counts[truth][predicted]`, one row and one column per label.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confusion {
    /// The class labels.
    pub labels: Vec<String>,
    /// Rows: true class; columns: predicted class.
    pub counts: Vec<Vec<u64>>,
}

impl Confusion {
    /// The attribute value that stores it.
    pub fn to_attr(&self) -> ParamValue {
        // A struct of strings and integers always serializes.
        ParamValue::Str(serde_json::to_string(self).unwrap_or_default())
    }

    /// The matrix a trial stores under [`CONFUSION_ATTR`]; `None` if it has none, an error if
    /// the attribute is not a square matrix with a label per row.
    pub fn of_trial(trial: &FrozenTrial) -> Option<Result<Confusion>> {
        let value = trial.user_attrs.get(CONFUSION_ATTR)?;
        let malformed = |message: String| ReportError::Attribute {
            number: trial.number,
            key: CONFUSION_ATTR,
            message,
        };
        let parsed = match value {
            ParamValue::Str(json) => {
                serde_json::from_str::<Confusion>(json).map_err(|e| malformed(e.to_string()))
            }
            other => Err(malformed(format!("{other} is not a JSON string"))),
        };
        Some(parsed.and_then(|c| c.check().map(|()| c).map_err(malformed)))
    }

    /// At least one label, and a square matrix with a row and a column per label.
    fn check(&self) -> std::result::Result<(), String> {
        let k = self.labels.len();
        if k == 0 || self.counts.len() != k || self.counts.iter().any(|r| r.len() != k) {
            return Err(format!(
                "{k} labels need a {k} x {k} matrix of counts, and there must be one at least"
            ));
        }
        Ok(())
    }

    /// Each row's share of its true class, the recall per cell (0 for an empty row).
    pub fn row_shares(&self) -> Vec<Vec<f64>> {
        self.counts
            .iter()
            .map(|row| {
                // As floats: counts read from a storage may be anything, and must not overflow.
                let total: f64 = row.iter().map(|&c| c as f64).sum();
                row.iter()
                    .map(|&c| if total == 0.0 { 0.0 } else { c as f64 / total })
                    .collect()
            })
            .collect()
    }

    /// The heat map as an SVG document: a cell per (true, predicted) pair with its count,
    /// shaded by its share of the true class.
    pub fn svg(&self) -> Result<String> {
        self.check().map_err(|message| ReportError::Plot {
            plot: "confusion matrix",
            message,
        })?;
        let k = self.labels.len();
        let cell = (480 / k.max(1) as u32).clamp(24, 64);
        let side = cell * k as u32;
        let shares = self.row_shares();
        draw::svg("confusion matrix", (side + 130, side + 110), |area| {
            let mut chart = ChartBuilder::on(area)
                .caption("Confusion matrix (best trial, validation)", draw::title())
                .margin(10)
                .x_label_area_size(40)
                .y_label_area_size(70)
                // A segmented `0..m` has a segment per value of `0..=m`: `k` cells.
                .build_cartesian_2d((0..k - 1).into_segmented(), (0..k - 1).into_segmented())?;
            let label = |v: &SegmentValue<usize>, flip: bool| match v {
                SegmentValue::CenterOf(i) => {
                    let i = if flip { k.checked_sub(i + 1) } else { Some(*i) };
                    i.and_then(|i| self.labels.get(i))
                        .cloned()
                        .unwrap_or_default()
                }
                _ => String::new(),
            };
            chart
                .configure_mesh()
                .disable_mesh()
                .x_labels(k)
                .y_labels(k)
                .x_desc("predicted")
                .y_desc("true")
                .label_style(draw::label())
                .x_label_formatter(&|v| label(v, false))
                .y_label_formatter(&|v| label(v, true))
                .draw()?;
            for (t, row) in self.counts.iter().enumerate() {
                // The first class on top.
                let y = k - 1 - t;
                for (p, &count) in row.iter().enumerate() {
                    let share = shares[t][p];
                    let shade = RGBColor(
                        (255.0 - 224.0 * share) as u8,
                        (255.0 - 136.0 * share) as u8,
                        (255.0 - 75.0 * share) as u8,
                    );
                    chart.draw_series(std::iter::once(Rectangle::new(
                        [
                            (SegmentValue::Exact(p), SegmentValue::Exact(y)),
                            (SegmentValue::Exact(p + 1), SegmentValue::Exact(y + 1)),
                        ],
                        shade.filled(),
                    )))?;
                    let ink = if share > 0.5 { WHITE } else { BLACK };
                    let font =
                        draw::label()
                            .color(&ink)
                            .pos(plotters::style::text_anchor::Pos::new(
                                plotters::style::text_anchor::HPos::Center,
                                plotters::style::text_anchor::VPos::Center,
                            ));
                    chart.draw_series(std::iter::once(Text::new(
                        count.to_string(),
                        (SegmentValue::CenterOf(p), SegmentValue::CenterOf(y)),
                        font,
                    )))?;
                }
            }
            Ok(Vec::new())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_matrix_survives_its_attribute() {
        let c = Confusion {
            labels: vec!["cat".into(), "dog".into()],
            counts: vec![vec![8, 2], vec![1, 9]],
        };
        let mut t = FrozenTrial::new(3);
        t.user_attrs.insert(CONFUSION_ATTR.into(), c.to_attr());
        assert_eq!(Confusion::of_trial(&t).unwrap().unwrap(), c);
        assert_eq!(c.row_shares()[0], vec![0.8, 0.2]);
        assert!(Confusion::of_trial(&FrozenTrial::new(4)).is_none());
        assert!(c.svg().unwrap().contains(">\n9\n</text>"));
        // Made by hand, a ragged matrix is refused rather than drawn.
        let ragged = Confusion {
            labels: vec!["a".into()],
            counts: vec![vec![1, 2]],
        };
        assert!(matches!(ragged.svg(), Err(ReportError::Plot { .. })));
    }

    #[test]
    fn a_malformed_attribute_is_a_typed_error() {
        let mut t = FrozenTrial::new(7);
        for bad in [
            ParamValue::Str("not json".into()),
            ParamValue::Str(r#"{"labels":["a","b"],"counts":[[1,2]]}"#.into()),
            ParamValue::Int(3),
        ] {
            t.user_attrs.insert(CONFUSION_ATTR.into(), bad);
            let e = Confusion::of_trial(&t).unwrap().unwrap_err();
            assert!(matches!(e, ReportError::Attribute { number: 7, .. }), "{e}");
        }
    }
}
