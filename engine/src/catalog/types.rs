//! Hive type names (as Glue stores them) to Arrow types and back.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Fields, TimeUnit};

use crate::error::{Error, Result};

/// Parses `bigint`, `decimal(10,2)`, `array<struct<a:int,b:string>>`, `map<string,int>`, ….
pub fn hive_to_arrow(type_name: &str) -> Result<DataType> {
    let mut p = TypeParser { text: type_name, pos: 0, depth: 0 };
    let t = p.parse()?;
    p.skip_ws();
    if p.pos != p.text.len() {
        return Err(p.fail("unexpected text after the type"));
    }
    Ok(t)
}

/// The Hive name of an Arrow type, for SHOW CREATE TABLE and DESCRIBE.
pub fn arrow_to_hive(t: &DataType) -> String {
    match t {
        DataType::Boolean => "boolean".into(),
        DataType::Int8 => "tinyint".into(),
        DataType::Int16 => "smallint".into(),
        DataType::Int32 => "int".into(),
        DataType::Int64 => "bigint".into(),
        DataType::Float32 => "float".into(),
        DataType::Float64 => "double".into(),
        DataType::Decimal128(p, s) | DataType::Decimal256(p, s) => format!("decimal({p},{s})"),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Timestamp(..) => "timestamp".into(),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView => "binary".into(),
        DataType::List(f) | DataType::LargeList(f) => format!("array<{}>", arrow_to_hive(f.data_type())),
        DataType::Map(f, _) => match f.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => {
                format!("map<{},{}>", arrow_to_hive(kv[0].data_type()), arrow_to_hive(kv[1].data_type()))
            }
            _ => "map<string,string>".into(),
        },
        DataType::Struct(fields) => {
            let inner: Vec<String> =
                fields.iter().map(|f| format!("{}:{}", f.name(), arrow_to_hive(f.data_type()))).collect();
            format!("struct<{}>", inner.join(","))
        }
        _ => "string".into(),
    }
}

struct TypeParser<'a> {
    text: &'a str,
    pos: usize,
    /// How deep in array<…>, map<…> and struct<…> the parser is.
    depth: usize,
}

/// Types nested deeper than this are refused (a deeper one is a mistake or an attack, and
/// would exhaust the stack).
const MAX_NESTING: usize = 64;

