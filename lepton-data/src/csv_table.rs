//! Reading any CSV into a typed [`Table`]: missing-value tokens, type inference, overrides.

use std::io::Read;

use crate::csv_loader::CsvLoader;
use crate::error::{DataError, Result};
use crate::table::{Column, ColumnType, Table};

impl CsvLoader {
    /// Reads the file into a typed [`Table`] (every column, the target included).
    pub fn read_table(&self) -> Result<Table> {
        let file = std::fs::File::open(&self.path).map_err(|source| DataError::Io {
            path: self.path.clone(),
            source,
        })?;
        self.read_table_from(file)
    }

    /// Reads CSV text from any reader into a typed [`Table`]. A column is boolean when every
    /// present value is `true`/`false`/`yes`/`no` (any case), numeric when every present value
    /// is a finite number, and categorical otherwise, unless
    /// [`with_column_type`](Self::with_column_type) says otherwise; a value that does not fit a
    /// forced type is an error naming its line and column.
    pub fn read_table_from(&self, reader: impl Read) -> Result<Table> {
        let mut csv = csv::ReaderBuilder::new()
            .has_headers(false)
            .flexible(true)
            .delimiter(self.delimiter)
            .from_reader(reader);
        let mut records = csv.records();
        let first = match records.next() {
            None => {
                return Err(DataError::Empty {
                    path: self.path.clone(),
                    what: "the file is empty",
                });
            }
            Some(r) => r.map_err(|e| self.csv_error(&e))?,
        };
        let width = first.len();
        let names: Vec<String> = if self.has_header {
            first.iter().map(|c| c.trim().to_owned()).collect()
        } else {
            (0..width).map(|i| format!("c{i}")).collect()
        };
        for name in self.types.keys() {
            if !names.contains(name) {
                return Err(DataError::InvalidInput(format!(
                    "{}: a type is given for column `{name}`, which the file does not have",
                    self.path
                )));
            }
        }
        let mut cells: Vec<Vec<Option<String>>> = vec![Vec::new(); width];
        let mut lines: Vec<u64> = Vec::new();
        let mut push =
            |record: &csv::StringRecord, cells: &mut Vec<Vec<Option<String>>>| -> Result<()> {
                let line = record.position().map_or(0, |p| p.line());
                if record.len() != width {
                    return Err(DataError::RaggedRow {
                        path: self.path.clone(),
                        line,
                        expected: width,
                        found: record.len(),
                    });
                }
                for (j, field) in record.iter().enumerate() {
                    let field = field.trim();
                    let missing = self
                        .missing_tokens
                        .iter()
                        .any(|t| t.eq_ignore_ascii_case(field));
                    cells[j].push((!missing).then(|| field.to_owned()));
                }
                lines.push(line);
                Ok(())
            };
        if !self.has_header {
            push(&first, &mut cells)?;
        }
        for record in records {
            let record = record.map_err(|e| self.csv_error(&e))?;
            push(&record, &mut cells)?;
        }
        if lines.is_empty() {
            return Err(DataError::Empty {
                path: self.path.clone(),
                what: "the file has no data rows",
            });
        }
        let mut columns = Vec::with_capacity(width);
        for (name, values) in names.into_iter().zip(cells) {
            let ty = self
                .types
                .get(&name)
                .copied()
                .unwrap_or_else(|| infer(&values));
            let column = convert(&values, ty).map_err(|row| {
                let value = values[row].clone().unwrap_or_default();
                match ty {
                    ColumnType::Numeric => DataError::NotNumeric {
                        path: self.path.clone(),
                        line: lines[row],
                        column: name.clone(),
                        value,
                    },
                    _ => DataError::InvalidInput(format!(
                        "{}, line {}, column `{name}`: `{value}` is not a boolean",
                        self.path, lines[row]
                    )),
                }
            })?;
            if column.missing() == column.len() {
                tracing::info!(column = %name, "column is entirely missing");
            }
            columns.push((name, column));
        }
        Table::new(self.path.clone(), columns)
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s.to_ascii_lowercase().as_str() {
        "true" | "yes" => Some(true),
        "false" | "no" => Some(false),
        _ => None,
    }
}

fn parse_number(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|x| x.is_finite())
}

fn infer(values: &[Option<String>]) -> ColumnType {
    let present = || values.iter().flatten();
    if present().next().is_none() {
        return ColumnType::Numeric;
    }
    if present().all(|v| parse_bool(v).is_some()) {
        ColumnType::Boolean
    } else if present().all(|v| parse_number(v).is_some()) {
        ColumnType::Numeric
    } else {
        ColumnType::Categorical
    }
}

