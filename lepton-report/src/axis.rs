//! Where a parameter's values sit along a plot axis: numbers on a linear or log scale,
//! choices at their index.

use lepton_core::{Distribution, FrozenTrial, ParamValue, Scale};

/// A parameter's axis, from the values the trials gave it.
#[derive(Debug, Clone, PartialEq)]
pub struct ParamAxis {
    /// The parameter's name.
    pub name: String,
    /// How its values are placed.
    pub scale: AxisScale,
}

/// How values are placed along an axis.
#[derive(Debug, Clone, PartialEq)]
pub enum AxisScale {
    /// Numbers from `low` to `high` (the smallest and largest value seen); `log` places them by
    /// their base-10 logarithm (the parameter's distribution is on a log scale).
    Numeric {
        /// The smallest value seen.
        low: f64,
        /// The largest value seen.
        high: f64,
        /// Log scale.
        log: bool,
    },
    /// Choices, each at its index: the distribution's choices in their order, then any other
    /// value seen.
    Categorical {
        /// The choices as they are printed.
        labels: Vec<String>,
    },
}

impl ParamAxis {
    /// The axis of parameter `name` over the `trials` that have it; `None` if none has it
    /// (or a numeric parameter has no finite value).
    pub fn of<'a>(name: &str, trials: impl Iterator<Item = &'a FrozenTrial>) -> Option<Self> {
        let mut distribution: Option<&Distribution> = None;
        let mut values: Vec<&ParamValue> = Vec::new();
        for t in trials {
            if let Some(v) = t.params.get(name) {
                values.push(v);
                distribution = distribution.or(t.distributions.get(name));
            }
        }
        let numeric = values
            .iter()
            .all(|v| matches!(v, ParamValue::Int(_) | ParamValue::Float(_)));
        let scale = match distribution {
            Some(Distribution::Categorical { choices }) => categorical(choices, &values),
            _ if !numeric => categorical(&[], &values),
            _ => {
                let log = matches!(
                    distribution,
                    Some(Distribution::Float {
                        scale: Scale::Log,
                        ..
                    }) | Some(Distribution::Int {
                        scale: Scale::Log,
                        ..
                    })
                );
                let finite = values
                    .iter()
                    .filter_map(|v| v.as_f64())
                    .filter(|x| x.is_finite() && (!log || *x > 0.0));
                let (low, high) = extent(finite)?;
                AxisScale::Numeric { low, high, log }
            }
        };
        (!values.is_empty()).then(|| ParamAxis {
            name: name.to_owned(),
            scale,
        })
    }

    /// Where `value` sits on the axis, in axis units (the number, its logarithm, or the
    /// choice's index); `None` for a value the axis cannot place.
    pub fn coordinate(&self, value: &ParamValue) -> Option<f64> {
        match &self.scale {
            AxisScale::Numeric { log, .. } => {
                let x = value.as_f64().filter(|x| x.is_finite())?;
                match log {
                    true if x > 0.0 => Some(x.log10()),
                    true => None,
                    false => Some(x),
                }
            }
            AxisScale::Categorical { labels } => {
                let label = choice_label(value);
                labels.iter().position(|l| *l == label).map(|i| i as f64)
            }
        }
    }

    /// The axis' extent in axis units, never empty: a single value gets room either side,
    /// choices half an index either side.
    pub fn range(&self) -> (f64, f64) {
        match &self.scale {
            AxisScale::Numeric { low, high, log } => {
                let (l, h) = if *log {
                    (low.log10(), high.log10())
                } else {
                    (*low, *high)
                };
                padded(l, h)
            }
            AxisScale::Categorical { labels } => (-0.5, labels.len() as f64 - 0.5),
        }
    }

    /// Where `value` sits between the ends of [`range`](Self::range), from 0 to 1 (a value
    /// beyond the axis' limit sits at its end).
    pub fn position(&self, value: &ParamValue) -> Option<f64> {
        let (l, h) = self.range();
        self.coordinate(value)
            .map(|x| ((x - l) / (h - l)).clamp(0.0, 1.0))
    }

    /// The tick label at coordinate `x`: the value (undoing the logarithm), or the choice at
    /// that index (empty between choices).
    pub fn label(&self, x: f64) -> String {
        match &self.scale {
            AxisScale::Numeric { log: true, .. } => number(10f64.powf(x)),
            AxisScale::Numeric { log: false, .. } => number(x),
            AxisScale::Categorical { labels } => {
                let i = x.round();
                if (x - i).abs() > 1e-6 || i < 0.0 {
                    return String::new();
                }
                labels.get(i as usize).cloned().unwrap_or_default()
            }
        }
    }

    /// How many ticks suit the axis: one per choice, else a handful.
    pub fn ticks(&self) -> usize {
        match &self.scale {
            AxisScale::Numeric { .. } => 5,
            AxisScale::Categorical { labels } => labels.len(),
        }
    }
}

