//! The unit cube that model-based samplers (GP, CMA-ES, Sobol) work in.
//!
//! Every numeric parameter maps to `[0, 1]`: linearly, or through the logarithm for a log
//! scale. Integers and stepped floats are widened by half a step at each end, so every grid
//! value owns an equal share of the interval and rounding back is unbiased. Categorical
//! parameters have no order and are not mapped here.

use lepton_core::{Distribution, ParamValue, Scale};

/// The interval, on the transformed (linear or log) axis, that `[0, 1]` stands for; `None`
/// for a categorical distribution.
fn span(d: &Distribution) -> Option<(f64, f64, Scale)> {
    match *d {
        Distribution::Float {
            low,
            high,
            scale,
            step,
        } => {
            let half = step.map_or(0.0, |s| s / 2.0);
            let (a, b) = (low - half, high + half);
            Some(match scale {
                Scale::Log => (a.ln(), b.ln(), scale),
                Scale::Linear => (a, b, scale),
            })
        }
        Distribution::Int {
            low,
            high,
            scale,
            step,
        } => {
            let half = step as f64 / 2.0;
            let (a, b) = (low as f64 - half, high as f64 + half);
            Some(match scale {
                // `low >= 1` on a log scale, so `low - 0.5 > 0`.
                Scale::Log => (a.ln(), b.ln(), scale),
                Scale::Linear => (a, b, scale),
            })
        }
        Distribution::Categorical { .. } => None,
    }
}

/// Whether a distribution is numeric (has a place in the unit cube).
pub(crate) fn is_numeric(d: &Distribution) -> bool {
    !matches!(d, Distribution::Categorical { .. })
}

/// The position of `value` in `[0, 1]`; `None` for categorical distributions or values of
/// the wrong type.
pub(crate) fn to_unit(d: &Distribution, value: &ParamValue) -> Option<f64> {
    let (a, b, scale) = span(d)?;
    let x = value.as_f64()?;
    let x = match scale {
        Scale::Log => x.ln(),
        Scale::Linear => x,
    };
    if b > a {
        Some(((x - a) / (b - a)).clamp(0.0, 1.0))
    } else {
        Some(0.5)
    }
}

/// The value at position `u` of `[0, 1]` (clamped), snapped onto the distribution's grid.
/// A categorical distribution reads `u` as a fraction of its choices.
pub(crate) fn from_unit(d: &Distribution, u: f64) -> ParamValue {
    let u = if u.is_finite() {
        u.clamp(0.0, 1.0)
    } else {
        0.5
    };
    match span(d) {
        Some((a, b, scale)) => {
            let x = a + u * (b - a);
            let x = match scale {
                Scale::Log => x.exp(),
                Scale::Linear => x,
            };
            d.from_internal(x)
        }
        None => {
            let n = match d {
                Distribution::Categorical { choices } => choices.len(),
                _ => 1,
            };
            d.from_internal((u * n as f64).floor().min(n as f64 - 1.0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn from_unit_lands_inside_and_round_trips(u in 0.0f64..=1.0, low in 1i64..50, w in 0i64..60) {
            let ds = [
                Distribution::float(-3.0, 7.0, Scale::Linear),
                Distribution::float(1e-5, 1e-1, Scale::Log),
                Distribution::Float { low: 0.0, high: 1.0, scale: Scale::Linear, step: Some(0.25) },
                Distribution::int(low, low + w, Scale::Log),
                Distribution::Int { low, high: low + w, scale: Scale::Linear, step: 3 },
                Distribution::categorical(["a", "b", "c"]),
            ];
            for d in &ds {
                let v = from_unit(d, u);
                prop_assert!(d.contains(&v), "{v:?} outside {d:?}");
                if is_numeric(d) {
                    let back = from_unit(d, to_unit(d, &v).unwrap());
                    prop_assert_eq!(back, v);
                }
            }
        }
    }

    #[test]
    fn every_integer_owns_an_equal_share() {
        let d = Distribution::int(0, 3, Scale::Linear);
        let counts = (0..400).fold([0; 4], |mut c, i| {
            let v = from_unit(&d, (i as f64 + 0.5) / 400.0).as_i64().unwrap();
            c[v as usize] += 1;
            c
        });
        assert_eq!(counts, [100; 4]);
    }
}