/// Converts the texts to `ty`; on failure returns the row of the first bad value.
fn convert(values: &[Option<String>], ty: ColumnType) -> std::result::Result<Column, usize> {
    fn each<T>(
        values: &[Option<String>],
        parse: impl Fn(&str) -> Option<T>,
    ) -> std::result::Result<Vec<Option<T>>, usize> {
        values
            .iter()
            .enumerate()
            .map(|(row, v)| match v {
                None => Ok(None),
                Some(s) => parse(s).map(Some).ok_or(row),
            })
            .collect()
    }
    Ok(match ty {
        ColumnType::Numeric => Column::Numeric(each(values, parse_number)?),
        ColumnType::Boolean => Column::Boolean(each(values, parse_bool)?),
        ColumnType::Categorical => Column::Categorical(values.to_vec()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Table> {
        CsvLoader::new("t.csv").read_table_from(text.as_bytes())
    }

    #[test]
    fn infers_types_and_missing_values() {
        let t =
            read("age,city,member,score\n31,Paris,yes,1.5\nNA,Lyon,No,?\n40, ,TRUE,2\n").unwrap();
        assert_eq!(
            t.column("age"),
            Some(&Column::Numeric(vec![Some(31.0), None, Some(40.0)]))
        );
        assert_eq!(
            t.column("city"),
            Some(&Column::Categorical(vec![
                Some("Paris".into()),
                Some("Lyon".into()),
                None
            ]))
        );
        assert_eq!(
            t.column("member"),
            Some(&Column::Boolean(vec![Some(true), Some(false), Some(true)]))
        );
        assert_eq!(t.column("score").unwrap().missing(), 1);
    }

    #[test]
    fn headerless_files_quoting_and_delimiters() {
        let t = CsvLoader::new("t.csv")
            .with_header(false)
            .with_delimiter(b';')
            .read_table_from(&b"1;\"a;b\"\n2;c\n"[..])
            .unwrap();
        assert_eq!(t.names(), ["c0", "c1"]);
        assert_eq!(
            t.column("c1"),
            Some(&Column::Categorical(vec![
                Some("a;b".into()),
                Some("c".into())
            ]))
        );
    }

    #[test]
    fn overrides_win_and_are_checked() {
        let zip = CsvLoader::new("t.csv")
            .with_column_type("zip", ColumnType::Categorical)
            .read_table_from(&b"zip\n75001\n69002\n"[..])
            .unwrap();
        assert_eq!(
            zip.column("zip").unwrap().column_type(),
            ColumnType::Categorical
        );
        let e = CsvLoader::new("t.csv")
            .with_column_type("x", ColumnType::Numeric)
            .read_table_from(&b"x\n1\nabc\n"[..])
            .unwrap_err();
        assert!(matches!(e, DataError::NotNumeric { line: 3, .. }), "{e:?}");
        assert!(
            CsvLoader::new("t.csv")
                .with_column_type("nope", ColumnType::Numeric)
                .read_table_from(&b"x\n1\n"[..])
                .is_err()
        );
    }

    #[test]
    fn bad_files_are_typed_errors() {
        assert!(matches!(read(""), Err(DataError::Empty { .. })));
        assert!(matches!(read("a,b\n"), Err(DataError::Empty { .. })));
        assert!(matches!(
            read("a,b\n1,2\n3\n"),
            Err(DataError::RaggedRow { line: 3, .. })
        ));
        assert!(matches!(
            CsvLoader::new("t.csv").read_table_from(&b"a\n\xff\n"[..]),
            Err(DataError::Csv { .. })
        ));
    }

    #[test]
    fn every_shared_table_loads_with_its_shape() {
        let Ok(dir) = std::env::var("LEPTON_DATA_DIR") else {
            eprintln!("LEPTON_DATA_DIR unset: skipping the shared tables");
            return;
        };
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("..")
            .join(dir);
        for (name, rows, cols) in [
            ("iris", 150, 5),
            ("wine", 178, 14),
            ("breast_cancer", 569, 31),
            ("digits", 1797, 65),
            ("diabetes", 442, 11),
        ] {
            let t = CsvLoader::new(dir.join(format!("tabular/{name}.csv")))
                .read_table()
                .unwrap();
            assert_eq!((t.n_rows(), t.names().len()), (rows, cols), "{name}");
            assert!(
                t.columns()
                    .iter()
                    .all(|c| c.column_type() == ColumnType::Numeric),
                "{name}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = CsvLoader::new("fuzz").read_table_from(&bytes[..]);
        }
    }
}