/// A choice as its axis prints it: every digit of a number, so that no two choices share a
/// label (`1.0` and `1` stay apart).
fn choice_label(value: &ParamValue) -> String {
    match value {
        ParamValue::Float(x) => format!("{x:?}"),
        other => other.to_string(),
    }
}

fn categorical(choices: &[ParamValue], values: &[&ParamValue]) -> AxisScale {
    let mut labels: Vec<String> = choices.iter().map(choice_label).collect();
    for v in values {
        let label = choice_label(v);
        if !labels.contains(&label) {
            labels.push(label);
        }
    }
    AxisScale::Categorical { labels }
}

/// The smallest and largest of `values`, or `None` when there are none.
pub(crate) fn extent(values: impl IntoIterator<Item = f64>) -> Option<(f64, f64)> {
    let (low, high) = values
        .into_iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), x| {
            (l.min(x), h.max(x))
        });
    (low <= high).then_some((low, high))
}

/// A plot's value axis for `values`: their extent, [`padded`], or `(0, 1)` when there are
/// none.
pub(crate) fn value_range(values: impl IntoIterator<Item = f64>) -> (f64, f64) {
    extent(values).map_or((0.0, 1.0), |(l, h)| padded(l, h))
}

/// The largest magnitude a plot's axis reaches: values beyond it (such as a penalty of
/// `f64::MAX`) sit at the edge, and the axis' width stays finite for plotters' ticks.
const AXIS_LIMIT: f64 = f64::MAX / 4.0;

/// `[low, high]` widened by 5 % either side, or by 1 (or 10 % of the value) when it is a
/// single point; both ends first held within [`AXIS_LIMIT`].
pub(crate) fn padded(low: f64, high: f64) -> (f64, f64) {
    let (low, high) = (
        low.clamp(-AXIS_LIMIT, AXIS_LIMIT),
        high.clamp(-AXIS_LIMIT, AXIS_LIMIT),
    );
    let pad = if high > low {
        (high - low) * 0.05
    } else if low == 0.0 {
        1.0
    } else {
        low.abs() * 0.1
    };
    (low - pad, high + pad)
}

/// A parameter value as a person reads it: numbers by [`number`], the rest as they print.
pub fn value_label(value: &ParamValue) -> String {
    match value {
        ParamValue::Float(x) => number(*x),
        other => other.to_string(),
    }
}

/// The label of a tick on an axis of whole numbers (steps, trial numbers): the number, or
/// nothing between two whole numbers.
pub(crate) fn whole(x: f64) -> String {
    if (x - x.round()).abs() < 1e-9 {
        // `+ 0.0` turns -0 into 0.
        format!("{}", x.round() + 0.0)
    } else {
        String::new()
    }
}

