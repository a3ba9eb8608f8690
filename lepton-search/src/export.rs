//! Trials written out for other tools: CSV for spreadsheets and data frames, JSON for
//! programs (it reads back as `Vec<FrozenTrial>`).
//!
//! [`Study::export_csv`](crate::Study::export_csv) and
//! [`Study::export_json`](crate::Study::export_json) write a study's trials; these functions
//! write any trials, such as those a storage returns (the `lepton study export` command).

use std::borrow::Borrow;
use std::collections::BTreeSet;
use std::io::{BufWriter, Write};

use csv::Writer;

use serde::Serializer;

use lepton_core::{Error, FrozenTrial, ParamName, ParamValue, Result};

/// Writes `trials` as CSV (the `csv` crate's RFC 4180 quoting, `\n` line ends): a header, then one row per
/// trial in the order given.
///
/// Columns: `number`, `state` (`complete`, `pruned`, ...), `value` (empty when the trial has
/// none), one `param_<name>` column per parameter any trial suggested and one
/// `attr_<name>` column per user attribute any trial set (both sorted by name; a trial
/// without that parameter or attribute leaves the cell empty), then `intermediate_values`,
/// a JSON object from step to value. Numbers are written in full precision.
///
/// Errors: [`Error::Stage`] wrapping the writer's error.
pub fn write_csv<T: Borrow<FrozenTrial>>(writer: impl Write, trials: &[T]) -> Result<()> {
    let trials = || trials.iter().map(Borrow::borrow);
    let params: BTreeSet<&str> = trials()
        .flat_map(|t| t.params.keys().map(ParamName::as_str))
        .collect();
    let attrs: BTreeSet<&str> = trials()
        .flat_map(|t| t.user_attrs.keys().map(String::as_str))
        .collect();
    let mut out = Writer::from_writer(writer);
    let mut header = vec!["number".to_owned(), "state".into(), "value".into()];
    header.extend(params.iter().map(|n| format!("param_{n}")));
    header.extend(attrs.iter().map(|n| format!("attr_{n}")));
    header.push("intermediate_values".into());
    out.write_record(&header).map_err(Error::stage)?;
    let mut row = Vec::with_capacity(header.len());
    for t in trials() {
        row.clear();
        row.push(t.number.to_string());
        row.push(t.state.as_str().to_owned());
        row.push(t.value.map_or_else(String::new, |v| v.to_string()));
        row.extend(params.iter().map(|n| cell(t.params.get(*n))));
        row.extend(attrs.iter().map(|n| cell(t.user_attrs.get(*n))));
        row.push(serde_json::to_string(&t.intermediate_values).map_err(Error::stage)?);
        out.write_record(&row).map_err(Error::stage)?;
    }
    out.flush().map_err(Error::stage)
}

/// Writes `trials` as one JSON array of trial records (number, state, params,
/// distributions, value, intermediate values, user attributes), in the order given; it
/// deserializes back into `Vec<FrozenTrial>`.
///
/// Errors: [`Error::Stage`] wrapping the writer's I/O error.
pub fn write_json<T: Borrow<FrozenTrial>>(writer: impl Write, trials: &[T]) -> Result<()> {
    let mut json = serde_json::Serializer::new(BufWriter::new(writer));
    json.collect_seq(trials.iter().map(Borrow::<FrozenTrial>::borrow))
        .map_err(Error::stage)?;
    json.into_inner().flush().map_err(Error::stage)
}

/// A parameter or attribute value as a CSV cell: empty when absent, floats in full
/// precision (not the six decimals `Display` gives).
fn cell(value: Option<&ParamValue>) -> String {
    match value {
        None => String::new(),
        Some(ParamValue::Float(v)) => v.to_string(),
        Some(other) => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use lepton_core::TrialState;

    #[test]
    fn fields_with_separators_are_quoted() {
        let mut t = FrozenTrial::new(0);
        t.state = TrialState::Complete;
        t.value = Some(0.1);
        t.params
            .insert("c".into(), ParamValue::from("a,\"b\"\nc".to_owned()));
        t.params.insert("x".into(), ParamValue::Float(0.123456789));
        let mut out = Vec::new();
        write_csv(&mut out, &[t]).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "number,state,value,param_c,param_x,intermediate_values\n\
             0,complete,0.1,\"a,\"\"b\"\"\nc\",0.123456789,{}\n"
        );
    }

    #[test]
    fn an_empty_list_is_a_header_and_an_empty_array() {
        let none: [FrozenTrial; 0] = [];
        let mut csv = Vec::new();
        write_csv(&mut csv, &none).unwrap();
        assert_eq!(csv, b"number,state,value,intermediate_values\n");
        let mut json = Vec::new();
        write_json(&mut json, &none).unwrap();
        assert_eq!(json, b"[]");
    }
}
