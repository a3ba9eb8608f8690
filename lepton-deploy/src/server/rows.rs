//! Request rows, read straight from the JSON body into cells (no intermediate JSON tree: a
//! 784-pixel row is 784 numbers, and parsing them is most of a request's cost). Anything
//! that is not a row of numbers, strings and nulls is kept as a description, so that it is
//! refused with the row's number (422) rather than as unreadable JSON (400).
//!
//! The model's limits are applied while parsing, not after: a row keeps at most as many
//! cells as the model has columns and a request at most `max_rows` rows; what is beyond
//! them is only counted (and then refused), so a body of millions of values costs its
//! bytes, not millions of cells.

use std::collections::HashMap;
use std::fmt;

use serde::de::{
    DeserializeSeed, Deserializer, Error as _, IgnoredAny, MapAccess, SeqAccess, Visitor,
};

use lepton_core::Schema;

use crate::servable::Cell;

/// One value of a row as sent: a cell, or what was there instead (an array, an object).
pub(crate) enum CellIn {
    Cell(Cell),
    Nested(&'static str),
}

/// One row as sent.
pub(crate) enum RowIn {
    /// Values in the schema's column order; `extra` more were sent than the model has
    /// columns (counted, not kept).
    Array { cells: Vec<CellIn>, extra: usize },
    /// Values by column name; `extra` more entries were sent than the model has columns.
    Object {
        entries: Vec<(String, CellIn)>,
        extra: usize,
    },
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

/// What a request may hold: the model's column count and the most rows.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub columns: usize,
    pub max_rows: usize,
}

/// A request's body: `{"rows": [...]}`, and with labels `{"rows": [...], "labels": [...]}`.
/// For a model of one text column, `{"texts": ["...", ...]}` says the same as rows of one
/// value each.
pub(crate) struct RequestIn {
    pub rows: Bounded<RowIn>,
    pub labels: Option<Bounded<CellIn>>,
}

/// The first `max_rows` items of a list as sent, and how many more there were.
pub(crate) struct Bounded<T> {
    pub items: Vec<T>,
    pub extra: usize,
}

impl<T> Bounded<T> {
    /// How many items were sent.
    pub fn sent(&self) -> usize {
        self.items.len() + self.extra
    }
}

/// Parses a request body within `limits`; `labels` says whether the `labels` field is
/// expected (and required). Errors are serde_json's (a data error for a wrong shape).
pub(crate) fn parse_request(
    body: &[u8],
    limits: Limits,
    labels: bool,
) -> Result<RequestIn, serde_json::Error> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let request = RequestSeed { limits, labels }.deserialize(&mut de)?;
    de.end()?;
    Ok(request)
}

struct RequestSeed {
    limits: Limits,
    labels: bool,
}

impl<'de> DeserializeSeed<'de> for RequestSeed {
    type Value = RequestIn;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RequestIn, D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for RequestSeed {
    type Value = RequestIn;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.labels {
            f.write_str(r#"an object {"rows": [...], "labels": [...]}"#)
        } else {
            f.write_str(r#"an object {"rows": [...]} or {"texts": [...]}"#)
        }
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RequestIn, A::Error> {
        let fields: &[&str] = if self.labels {
            &["rows", "labels"]
        } else {
            &["rows", "texts"]
        };
        let (mut rows, mut labels) = (None, None);
        while let Some(key) = map.next_key::<String>()? {
            match key.as_str() {
                "rows" if rows.is_none() => {
                    rows = Some(map.next_value_seed(ListSeed {
                        max: self.limits.max_rows,
                        item: RowSeed {
                            columns: self.limits.columns,
                        },
                    })?);
                }
                "texts" if !self.labels && rows.is_none() => {
                    let Bounded { items, extra } = map.next_value_seed(ListSeed {
                        max: self.limits.max_rows,
                        item: CellSeed,
                    })?;
                    let items = items
                        .into_iter()
                        .map(|cell| RowIn::Array {
                            cells: vec![cell],
                            extra: 0,
                        })
                        .collect();
                    rows = Some(Bounded { items, extra });
                }
                "rows" | "texts" if !self.labels => {
                    return Err(A::Error::custom("give `rows` or `texts`, once, not both"));
                }
                "labels" if self.labels && labels.is_none() => {
                    labels = Some(map.next_value_seed(ListSeed {
                        max: self.limits.max_rows,
                        item: CellSeed,
                    })?);
                }
                "rows" | "labels" if fields.contains(&key.as_str()) => {
                    return Err(A::Error::custom(format!("duplicate field `{key}`")));
                }
                other => return Err(A::Error::unknown_field(other, fields)),
            }
        }
        let rows = rows.ok_or_else(|| A::Error::missing_field("rows"))?;
        if self.labels && labels.is_none() {
            return Err(A::Error::missing_field("labels"));
        }
        Ok(RequestIn { rows, labels })
    }
}

/// A list of which the first `max` items are kept.
struct ListSeed<S> {
    max: usize,
    item: S,
}

impl<'de, S> DeserializeSeed<'de> for ListSeed<S>
where
    S: DeserializeSeed<'de> + Copy,
{
    type Value = Bounded<S::Value>;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de, S> Visitor<'de> for ListSeed<S>
where
    S: DeserializeSeed<'de> + Copy,
{
    type Value = Bounded<S::Value>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a list")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(self.max).min(64));
        let mut extra = 0;
        loop {
            if items.len() < self.max {
                match seq.next_element_seed(self.item)? {
                    Some(item) => items.push(item),
                    None => break,
                }
            } else if seq.next_element::<IgnoredAny>()?.is_some() {
                extra += 1;
            } else {
                break;
            }
        }
        Ok(Bounded { items, extra })
    }
}

#[derive(Clone, Copy)]
struct CellSeed;

impl<'de> DeserializeSeed<'de> for CellSeed {
    type Value = CellIn;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<CellIn, D::Error> {
        d.deserialize_any(CellVisitor)
    }
}

/// A row of which at most `columns` values are kept.
#[derive(Clone, Copy)]
struct RowSeed {
    columns: usize,
}

impl<'de> DeserializeSeed<'de> for RowSeed {
    type Value = RowIn;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<RowIn, D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for RowSeed {
    type Value = RowIn;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a row: an array of values or an object of column names to values")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<RowIn, A::Error> {
        let Bounded { items, extra } = ListSeed {
            max: self.columns,
            item: CellSeed,
        }
        .visit_seq(seq)?;
        Ok(RowIn::Array {
            cells: items,
            extra,
        })
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<RowIn, A::Error> {
        let mut entries = Vec::new();
        let mut extra = 0;
        while let Some(column) = map.next_key::<String>()? {
            if entries.len() < self.columns {
                entries.push((column, map.next_value_seed(CellSeed)?));
            } else {
                map.next_value::<IgnoredAny>()?;
                extra += 1;
            }
        }
        Ok(RowIn::Object { entries, extra })
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
            RowIn::Array {
                cells: values,
                extra,
            } => {
                if values.len() + extra != schema.features.len() {
                    return Err(format!(
                        "{} values, the model takes {} columns ({})",
                        values.len() + extra,
                        schema.features.len(),
                        preview(&schema.features)
                    ));
                }
                for (v, column) in values.into_iter().zip(&schema.features) {
                    cells.push(take(v, column)?);
                }
            }
            RowIn::Object { entries, extra } => {
                if extra > 0 {
                    return Err(format!(
                        "{} columns given, the model takes {} ({})",
                        entries.len() + extra,
                        schema.features.len(),
                        preview(&schema.features)
                    ));
                }
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
