//! A final model's feature importance (permutation importance: how much its score drops when
//! one input column is shuffled), as horizontal bars with a whisker of one standard
//! deviation each side, most important on top.

use crate::draw;
use crate::error::Result;

/// The most bars the plot shows (the rest are named in a note below it).
pub const MOST_BARS: usize = 30;

/// The bars of the feature importance plot.
#[derive(Debug, Clone, PartialEq)]
pub struct FeatureImportancePlot {
    /// The metric whose drop is measured.
    pub metric: String,
    /// `(column, mean drop, standard deviation)`, most important first, at most
    /// [`MOST_BARS`].
    pub bars: Vec<(String, f64, f64)>,
}

impl FeatureImportancePlot {
    /// The plot of `importances` (`(column, mean drop, sd)`, in any order) measured in
    /// `metric`; non-finite values are left out.
    pub fn new(metric: &str, importances: &[(String, f64, f64)]) -> Self {
        let mut bars: Vec<(String, f64, f64)> = importances
            .iter()
            .filter(|(_, m, s)| m.is_finite() && s.is_finite())
            .cloned()
            .collect();
        bars.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        bars.truncate(MOST_BARS);
        FeatureImportancePlot {
            metric: metric.to_owned(),
            bars,
        }
    }

    /// The plot as an SVG document.
    pub fn svg(&self) -> Result<String> {
        let low = self.bars.iter().map(|b| b.1 - b.2).fold(0.0, f64::min);
        let high = self.bars.iter().map(|b| b.1 + b.2).fold(0.0, f64::max);
        let pad = ((high - low) * 0.05).max(1e-6);
        let caption = format!("Feature importance (drop of {} when shuffled)", self.metric);
        draw::horizontal_bars(
            "feature-importance",
            &caption,
            &self.bars,
            (low - pad)..(high + pad),
            &|x| format!("{x:.3}"),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_are_sorted_capped_and_drawn() {
        let importances: Vec<(String, f64, f64)> = (0..40)
            .map(|i| (format!("column_{i}"), i as f64 / 100.0, 0.01))
            .chain([("broken".to_owned(), f64::NAN, 0.0)])
            .collect();
        let plot = FeatureImportancePlot::new("accuracy", &importances);
        assert_eq!(plot.bars.len(), MOST_BARS);
        assert_eq!(plot.bars[0].0, "column_39");
        assert!(plot.bars.windows(2).all(|w| w[0].1 >= w[1].1));
        let svg = plot.svg().unwrap();
        assert!(svg.contains("column_39") && !svg.contains("column_0<"));
        assert!(svg.contains("drop of accuracy"));
        // A column whose shuffling helped (a negative drop) is drawn left of zero.
        let negative = FeatureImportancePlot::new("r2", &[("noise".into(), -0.02, 0.01)]);
        assert!(negative.svg().unwrap().contains("noise"));
    }
}