impl TypeParser<'_> {
    fn fail(&self, what: &str) -> Error {
        Error::InvalidInput(format!("invalid Hive type '{}': {what} at position {}", self.text, self.pos + 1))
    }

    fn skip_ws(&mut self) {
        while let Some(c) = self.text[self.pos..].chars().next().filter(|c| c.is_whitespace()) {
            self.pos += c.len_utf8();
        }
    }

    fn word(&mut self) -> String {
        self.skip_ws();
        let rest = &self.text[self.pos..];
        let len = rest.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(rest.len());
        self.pos += len;
        rest[..len].to_ascii_lowercase()
    }

    fn eat(&mut self, c: char) -> bool {
        self.skip_ws();
        if self.text[self.pos..].starts_with(c) {
            self.pos += c.len_utf8();
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: char) -> Result<()> {
        if self.eat(c) { Ok(()) } else { Err(self.fail(&format!("expected '{c}'"))) }
    }

    fn number(&mut self) -> Result<u32> {
        let w = self.word();
        w.parse().map_err(|_| self.fail("expected a number"))
    }

    fn parse(&mut self) -> Result<DataType> {
        if self.depth >= MAX_NESTING {
            return Err(self.fail(&format!("types nest deeper than {MAX_NESTING} levels")));
        }
        self.depth += 1;
        let parsed = self.parse_one();
        self.depth -= 1;
        parsed
    }

    fn parse_one(&mut self) -> Result<DataType> {
        let name = self.word();
        Ok(match name.as_str() {
            "boolean" => DataType::Boolean,
            "tinyint" => DataType::Int8,
            "smallint" => DataType::Int16,
            "int" | "integer" => DataType::Int32,
            "bigint" => DataType::Int64,
            "float" | "real" => DataType::Float32,
            "double" => DataType::Float64,
            "string" => DataType::Utf8,
            "varchar" | "char" => {
                if self.eat('(') {
                    self.number()?;
                    self.expect(')')?;
                }
                DataType::Utf8
            }
            "decimal" | "numeric" => {
                let (mut precision, mut scale) = (10, 0);
                if self.eat('(') {
                    precision = self.number()?;
                    if self.eat(',') {
                        scale = self.number()?;
                    }
                    self.expect(')')?;
                }
                if !(1..=38).contains(&precision) || scale > precision {
                    return Err(self.fail("decimal precision must be 1 to 38 and scale at most the precision"));
                }
                DataType::Decimal128(precision as u8, scale as i8)
            }
            "date" => DataType::Date32,
            "timestamp" => DataType::Timestamp(TimeUnit::Millisecond, None),
            "binary" => DataType::Binary,
            "array" => {
                self.expect('<')?;
                let item = self.parse()?;
                self.expect('>')?;
                DataType::List(Arc::new(Field::new("item", item, true)))
            }
            "map" => {
                self.expect('<')?;
                let key = self.parse()?;
                self.expect(',')?;
                let value = self.parse()?;
                self.expect('>')?;
                let entries = Fields::from(vec![Field::new("key", key, false), Field::new("value", value, true)]);
                DataType::Map(Arc::new(Field::new("entries", DataType::Struct(entries), false)), false)
            }
            "struct" => {
                self.expect('<')?;
                let mut fields = vec![];
                loop {
                    let name = self.word();
                    if name.is_empty() {
                        return Err(self.fail("expected a field name"));
                    }
                    self.expect(':')?;
                    fields.push(Field::new(name, self.parse()?, true));
                    if !self.eat(',') {
                        break;
                    }
                }
                self.expect('>')?;
                DataType::Struct(Fields::from(fields))
            }
            "" => return Err(self.fail("expected a type name")),
            other => return Err(self.fail(&format!("unknown type '{other}'"))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deep_or_odd_types_are_errors_not_crashes() {
        let deep = format!("{}int{}", "array<".repeat(10_000), ">".repeat(10_000));
        let e = hive_to_arrow(&deep).unwrap_err().to_string();
        assert!(e.contains("nest deeper than 64"), "{e}");
        let ok = format!("{}int{}", "array<".repeat(10), ">".repeat(10));
        assert!(hive_to_arrow(&ok).is_ok());
        // whitespace of more than one byte
        assert_eq!(hive_to_arrow("\u{3000}bigint\u{3000}").unwrap(), DataType::Int64);
        assert!(hive_to_arrow("map<string,\u{2212}>").is_err());
    }

    #[test]
    fn nested_types_round_trip() {
        for t in ["bigint", "decimal(10,2)", "array<struct<k:string,v:int>>", "map<string,array<double>>", "date"] {
            assert_eq!(arrow_to_hive(&hive_to_arrow(t).unwrap()), t);
        }
        assert_eq!(hive_to_arrow("VARCHAR(20)").unwrap(), DataType::Utf8);
        assert_eq!(hive_to_arrow("INTEGER").unwrap(), DataType::Int32);
    }

    #[test]
    fn bad_types_say_where() {
        let e = hive_to_arrow("array<strin>").unwrap_err().to_string();
        assert!(e.contains("unknown type 'strin'"), "{e}");
        let e = hive_to_arrow("decimal(40,2)").unwrap_err().to_string();
        assert!(e.contains("precision"), "{e}");
        assert!(hive_to_arrow("struct<a:int").is_err());
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::fuzz::{config, nested, shaped};
    use proptest::prelude::*;

    const TYPES: &[&str] = &[
        "array<",
        "map<",
        "struct<",
        ">",
        ",",
        ":",
        "int",
        "bigint",
        "string",
        "decimal(",
        ")",
        "38",
        "0",
        "10,2",
        "varchar(",
        "char(",
        "timestamp",
        "date",
        "double",
        "boolean",
        "binary",
        "a",
        "b",
    ];

    proptest! {
        #![proptest_config(config())]

        #[test]
        fn any_text_is_a_type_or_an_error(text in "\\PC{0,80}") {
            let _ = hive_to_arrow(&text);
        }

        /// What parses prints back as a name that parses to the same type.
        #[test]
        fn type_shaped_text_parses_or_says_why_and_round_trips(text in shaped(TYPES, 16)) {
            if let Ok(t) = hive_to_arrow(&text) {
                let again = hive_to_arrow(&arrow_to_hive(&t));
                prop_assert!(again.is_ok(), "{text} -> {} does not parse", arrow_to_hive(&t));
                prop_assert_eq!(arrow_to_hive(&again.unwrap()), arrow_to_hive(&t));
            }
        }
    }

    #[test]
    fn deep_nesting_is_an_error_not_a_stack_overflow() {
        for depth in [65, 100_000] {
            assert!(hive_to_arrow(&nested("array<", "int", ">", depth)).is_err());
            assert!(hive_to_arrow(&nested("struct<a:", "int", ">", depth)).is_err());
        }
    }
}
