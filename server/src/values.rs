//! Arrow values as the two protocols carry them: Athena's type names and text values (also the
//! result CSV), and Trino's type signatures and JSON values.

use glaux_engine::arrow::array::{Array, AsArray};
use glaux_engine::arrow::datatypes::{DataType, Field};
use glaux_engine::arrow::util::display::{ArrayFormatter, FormatOptions};
use serde_json::{Value, json};

const TIMESTAMP: &str = "%Y-%m-%d %H:%M:%S%.3f";

fn options() -> FormatOptions<'static> {
    FormatOptions::default()
        .with_timestamp_format(Some(TIMESTAMP))
        .with_timestamp_tz_format(Some(TIMESTAMP))
        .with_null("")
}

/// Athena's name for a column type, with precision and scale where they apply.
pub fn athena_type(t: &DataType) -> (&'static str, i64, i64) {
    match t {
        DataType::Boolean => ("boolean", 0, 0),
        DataType::Int8 => ("tinyint", 3, 0),
        DataType::Int16 => ("smallint", 5, 0),
        DataType::Int32 | DataType::UInt8 | DataType::UInt16 => ("integer", 10, 0),
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => ("bigint", 19, 0),
        DataType::Float16 | DataType::Float32 => ("float", 17, 0),
        DataType::Float64 => ("double", 17, 0),
        DataType::Decimal32(p, s)
        | DataType::Decimal64(p, s)
        | DataType::Decimal128(p, s)
        | DataType::Decimal256(p, s) => ("decimal", i64::from(*p), i64::from(*s)),
        DataType::Date32 | DataType::Date64 => ("date", 0, 0),
        DataType::Timestamp(..) => ("timestamp", 3, 0),
        DataType::List(_) | DataType::LargeList(_) | DataType::FixedSizeList(..) | DataType::ListView(_) => {
            ("array", 0, 0)
        }
        DataType::Map(..) => ("map", 0, 0),
        DataType::Struct(_) => ("row", 0, 0),
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => {
            ("varbinary", 1_073_741_824, 0)
        }
        DataType::Null => ("unknown", 0, 0),
        _ => ("varchar", 2_147_483_647, 0),
    }
}

/// Athena's ColumnInfo of a result column.
pub fn column_info(field: &Field) -> Value {
    let (name, precision, scale) = athena_type(field.data_type());
    json!({
        "CatalogName": "hive", "SchemaName": "", "TableName": "",
        "Name": field.name(), "Label": field.name(), "Type": name,
        "Precision": precision, "Scale": scale, "Nullable": "UNKNOWN", "CaseSensitive": name == "varchar",
    })
}

fn is_nested(t: &DataType) -> bool {
    matches!(
        t,
        DataType::List(_)
            | DataType::LargeList(_)
            | DataType::FixedSizeList(..)
            | DataType::Map(..)
            | DataType::Struct(_)
    )
}

/// A column's values as Athena's text, `None` for NULL: nested values as Athena prints them
/// (`[1, 2]`, `{a=1, b=x}`), timestamps to the millisecond.
pub fn athena_texts(array: &dyn Array) -> Vec<Option<String>> {
    if is_nested(array.data_type()) {
        return (0..array.len()).map(|i| (!array.is_null(i)).then(|| nested_text(array, i))).collect();
    }
    let options = options();
    match ArrayFormatter::try_new(array, &options) {
        Ok(f) => (0..array.len()).map(|i| (!array.is_null(i)).then(|| f.value(i).to_string())).collect(),
        Err(_) => vec![None; array.len()],
    }
}

fn element_text(array: &dyn Array, i: usize) -> String {
    if array.is_null(i) {
        return "null".into();
    }
    if is_nested(array.data_type()) {
        return nested_text(array, i);
    }
    let options = options();
    ArrayFormatter::try_new(array, &options).map(|f| f.value(i).to_string()).unwrap_or_default()
}

