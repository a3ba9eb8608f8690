//! Parameter values and the typed distributions they are drawn from.

use serde::{Deserialize, Serialize};
use std::fmt;

use crate::error::{Error, Result};

/// One hyper-parameter value, as a trial records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ParamValue {
    /// A boolean choice.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A real number.
    Float(f64),
    /// A string choice.
    Str(String),
}

impl ParamValue {
    /// The value as `f64` where it is numeric.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            ParamValue::Float(v) => Some(*v),
            ParamValue::Int(v) => Some(*v as f64),
            _ => None,
        }
    }

    /// The value as `i64` where it is an integer.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            ParamValue::Int(v) => Some(*v),
            _ => None,
        }
    }

    /// The value as `&str` where it is a string.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            ParamValue::Str(v) => Some(v),
            _ => None,
        }
    }
}

impl fmt::Display for ParamValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ParamValue::Bool(v) => write!(f, "{v}"),
            ParamValue::Int(v) => write!(f, "{v}"),
            ParamValue::Float(v) => write!(f, "{v:.6}"),
            ParamValue::Str(v) => f.write_str(v),
        }
    }
}

impl From<f64> for ParamValue {
    fn from(v: f64) -> Self {
        ParamValue::Float(v)
    }
}
impl From<i64> for ParamValue {
    fn from(v: i64) -> Self {
        ParamValue::Int(v)
    }
}
impl From<bool> for ParamValue {
    fn from(v: bool) -> Self {
        ParamValue::Bool(v)
    }
}
impl From<&str> for ParamValue {
    fn from(v: &str) -> Self {
        ParamValue::Str(v.to_owned())
    }
}
impl From<String> for ParamValue {
    fn from(v: String) -> Self {
        ParamValue::Str(v)
    }
}

/// How a numeric range is explored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scale {
    /// Uniform over the range.
    #[default]
    Linear,
    /// Uniform over the logarithm of the range (learning rates, widths).
    Log,
}

/// Where a parameter's values come from. Every sampler reads these records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Distribution {
    /// Real numbers in `[low, high]`, optionally on a grid of `step`.
    Float {
        /// Lower bound (inclusive).
        low: f64,
        /// Upper bound (inclusive).
        high: f64,
        /// Linear or logarithmic.
        scale: Scale,
        /// Optional grid step (linear scale only).
        step: Option<f64>,
    },
    /// Integers in `[low, high]` on a grid of `step`.
    Int {
        /// Lower bound (inclusive).
        low: i64,
        /// Upper bound (inclusive).
        high: i64,
        /// Linear or logarithmic.
        scale: Scale,
        /// Grid step, at least 1 (must be 1 on a log scale).
        step: i64,
    },
    /// One of a list of choices.
    Categorical {
        /// The choices, all distinct.
        choices: Vec<ParamValue>,
    },
}

impl Distribution {
    /// Real numbers in `[low, high]`.
    pub fn float(low: f64, high: f64, scale: Scale) -> Self {
        Distribution::Float {
            low,
            high,
            scale,
            step: None,
        }
    }

    /// Integers in `[low, high]`.
    pub fn int(low: i64, high: i64, scale: Scale) -> Self {
        Distribution::Int {
            low,
            high,
            scale,
            step: 1,
        }
    }

    /// One of `choices`.
    pub fn categorical<T: Into<ParamValue>>(choices: impl IntoIterator<Item = T>) -> Self {
        Distribution::Categorical {
            choices: choices.into_iter().map(Into::into).collect(),
        }
    }

    /// Checks that the distribution can be sampled; `name` is used in the error.
    pub fn validate(&self, name: &str) -> Result<()> {
        let bad = |reason: String| {
            Err(Error::InvalidDistribution {
                name: name.to_owned(),
                reason,
            })
        };
        match self {
            Distribution::Float {
                low,
                high,
                scale,
                step,
            } => {
                if !low.is_finite() || !high.is_finite() {
                    return bad(format!("bounds must be finite, got [{low}, {high}]"));
                }
                if low > high {
                    return bad(format!("empty range: low {low} > high {high}"));
                }
                if *scale == Scale::Log && *low <= 0.0 {
                    return bad(format!("a log range must be above 0, got low {low}"));
                }
                if let Some(step) = step {
                    if !(step.is_finite() && *step > 0.0) {
                        return bad(format!("step must be positive, got {step}"));
                    }
                    if *scale == Scale::Log {
                        return bad("a step cannot be combined with a log scale".into());
                    }
                }
            }
            Distribution::Int {
                low,
                high,
                scale,
                step,
            } => {
                if low > high {
                    return bad(format!("empty range: low {low} > high {high}"));
                }
                if *scale == Scale::Log && *low <= 0 {
                    return bad(format!("a log range must be above 0, got low {low}"));
                }
                if *step < 1 {
                    return bad(format!("step must be at least 1, got {step}"));
                }
                if *scale == Scale::Log && *step != 1 {
                    return bad("a step cannot be combined with a log scale".into());
                }
            }
            Distribution::Categorical { choices } => {
                if choices.is_empty() {
                    return bad("no choices".into());
                }
                for (i, c) in choices.iter().enumerate() {
                    if let ParamValue::Float(v) = c
                        && !v.is_finite()
                    {
                        return bad(format!("choice {v} is not finite"));
                    }
                    if choices[..i].contains(c) {
                        return bad(format!("choice `{c}` appears twice"));
                    }
                }
            }
        }
        Ok(())
    }

