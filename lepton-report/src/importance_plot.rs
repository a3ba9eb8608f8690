//! Parameter importance (PED-ANOVA), as horizontal bars, most important on top.

use crate::draw;
use crate::error::Result;
use lepton_core::History;
use lepton_search::PedAnova;

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
        let bars: Vec<(String, f64, f64)> = self
            .shares
            .iter()
            .map(|(name, share)| (name.clone(), *share, 0.0))
            .collect();
        draw::horizontal_bars(
            "importance",
            "Parameter importance (PED-ANOVA)",
            &bars,
            0.0..1.0,
            &|x| format!("{x:.1}"),
        )
    }
}