fn nested_text(array: &dyn Array, i: usize) -> String {
    match array.data_type() {
        DataType::List(_) => list_text(array.as_list::<i32>().value(i).as_ref()),
        DataType::LargeList(_) => list_text(array.as_list::<i64>().value(i).as_ref()),
        DataType::FixedSizeList(..) => list_text(array.as_fixed_size_list().value(i).as_ref()),
        DataType::Struct(fields) => {
            let s = array.as_struct();
            let parts: Vec<String> = fields
                .iter()
                .zip(s.columns())
                .map(|(f, c)| format!("{}={}", f.name(), element_text(c.as_ref(), i)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        DataType::Map(..) => {
            let entries = array.as_map().value(i);
            let (keys, values) = (entries.column(0), entries.column(1));
            let parts: Vec<String> = (0..entries.len())
                .map(|j| format!("{}={}", element_text(keys.as_ref(), j), element_text(values.as_ref(), j)))
                .collect();
            format!("{{{}}}", parts.join(", "))
        }
        _ => element_text(array, i),
    }
}

fn list_text(values: &dyn Array) -> String {
    let parts: Vec<String> = (0..values.len()).map(|j| element_text(values, j)).collect();
    format!("[{}]", parts.join(", "))
}

/// One field of Athena's result CSV: every value quoted, NULL an empty unquoted field.
pub fn csv_field(value: &Option<String>) -> String {
    match value {
        None => String::new(),
        Some(v) => format!("\"{}\"", v.replace('"', "\"\"")),
    }
}

/// Trino's type name and type signature of a column type.
pub fn trino_type(t: &DataType) -> (String, Value) {
    let simple = |name: &str| (name.to_string(), json!({"rawType": name, "arguments": []}));
    let of_types = |raw: &str, inner: Vec<(String, Value)>| {
        let name = format!("{raw}({})", inner.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(", "));
        let arguments: Vec<Value> = inner.into_iter().map(|(_, s)| json!({"kind": "TYPE", "value": s})).collect();
        (name, json!({"rawType": raw, "arguments": arguments}))
    };
    match t {
        DataType::Boolean => simple("boolean"),
        DataType::Int8 => simple("tinyint"),
        DataType::Int16 => simple("smallint"),
        DataType::Int32 | DataType::UInt8 | DataType::UInt16 => simple("integer"),
        DataType::Int64 | DataType::UInt32 | DataType::UInt64 => simple("bigint"),
        DataType::Float16 | DataType::Float32 => simple("real"),
        DataType::Float64 => simple("double"),
        DataType::Decimal32(p, s)
        | DataType::Decimal64(p, s)
        | DataType::Decimal128(p, s)
        | DataType::Decimal256(p, s) => (
            format!("decimal({p},{s})"),
            json!({"rawType": "decimal", "arguments": [{"kind": "LONG", "value": p}, {"kind": "LONG", "value": s}]}),
        ),
        DataType::Date32 | DataType::Date64 => simple("date"),
        DataType::Timestamp(_, tz) => {
            let raw = if tz.is_some() { "timestamp with time zone" } else { "timestamp" };
            (
                format!("{raw}(3)").replace("timestamp with time zone(3)", "timestamp(3) with time zone"),
                json!({"rawType": raw, "arguments": [{"kind": "LONG", "value": 3}]}),
            )
        }
        DataType::List(f) | DataType::LargeList(f) | DataType::FixedSizeList(f, _) => {
            of_types("array", vec![trino_type(f.data_type())])
        }
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => {
                of_types("map", vec![trino_type(kv[0].data_type()), trino_type(kv[1].data_type())])
            }
            _ => simple("varchar"),
        },
        DataType::Struct(fields) => {
            let inner: Vec<(String, Value)> = fields.iter().map(|f| trino_type(f.data_type())).collect();
            let name = format!(
                "row({})",
                fields.iter().zip(&inner).map(|(f, (n, _))| format!("{} {n}", f.name())).collect::<Vec<_>>().join(", ")
            );
            let arguments: Vec<Value> = fields
                .iter()
                .zip(inner)
                .map(|(f, (_, s))| json!({"kind": "NAMED_TYPE", "value": {"fieldName": {"name": f.name()}, "typeSignature": s}}))
                .collect();
            (name, json!({"rawType": "row", "arguments": arguments}))
        }
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => {
            simple("varbinary")
        }
        DataType::Null => simple("unknown"),
        _ => ("varchar".into(), json!({"rawType": "varchar", "arguments": [{"kind": "LONG", "value": 2_147_483_647}]})),
    }
}

/// One value in Trino's JSON encoding: numbers as numbers, decimals and temporal values as
/// strings, arrays as arrays, maps as objects, rows as arrays of their fields.
pub fn trino_value(array: &dyn Array, i: usize) -> Value {
    use glaux_engine::arrow::datatypes as t;
    if array.is_null(i) {
        return Value::Null;
    }
    let float = |v: f64| {
        if v.is_finite() {
            json!(v)
        } else if v.is_nan() {
            json!("NaN")
        } else if v > 0.0 {
            json!("Infinity")
        } else {
            json!("-Infinity")
        }
    };
    match array.data_type() {
        DataType::Boolean => json!(array.as_boolean().value(i)),
        DataType::Int8 => json!(array.as_primitive::<t::Int8Type>().value(i)),
        DataType::Int16 => json!(array.as_primitive::<t::Int16Type>().value(i)),
        DataType::Int32 => json!(array.as_primitive::<t::Int32Type>().value(i)),
        DataType::Int64 => json!(array.as_primitive::<t::Int64Type>().value(i)),
        DataType::UInt8 => json!(array.as_primitive::<t::UInt8Type>().value(i)),
        DataType::UInt16 => json!(array.as_primitive::<t::UInt16Type>().value(i)),
        DataType::UInt32 => json!(array.as_primitive::<t::UInt32Type>().value(i)),
        DataType::UInt64 => json!(array.as_primitive::<t::UInt64Type>().value(i)),
        DataType::Float32 => float(f64::from(array.as_primitive::<t::Float32Type>().value(i))),
        DataType::Float64 => float(array.as_primitive::<t::Float64Type>().value(i)),
        DataType::List(_) => list_json(array.as_list::<i32>().value(i).as_ref()),
        DataType::LargeList(_) => list_json(array.as_list::<i64>().value(i).as_ref()),
        DataType::FixedSizeList(..) => list_json(array.as_fixed_size_list().value(i).as_ref()),
        DataType::Struct(_) => {
            Value::Array(array.as_struct().columns().iter().map(|c| trino_value(c.as_ref(), i)).collect())
        }
        DataType::Map(..) => {
            let entries = array.as_map().value(i);
            let keys = athena_texts(entries.column(0).as_ref());
            let values = entries.column(1);
            Value::Object(
                keys.into_iter()
                    .enumerate()
                    .map(|(j, k)| (k.unwrap_or_default(), trino_value(values.as_ref(), j)))
                    .collect(),
            )
        }
        DataType::Binary | DataType::LargeBinary | DataType::BinaryView | DataType::FixedSizeBinary(_) => {
            use base64::Engine as _;
            let options = FormatOptions::default();
            let bytes = ArrayFormatter::try_new(array, &options).map(|f| f.value(i).to_string()).unwrap_or_default();
            // Arrow prints binary as hex; Trino sends base64
            let raw: Vec<u8> =
                (0..bytes.len() / 2).filter_map(|k| u8::from_str_radix(&bytes[2 * k..2 * k + 2], 16).ok()).collect();
            json!(base64::engine::general_purpose::STANDARD.encode(raw))
        }
        _ => {
            let options = options();
            json!(ArrayFormatter::try_new(array, &options).map(|f| f.value(i).to_string()).unwrap_or_default())
        }
    }
}

fn list_json(values: &dyn Array) -> Value {
    Value::Array((0..values.len()).map(|j| trino_value(values, j)).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use glaux_engine::arrow::array::{Int64Array, ListArray, StringArray, StructArray};
    use glaux_engine::arrow::datatypes::Int64Type;
    use std::sync::Arc;

    #[test]
    fn nested_values_print_as_athena_and_encode_as_trino() {
        let list = ListArray::from_iter_primitive::<Int64Type, _, _>(vec![Some(vec![Some(1), None, Some(3)]), None]);
        assert_eq!(athena_texts(&list), vec![Some("[1, null, 3]".to_string()), None]);
        assert_eq!(trino_value(&list, 0), json!([1, null, 3]));
        let row = StructArray::from(vec![
            (Arc::new(Field::new("a", DataType::Int64, true)), Arc::new(Int64Array::from(vec![7])) as _),
            (Arc::new(Field::new("b", DataType::Utf8, true)), Arc::new(StringArray::from(vec!["x"])) as _),
        ]);
        assert_eq!(athena_texts(&row), vec![Some("{a=7, b=x}".to_string())]);
        assert_eq!(trino_value(&row, 0), json!([7, "x"]));
        assert_eq!(trino_type(row.data_type()).0, "row(a bigint, b varchar)");
        assert_eq!(trino_type(list.data_type()).0, "array(bigint)");
        assert_eq!(csv_field(&Some("say \"hi\"".into())), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field(&Some(String::new())), "\"\"");
        assert_eq!(csv_field(&None), "");
    }
}
