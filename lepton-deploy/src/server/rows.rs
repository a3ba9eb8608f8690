//! Request rows, read straight from the JSON body into cells (no intermediate JSON tree: a
//! 784-pixel row is 784 numbers, and parsing them is most of a request's cost). Anything
//! that is not a row of numbers, strings and nulls is kept as a description, so that it is
//! refused with the row's number (422) rather than as unreadable JSON (400).

use std::collections::HashMap;
use std::fmt;

use serde::de::{Deserialize, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use lepton_core::Schema;

use crate::servable::Cell;

/// One value of a row as sent: a cell, or what was there instead (an array, an object).
pub(crate) enum CellIn {
    Cell(Cell),
    Nested(&'static str),
}

/// One row as sent.
pub(crate) enum RowIn {
    /// Values in the schema's column order.
    Array(Vec<CellIn>),
    /// Values by column name.
    Object(Vec<(String, CellIn)>),
    /// Something else (a number, a string, null).
    Other(&'static str),
}

struct CellVisitor;

impl<'de> Visitor<'de> for CellVisitor {
    type Value = CellIn;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a number, a string or null")
    }
    fn visit_f64<E>(self, v: f64) -> Result<CellIn, E> {
        Ok(CellIn::Cell(Cell::Number(v)))
    }
    fn visit_i64<E>(self, v: i64) -> Result<CellIn, E> {
        Ok(CellIn::Cell(Cell::Number(v as f64)))
    }
    fn visit_u64<E>(self, v: u64) -> Result<CellIn, E> {
        Ok(CellIn::Cell(Cell::Number(v as f64)))
    }
    fn visit_bool<E>(self, v: bool) -> Result<CellIn, E> {
        Ok(CellIn::Cell(Cell::Text(v.to_string())))
    }
    fn visit_str<E>(self, v: &str) -> Result<CellIn, E> {
        Ok(CellIn::Cell(Cell::Text(v.to_owned())))
    }
    fn visit_string<E>(self, v: String) -> Result<CellIn, E> {
        Ok(CellIn::Cell(Cell::Text(v)))
    }
    fn visit_unit<E>(self) -> Result<CellIn, E> {
        Ok(CellIn::Cell(Cell::Missing))
    }
    fn visit_none<E>(self) -> Result<CellIn, E> {
        Ok(CellIn::Cell(Cell::Missing))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<CellIn, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Ok(CellIn::Nested("an array"))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CellIn, A::Error> {
        while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
        Ok(CellIn::Nested("an object"))
    }
}

impl<'de> Deserialize<'de> for CellIn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CellVisitor)
    }
}

struct RowVisitor;

impl<'de> Visitor<'de> for RowVisitor {
    type Value = RowIn;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a row: an array of values or an object of column names to values")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<RowIn, A::Error> {
        let mut cells = Vec::with_capacity(seq.size_hint().unwrap_or(16));
        while let Some(cell) = seq.next_element()? {
            cells.push(cell);
        }
        Ok(RowIn::Array(cells))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RowIn, A::Error> {
        let mut cells = Vec::new();
        while let Some(entry) = map.next_entry::<String, CellIn>()? {
            cells.push(entry);
        }
        Ok(RowIn::Object(cells))
    }
    fn visit_f64<E>(self, _: f64) -> Result<RowIn, E> {
        Ok(RowIn::Other("a number"))
    }
    fn visit_i64<E>(self, _: i64) -> Result<RowIn, E> {
        Ok(RowIn::Other("a number"))
    }
    fn visit_u64<E>(self, _: u64) -> Result<RowIn, E> {
        Ok(RowIn::Other("a number"))
    }
    fn visit_bool<E>(self, _: bool) -> Result<RowIn, E> {
        Ok(RowIn::Other("a boolean"))
    }
    fn visit_str<E>(self, _: &str) -> Result<RowIn, E> {
        Ok(RowIn::Other("a string"))
    }
    fn visit_unit<E>(self) -> Result<RowIn, E> {
        Ok(RowIn::Other("null"))
    }
}

impl<'de> Deserialize<'de> for RowIn {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(RowVisitor)
    }
}

impl RowIn {
    /// The row's cells in schema order, or what is wrong with it.
    pub fn into_cells(self, schema: &Schema, cells: &mut Vec<Cell>) -> Result<(), String> {
        let take = |cell: CellIn, column: &str| match cell {
            CellIn::Cell(Cell::Number(x)) if !x.is_finite() => {
                Err(format!("column `{column}`: {x} is not a finite number"))
            }
            CellIn::Cell(c) => Ok(c),
            CellIn::Nested(what) => Err(format!(
                "column `{column}`: expected a number, a string or null, got {what}"
            )),
        };
        match self {
            RowIn::Array(values) => {
                if values.len() != schema.features.len() {
                    return Err(format!(
                        "{} values, the model takes {} columns ({})",
                        values.len(),
                        schema.features.len(),
                        preview(&schema.features)
                    ));
                }
                for (v, column) in values.into_iter().zip(&schema.features) {
                    cells.push(take(v, column)?);
                }
            }
            RowIn::Object(entries) => {
                let index: HashMap<&str, usize> = schema
                    .features
                    .iter()
                    .enumerate()
                    .map(|(i, c)| (c.as_str(), i))
                    .collect();
                let mut slots: Vec<Option<CellIn>> = Vec::new();
                slots.resize_with(schema.features.len(), || None);
                for (column, value) in entries {
                    let Some(&i) = index.get(column.as_str()) else {
                        return Err(format!(
                            "unknown column `{column}`; the model takes {}",
                            preview(&schema.features)
                        ));
                    };
                    if slots[i].replace(value).is_some() {
                        return Err(format!("column `{column}` given twice"));
                    }
                }
                for (slot, column) in slots.into_iter().zip(&schema.features) {
                    let value = slot.ok_or_else(|| format!("missing column `{column}`"))?;
                    cells.push(take(value, column)?);
                }
            }
            RowIn::Other(what) => {
                return Err(format!("expected an object or an array, got {what}"));
            }
        }
        Ok(())
    }
}

/// The first few column names, for messages.
pub(crate) fn preview(columns: &[String]) -> String {
    let shown: Vec<&str> = columns.iter().take(5).map(String::as_str).collect();
    if columns.len() > shown.len() {
        format!("{}, ... ({} in all)", shown.join(", "), columns.len())
    } else {
        shown.join(", ")
    }
}
