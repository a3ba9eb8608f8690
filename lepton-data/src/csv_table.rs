//! Reading any CSV into a typed [`Table`]: missing-value tokens, type inference, overrides.

use std::io::Read;

use rayon::prelude::*;

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
        let mut record = csv::ByteRecord::new();
        let more = csv
            .read_byte_record(&mut record)
            .map_err(|e| self.csv_error(&e))?;
        if !more {
            return Err(DataError::Empty {
                path: self.path.clone(),
                what: "the file is empty",
            });
        }
        let width = record.len();
        let mut columns: Vec<RawColumn> = (0..width).map(|_| RawColumn::default()).collect();
        let mut lines: Vec<u64> = Vec::new();
        let names: Vec<String> = if self.has_header {
            let line = record.position().map_or(1, |p| p.line());
            (0..width)
                .map(|j| Ok(self.utf8(&record[j], line, j)?.trim().to_owned()))
                .collect::<Result<_>>()?
        } else {
            self.push_row(&record, width, &mut columns, &mut lines)?;
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
        while csv
            .read_byte_record(&mut record)
            .map_err(|e| self.csv_error(&e))?
        {
            self.push_row(&record, width, &mut columns, &mut lines)?;
        }
        if lines.is_empty() {
            return Err(DataError::Empty {
                path: self.path.clone(),
                what: "the file has no data rows",
            });
        }
        // Typing and parsing is per column: spread the columns over the cores (rayon's pool,
        // which runs them on the calling thread where threads cannot be spawned, as on
        // WebAssembly).
        let typed: Vec<Result<Column>> = names
            .par_iter()
            .zip(&columns)
            .map(|(name, raw)| self.type_column(name, raw, &lines))
            .collect();
        let mut out = Vec::with_capacity(width);
        for (name, column) in names.into_iter().zip(typed) {
            let column = column?;
            if column.missing() == column.len() {
                tracing::info!(column = %name, "column is entirely missing");
            }
            out.push((name, column));
        }
        Table::new(self.path.clone(), out)
    }

    fn utf8<'a>(&self, bytes: &'a [u8], line: u64, column: usize) -> Result<&'a str> {
        std::str::from_utf8(bytes).map_err(|e| DataError::Csv {
            path: self.path.clone(),
            line,
            message: format!("field {} is not valid UTF-8: {e}", column + 1),
        })
    }

    fn push_row(
        &self,
        record: &csv::ByteRecord,
        width: usize,
        columns: &mut [RawColumn],
        lines: &mut Vec<u64>,
    ) -> Result<()> {
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
            let text = self.utf8(field, line, j)?.trim();
            let missing = self
                .missing_tokens
                .iter()
                .any(|t| t.eq_ignore_ascii_case(text));
            columns[j].push(if missing { None } else { Some(text) });
        }
        lines.push(line);
        Ok(())
    }

    fn type_column(&self, name: &str, raw: &RawColumn, lines: &[u64]) -> Result<Column> {
        let ty = self.types.get(name).copied().unwrap_or_else(|| infer(raw));
        convert(raw, ty).map_err(|row| {
            let value = raw.get(row).unwrap_or_default().to_owned();
            match ty {
                ColumnType::Numeric => DataError::NotNumeric {
                    path: self.path.clone(),
                    line: lines[row],
                    column: name.to_owned(),
                    value,
                },
                _ => DataError::InvalidInput(format!(
                    "{}, line {}, column `{name}`: `{value}` is not a boolean",
                    self.path, lines[row]
                )),
            }
        })
    }
}

/// One column's texts in a single buffer (no allocation per cell); `None` is missing.
#[derive(Default)]
struct RawColumn {
    text: String,
    /// End offset of each cell in `text`, or `None` for a missing cell.
    ends: Vec<Option<usize>>,
}

impl RawColumn {
    fn push(&mut self, cell: Option<&str>) {
        match cell {
            None => self.ends.push(None),
            Some(s) => {
                self.text.push_str(s);
                self.ends.push(Some(self.text.len()));
            }
        }
    }

    fn iter(&self) -> impl Iterator<Item = Option<&str>> {
        let mut start = 0usize;
        self.ends.iter().map(move |end| {
            end.map(|e| {
                let s = &self.text[start..e];
                start = e;
                s
            })
        })
    }

    fn get(&self, row: usize) -> Option<&str> {
        self.iter().nth(row).flatten()
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    let is = |word: &str| s.eq_ignore_ascii_case(word);
    if is("true") || is("yes") {
        Some(true)
    } else if is("false") || is("no") {
        Some(false)
    } else {
        None
    }
}

fn parse_number(s: &str) -> Option<f64> {
    s.parse::<f64>().ok().filter(|x| x.is_finite())
}

fn infer(values: &RawColumn) -> ColumnType {
    let mut present = values.iter().flatten().peekable();
    let Some(first) = present.peek().copied() else {
        return ColumnType::Numeric;
    };
    if parse_bool(first).is_some() && values.iter().flatten().all(|v| parse_bool(v).is_some()) {
        ColumnType::Boolean
    } else if values.iter().flatten().all(|v| parse_number(v).is_some()) {
        ColumnType::Numeric
    } else {
        ColumnType::Categorical
    }
}

/// Converts the texts to `ty`; on failure returns the row of the first bad value.
fn convert(values: &RawColumn, ty: ColumnType) -> std::result::Result<Column, usize> {
    fn each<T>(
        values: &RawColumn,
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
        ColumnType::Categorical => {
            Column::Categorical(values.iter().map(|v| v.map(str::to_owned)).collect())
        }
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
        let Some(dir) = lepton_test_support::env_or_skip("LEPTON_DATA_DIR", "the shared tables")
        else {
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
        #![proptest_config(proptest::test_runner::Config::with_cases(2000))]
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(proptest::num::u8::ANY, 0..200)) {
            let _ = CsvLoader::new("fuzz").read_table_from(&bytes[..]);
        }
    }
}
