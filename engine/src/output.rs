//! Result rows as text: aligned tables for people, RFC 4180 CSV and JSON lines for programs.

use std::io::Write;
use std::sync::Arc;

use datafusion::arrow::array::{Array, RecordBatch};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::json::LineDelimitedWriter;
use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
use datafusion::arrow::util::pretty::pretty_format_batches;

use crate::error::{Error, Result};

/// How results are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
}

impl std::str::FromStr for OutputFormat {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "table" => Ok(Self::Table),
            "csv" => Ok(Self::Csv),
            "json" => Ok(Self::Json),
            other => Err(Error::InvalidInput(format!("unknown output format '{other}' (table, csv or json)"))),
        }
    }
}

/// Writes batches of one result as they arrive; tables are laid out once all rows are in.
pub struct ResultWriter<W: Write> {
    out: W,
    format: OutputFormat,
    schema: SchemaRef,
    buffered: Vec<RecordBatch>,
    header_written: bool,
}

fn io(e: std::io::Error) -> Error {
    Error::Internal(format!("cannot write results: {e}"))
}

impl<W: Write> ResultWriter<W> {
    pub fn new(out: W, format: OutputFormat, schema: SchemaRef) -> Self {
        Self { out, format, schema, buffered: vec![], header_written: false }
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<()> {
        match self.format {
            OutputFormat::Table => self.buffered.push(batch.clone()),
            OutputFormat::Csv => {
                self.csv_header()?;
                write_csv_rows(&mut self.out, batch)?;
            }
            OutputFormat::Json => {
                let mut writer = LineDelimitedWriter::new(&mut self.out);
                writer.write(batch).map_err(|e| Error::Internal(format!("cannot write JSON: {e}")))?;
                writer.finish().map_err(|e| Error::Internal(format!("cannot write JSON: {e}")))?;
            }
        }
        Ok(())
    }

    fn csv_header(&mut self) -> Result<()> {
        if !self.header_written {
            self.header_written = true;
            let names: Vec<String> = self.schema.fields().iter().map(|f| csv_field(f.name())).collect();
            writeln!(self.out, "{}", names.join(",")).map_err(io)?;
        }
        Ok(())
    }

    /// Ends the result (a CSV of zero rows still has its header) and returns the writer.
    pub fn finish(mut self) -> Result<W> {
        match self.format {
            OutputFormat::Table if !self.schema.fields().is_empty() => {
                let table = if self.buffered.is_empty() {
                    pretty_format_batches(&[RecordBatch::new_empty(Arc::clone(&self.schema))])
                } else {
                    pretty_format_batches(&self.buffered)
                }
                .map_err(|e| Error::Internal(format!("cannot format table: {e}")))?;
                writeln!(self.out, "{table}").map_err(io)?;
            }
            OutputFormat::Csv => self.csv_header()?,
            _ => {}
        }
        self.out.flush().map_err(io)?;
        Ok(self.out)
    }
}

/// Bytes for people: `512 B`, `1.50 KiB`, `10.00 MiB`.
pub fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.2} {}", UNITS[unit])
}

/// One CSV field: quoted when it must be, and always when empty so that "" (empty string)
/// stays distinct from an unquoted empty field (NULL).
pub fn csv_field(value: &str) -> String {
    if value.is_empty() || value.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", value.replace('"', "\"\""))
    } else {
        value.to_string()
    }
}

fn write_csv_rows(out: &mut impl Write, batch: &RecordBatch) -> Result<()> {
    let options = FormatOptions::default();
    let formatters = batch
        .columns()
        .iter()
        .map(|c| ArrayFormatter::try_new(c.as_ref(), &options))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| Error::Internal(format!("cannot format value: {e}")))?;
    // Logical nulls, so a NULL-typed column (`SELECT NULL`) prints as NULL too.
    let nulls: Vec<_> = batch.columns().iter().map(|c| c.logical_nulls()).collect();
    let mut line = String::new();
    for row in 0..batch.num_rows() {
        line.clear();
        for (i, (nulls, formatter)) in nulls.iter().zip(&formatters).enumerate() {
            if i > 0 {
                line.push(',');
            }
            if nulls.as_ref().is_none_or(|n| n.is_valid(row)) {
                line.push_str(&csv_field(&formatter.value(row).to_string()));
            }
        }
        line.push('\n');
        out.write_all(line.as_bytes()).map_err(io)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use std::sync::Arc;

    fn batch() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("note", DataType::Utf8, true),
        ]));
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from(vec![Some(1), None, Some(3), Some(4)])),
                Arc::new(StringArray::from(vec![Some("a,b"), Some(""), None, Some("say \"hi\"\nbye")])),
            ],
        )
        .unwrap()
    }

    #[test]
    fn csv_keeps_null_and_empty_apart() {
        let b = batch();
        let mut w = ResultWriter::new(Vec::new(), OutputFormat::Csv, b.schema());
        w.write(&b).unwrap();
        let text = String::from_utf8(w.finish().unwrap()).unwrap();
        assert_eq!(text, "id,note\n1,\"a,b\"\n,\"\"\n3,\n4,\"say \"\"hi\"\"\nbye\"\n");
    }

    #[test]
    fn json_lines_one_object_per_row() {
        let b = batch();
        let mut w = ResultWriter::new(Vec::new(), OutputFormat::Json, b.schema());
        w.write(&b).unwrap();
        let text = String::from_utf8(w.finish().unwrap()).unwrap();
        let rows: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0]["note"], "a,b");
        assert!(rows[1].get("id").is_none() || rows[1]["id"].is_null());
    }

    #[test]
    fn bytes_for_people() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.50 KiB");
        assert_eq!(human_bytes(10 * 1024 * 1024), "10.00 MiB");
    }

    #[test]
    fn empty_result_still_has_a_header() {
        let b = batch();
        let w = ResultWriter::new(Vec::new(), OutputFormat::Csv, b.schema());
        assert_eq!(String::from_utf8(w.finish().unwrap()).unwrap(), "id,note\n");
        assert!("yaml".parse::<OutputFormat>().is_err());
    }
}