    /// Whether `value` is a possible draw of this distribution.
    pub fn contains(&self, value: &ParamValue) -> bool {
        match (self, value) {
            (
                Distribution::Float {
                    low, high, step, ..
                },
                ParamValue::Float(v),
            ) => {
                if !(v.is_finite() && low <= v && v <= high) {
                    return false;
                }
                match step {
                    None => true,
                    Some(s) => {
                        let k = ((v - low) / s).round();
                        (low + k * s - v).abs() <= 1e-9 * s.max(1.0)
                    }
                }
            }
            (
                Distribution::Int {
                    low, high, step, ..
                },
                ParamValue::Int(v),
            ) => low <= v && v <= high && (v - low) % step == 0,
            (Distribution::Categorical { choices }, v) => choices.contains(v),
            _ => false,
        }
    }

    /// The value's position on the sampler's internal real axis: the number itself for
    /// numeric parameters, the choice index for categorical ones.
    pub fn to_internal(&self, value: &ParamValue) -> Option<f64> {
        match self {
            Distribution::Float { .. } | Distribution::Int { .. } => value.as_f64(),
            Distribution::Categorical { choices } => {
                choices.iter().position(|c| c == value).map(|i| i as f64)
            }
        }
    }

    /// The value at position `x` of the internal real axis, snapped onto the distribution
    /// (clamped to its bounds, rounded to its step or choice index).
    pub fn from_internal(&self, x: f64) -> ParamValue {
        match self {
            Distribution::Float {
                low, high, step, ..
            } => {
                let x = if x.is_finite() { x } else { *low };
                let x = match step {
                    Some(s) => {
                        let n = ((high - low) / s).floor();
                        low + ((x - low) / s).round().clamp(0.0, n) * s
                    }
                    None => x,
                };
                ParamValue::Float(x.clamp(*low, *high))
            }
            Distribution::Int {
                low, high, step, ..
            } => {
                let x = if x.is_finite() { x } else { *low as f64 };
                let n = (high - low) / step;
                let k = ((x - *low as f64) / *step as f64)
                    .round()
                    .clamp(0.0, n as f64) as i64;
                ParamValue::Int(low + k * step)
            }
            Distribution::Categorical { choices } => {
                let last = choices.len().saturating_sub(1);
                let i = if x.is_finite() {
                    x.round().clamp(0.0, last as f64) as usize
                } else {
                    0
                };
                choices.get(i).cloned().unwrap_or(ParamValue::Bool(false))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn validation_rejects_bad_ranges() {
        assert!(
            Distribution::float(1.0, 0.0, Scale::Linear)
                .validate("x")
                .is_err()
        );
        assert!(
            Distribution::float(0.0, 1.0, Scale::Log)
                .validate("x")
                .is_err()
        );
        assert!(
            Distribution::float(f64::NAN, 1.0, Scale::Linear)
                .validate("x")
                .is_err()
        );
        assert!(Distribution::int(0, 10, Scale::Log).validate("x").is_err());
        assert!(
            Distribution::categorical(Vec::<ParamValue>::new())
                .validate("x")
                .is_err()
        );
        assert!(Distribution::categorical(["a", "a"]).validate("x").is_err());
        assert!(
            Distribution::float(1e-5, 1e-1, Scale::Log)
                .validate("x")
                .is_ok()
        );
        assert!(Distribution::int(1, 8, Scale::Log).validate("x").is_ok());
    }

    #[test]
    fn serde_round_trip() {
        let d = Distribution::Float {
            low: 0.0,
            high: 1.0,
            scale: Scale::Linear,
            step: Some(0.25),
        };
        let json = serde_json::to_string(&d).unwrap();
        assert_eq!(serde_json::from_str::<Distribution>(&json).unwrap(), d);
        let c = Distribution::categorical([ParamValue::from("relu"), ParamValue::from(3i64)]);
        let json = serde_json::to_string(&c).unwrap();
        assert_eq!(serde_json::from_str::<Distribution>(&json).unwrap(), c);
    }

    proptest! {
        #[test]
        fn from_internal_lands_inside(low in -1e3f64..1e3, width in 0.0f64..1e3, x in -1e4f64..1e4) {
            let d = Distribution::float(low, low + width, Scale::Linear);
            prop_assert!(d.contains(&d.from_internal(x)));
            let stepped = Distribution::Float { low, high: low + width, scale: Scale::Linear, step: Some(0.5) };
            prop_assert!(stepped.contains(&stepped.from_internal(x)));
        }

        #[test]
        fn int_from_internal_lands_inside(low in -100i64..100, width in 0i64..100, step in 1i64..7, x in -1e3f64..1e3) {
            let d = Distribution::Int { low, high: low + width, scale: Scale::Linear, step };
            prop_assert!(d.contains(&d.from_internal(x)));
        }

        #[test]
        fn categorical_internal_round_trips(n in 1usize..10, pick in 0usize..10) {
            let d = Distribution::categorical((0..n as i64).collect::<Vec<_>>());
            let v = ParamValue::Int((pick % n) as i64);
            let x = d.to_internal(&v).unwrap();
            prop_assert_eq!(d.from_internal(x), v);
        }
    }
}