/// A number as a person reads it: up to four significant digits, scientific notation when
/// very large or small.
pub fn number(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return format!("{x}");
    }
    let magnitude = x.abs().log10();
    if (-3.0..5.0).contains(&magnitude) {
        let decimals = (3.0 - magnitude.floor()).clamp(0.0, 6.0) as usize;
        let s = format!("{x:.decimals$}");
        if s.contains('.') {
            s.trim_end_matches('0').trim_end_matches('.').to_owned()
        } else {
            s
        }
    } else {
        format!("{x:.2e}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn trial(number: u64, name: &str, d: Distribution, v: ParamValue) -> FrozenTrial {
        let mut t = FrozenTrial::new(number);
        t.params = BTreeMap::from([(name.into(), v)]);
        t.distributions = BTreeMap::from([(name.into(), d)]);
        t
    }

    #[test]
    fn a_log_axis_places_values_by_their_logarithm() {
        let d = Distribution::float(1e-5, 1e-1, Scale::Log);
        let trials = [
            trial(0, "lr", d.clone(), ParamValue::Float(1e-4)),
            trial(1, "lr", d, ParamValue::Float(1e-2)),
        ];
        let axis = ParamAxis::of("lr", trials.iter()).unwrap();
        assert_eq!(
            axis.scale,
            AxisScale::Numeric {
                low: 1e-4,
                high: 1e-2,
                log: true
            }
        );
        let c = axis.coordinate(&ParamValue::Float(1e-3)).unwrap();
        assert!((c + 3.0).abs() < 1e-12);
        // Halfway between 1e-4 and 1e-2 on a log axis.
        let p = axis.position(&ParamValue::Float(1e-3)).unwrap();
        assert!((p - 0.5).abs() < 1e-12);
        assert_eq!(axis.label(-3.0), "0.001");
        assert_eq!(axis.coordinate(&ParamValue::Float(-1.0)), None);
    }

    #[test]
    fn choices_sit_at_their_index_in_the_distribution_order() {
        let d = Distribution::categorical(["relu", "tanh", "gelu"]);
        let trials = [trial(0, "act", d, ParamValue::Str("gelu".into()))];
        let axis = ParamAxis::of("act", trials.iter()).unwrap();
        assert_eq!(axis.coordinate(&ParamValue::Str("gelu".into())), Some(2.0));
        assert_eq!(axis.coordinate(&ParamValue::Str("elu".into())), None);
        assert_eq!(axis.range(), (-0.5, 2.5));
        assert_eq!(axis.label(1.0), "tanh");
        assert_eq!(axis.label(1.5), "");
        assert_eq!(axis.ticks(), 3);
    }

    #[test]
    fn a_parameter_no_trial_has_gets_no_axis() {
        let d = Distribution::float(0.0, 1.0, Scale::Linear);
        let trials = [trial(0, "x", d, ParamValue::Float(0.5))];
        assert_eq!(ParamAxis::of("y", trials.iter()), None);
        // A single value still gets a non-empty range.
        let axis = ParamAxis::of("x", trials.iter()).unwrap();
        let (l, h) = axis.range();
        assert!(l < 0.5 && h > 0.5);
    }

    #[test]
    fn huge_values_keep_a_finite_axis() {
        let (l, h) = padded(f64::MAX, f64::MAX);
        assert!(l.is_finite() && h.is_finite() && l < h);
        let (l, h) = padded(-f64::MAX, f64::MAX);
        assert!(l.is_finite() && h.is_finite() && (h - l).is_finite());
    }

    #[test]
    fn close_choices_keep_their_own_places() {
        let d = Distribution::categorical([0.12345, 0.12349]);
        let trials = [trial(0, "c", d, ParamValue::Float(0.12349))];
        let axis = ParamAxis::of("c", trials.iter()).unwrap();
        assert_eq!(axis.coordinate(&ParamValue::Float(0.12349)), Some(1.0));
        assert_eq!(axis.coordinate(&ParamValue::Float(0.12345)), Some(0.0));
    }

    #[test]
    fn numbers_read_as_a_person_writes_them() {
        assert_eq!(number(0.5), "0.5");
        assert_eq!(number(0.98765), "0.9877");
        assert_eq!(number(1234.0), "1234");
        assert_eq!(number(12.5), "12.5");
        assert_eq!(number(1e-6), "1.00e-6");
        assert_eq!(number(0.0), "0");
        assert_eq!(whole(3.0), "3");
        assert_eq!(whole(2.5), "");
        assert_eq!(whole(-0.0), "0");
    }
}
