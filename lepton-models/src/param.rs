//! Reading a trial's parameters into a model configuration: the loop, the type checks and the
//! refusals every configuration's `with_params` shares.

use std::borrow::Borrow;
use std::collections::BTreeMap;

use lepton_core::{Error, ParamValue};

use crate::error::{ModelError, Result};

/// The error for hyper-parameter `name`.
pub(crate) fn invalid(name: &str, reason: String) -> ModelError {
    ModelError::Core(Error::InvalidParameter {
        name: name.to_owned(),
        reason,
    })
}

fn wrong_type(name: &str, value: &ParamValue) -> ModelError {
    invalid(name, format!("`{value}` has the wrong type"))
}

/// `value` of parameter `name` as a count.
pub(crate) fn usize_value(name: &str, value: &ParamValue) -> Result<usize> {
    value
        .as_i64()
        .and_then(|v| usize::try_from(v).ok())
        .ok_or_else(|| wrong_type(name, value))
}

/// `value` of parameter `name` as a real number.
pub(crate) fn f64_value(name: &str, value: &ParamValue) -> Result<f64> {
    value.as_f64().ok_or_else(|| wrong_type(name, value))
}

/// Hands every `(name, value)` of `params` to `set`, which stores it and says whether it knew
/// the name; a name it did not know is refused as not a parameter of `model`.
pub(crate) fn apply<K: Borrow<str>>(
    params: &BTreeMap<K, ParamValue>,
    model: &str,
    mut set: impl FnMut(&str, &ParamValue) -> Result<bool>,
) -> Result<()> {
    for (name, value) in params {
        let name: &str = name.borrow();
        if !set(name, value)? {
            return Err(invalid(name, format!("not a parameter of the {model}")));
        }
    }
    Ok(())
}
