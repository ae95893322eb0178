//! A Glue table's SerDe, InputFormat and properties → the file format glaux reads it with.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::catalog::Session;
use datafusion::config::CsvOptions;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::json::JsonFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use glaux_catalog::Table;

use crate::error::{Error, Result};
use crate::formats::orc::OrcFormat;
use crate::formats::wrapped::{EmptyFields, WrappedFormat};

/// How a table's objects are read.
#[derive(Debug, Clone, PartialEq)]
pub enum StorageFormat {
    Parquet,
    Orc,
    Json,
    /// Text lines split by a regular expression's groups (RegexSerDe): web server logs.
    Regex {
        regex: String,
        header_lines: usize,
    },
    /// Delimited text: LazySimpleSerDe or OpenCSVSerde.
    Text {
        delimiter: u8,
        quote: Option<u8>,
        escape: Option<u8>,
        header_lines: usize,
        null_marker: Option<String>,
        /// What an empty field in a string column is: `''` for Hive's SerDes.
        empty_fields: EmptyFields,
    },
}

const LAZY_SIMPLE: &str = "org.apache.hadoop.hive.serde2.lazy.LazySimpleSerDe";
const OPEN_CSV: &str = "org.apache.hadoop.hive.serde2.OpenCSVSerde";
const KNOWN_JSON: [&str; 2] = ["org.apache.hive.hcatalog.data.JsonSerDe", "org.openx.data.jsonserde.JsonSerDe"];
const PARQUET_SERDE: &str = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe";
const ORC_SERDE: &str = "org.apache.hadoop.hive.ql.io.orc.OrcSerde";
const REGEX_SERDE: &str = "org.apache.hadoop.hive.serde2.RegexSerDe";
/// Delimiter for reading whole lines as one field: a byte text lines do not carry.
const LINE_DELIMITER: u8 = 0x1f;

fn single_byte(table: &str, property: &str, value: &str) -> Result<u8> {
    let decoded = match value {
        "\\t" => "\t".to_string(),
        // Hive writes control characters as octal escapes or their number
        v if v.starts_with('\\') && v.len() > 1 => {
            let n = u8::from_str_radix(&v[1..], 8).map_err(|_| {
                Error::InvalidInput(format!("table {table}: property {property} = '{value}' is not a character"))
            })?;
            (n as char).to_string()
        }
        v => v.to_string(),
    };
    match decoded.as_bytes() {
        [b] => Ok(*b),
        _ => Err(Error::InvalidInput(format!(
            "table {table}: property {property} = '{value}' must be a single character"
        ))),
    }
}

impl StorageFormat {
    /// Reads the format from the table as Glue describes it. An unknown SerDe is an error that
    /// names the table and the class.
    pub fn of(table: &Table) -> Result<Self> {
        let name = format!("{}.{}", table.database_name.as_deref().unwrap_or("default"), table.name);
        let sd = table.storage_descriptor.clone().unwrap_or_default();
        let serde = sd.serde_info.clone().unwrap_or_default();
        let params: BTreeMap<String, String> = serde.parameters.clone();
        let library = serde.serialization_library.clone().unwrap_or_default();
        let input = sd.input_format.clone().unwrap_or_default().to_ascii_lowercase();
        let classification = table.parameters.get("classification").map(|c| c.to_ascii_lowercase());
        let header_lines = table
            .parameters
            .get("skip.header.line.count")
            .map(|v| {
                v.parse::<usize>().map_err(|_| {
                    Error::InvalidInput(format!(
                        "table {name}: property skip.header.line.count = '{v}' is not a number"
                    ))
                })
            })
            .transpose()?
            .unwrap_or(0);
        if header_lines > 1 {
            return Err(Error::InvalidInput(format!(
                "table {name}: skip.header.line.count = {header_lines} is not supported (0 or 1)"
            )));
        }
        let text = |delimiter: u8,
                    quote: Option<u8>,
                    escape: Option<u8>,
                    null_marker: Option<String>,
                    empty_fields: EmptyFields| Self::Text {
            delimiter,
            quote,
            escape,
            header_lines,
            null_marker,
            empty_fields,
        };
        let p = |k: &str| params.get(k).map(String::as_str);
        Ok(match library.as_str() {
            PARQUET_SERDE => Self::Parquet,
            ORC_SERDE => Self::Orc,
            l if KNOWN_JSON.contains(&l) => Self::Json,
            REGEX_SERDE => {
                let regex = p("input.regex").ok_or_else(|| {
                    Error::InvalidInput(format!("table {name}: RegexSerDe needs the SerDe property input.regex"))
                })?;
                let compiled = regex::Regex::new(regex)
                    .map_err(|e| Error::InvalidInput(format!("table {name}: input.regex is not a valid regex: {e}")))?;
                let groups = compiled.captures_len() - 1;
                if groups != sd.columns.len() {
                    return Err(Error::InvalidInput(format!(
                        "table {name}: input.regex has {groups} capturing groups but the table has {} columns",
                        sd.columns.len()
                    )));
                }
                Self::Regex { regex: regex.to_string(), header_lines }
            }
            OPEN_CSV => text(
                single_byte(&name, "separatorChar", p("separatorChar").unwrap_or(","))?,
                Some(single_byte(&name, "quoteChar", p("quoteChar").unwrap_or("\""))?),
                Some(single_byte(&name, "escapeChar", p("escapeChar").unwrap_or("\\"))?),
                None,
                EmptyFields::Text,
            ),
            LAZY_SIMPLE => text(
                single_byte(&name, "field.delim", p("field.delim").or(p("serialization.format")).unwrap_or("\\001"))?,
                None,
                p("escape.delim").map(|e| single_byte(&name, "escape.delim", e)).transpose()?,
                Some(p("serialization.null.format").unwrap_or("\\N").to_string()),
                EmptyFields::Text,
            ),
            "" if input.contains("parquet") || classification.as_deref() == Some("parquet") => Self::Parquet,
            "" if input.contains("orc") || classification.as_deref() == Some("orc") => Self::Orc,
            "" if classification.as_deref() == Some("json") => Self::Json,
            // no SerDe to follow: DataFusion's CSV rules
            "" if classification.as_deref() == Some("csv") => text(b',', Some(b'"'), None, None, EmptyFields::Null),
            "" => {
                return Err(Error::InvalidInput(format!(
                    "table {name}: no SerDe, InputFormat or classification says how to read it"
                )));
            }
            other => {
                return Err(Error::InvalidInput(format!(
                    "table {name}: unsupported SerDe '{other}' (supported: LazySimpleSerDe, OpenCSVSerde, RegexSerDe, hcatalog and openx JsonSerDe, ParquetHiveSerDe, OrcSerde)"
                )));
            }
        })
    }

    /// The DataFusion format, with `compression` (from the objects' extensions) for text, and
    /// for Parquet the session's settings (`SET datafusion.execution.parquet.…`), as DataFusion's
    /// own tables read it.
    pub fn file_format(&self, state: &dyn Session, compression: Option<&str>) -> Result<Arc<dyn FileFormat>> {
        let codec = |c: Option<&str>| -> Result<_> {
            Ok(match c {
                Some(c) => c.parse().map_err(|e| Error::InvalidInput(format!("compression '{c}': {e}")))?,
                None => datafusion::common::parsers::CompressionTypeVariant::UNCOMPRESSED,
            })
        };
        Ok(match self {
            Self::Parquet => {
                // the session's table options keep the Parquet settings the session started
                // with; a SET changes its config
                let mut options = state.table_options().parquet.clone();
                options.global = state.config_options().execution.parquet.clone();
                Arc::new(ParquetFormat::default().with_options(options))
            }
            Self::Orc => Arc::new(OrcFormat),
            Self::Json => Arc::new(WrappedFormat(
                Arc::new(JsonFormat::default().with_file_compression_type(codec(compression)?.into())),
                EmptyFields::Null,
            )),
            Self::Text { delimiter, quote, escape, header_lines, null_marker, empty_fields } => {
                let options = CsvOptions {
                    has_header: Some(*header_lines == 1),
                    delimiter: *delimiter,
                    // Hive text has no quoting: a quote byte that never occurs in text turns it off.
                    quote: quote.unwrap_or(0),
                    escape: *escape,
                    null_regex: null_marker.as_ref().map(|m| format!("^{}$", regex::escape(m))),
                    compression: codec(compression)?,
                    ..Default::default()
                };
                Arc::new(WrappedFormat(Arc::new(CsvFormat::default().with_options(options)), *empty_fields))
            }
            // whole lines as one string field; the table provider applies the regex
            Self::Regex { header_lines, .. } => {
                let options = CsvOptions {
                    has_header: Some(*header_lines == 1),
                    delimiter: LINE_DELIMITER,
                    quote: 0,
                    compression: codec(compression)?,
                    ..Default::default()
                };
                Arc::new(WrappedFormat(Arc::new(CsvFormat::default().with_options(options)), EmptyFields::Null))
            }
        })
    }

    pub fn is_text(&self) -> bool {
        matches!(self, Self::Text { .. } | Self::Json | Self::Regex { .. })
    }
}
