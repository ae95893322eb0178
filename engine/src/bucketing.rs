//! Hive bucketing (version 1, what Athena's Hive tables use): a row's bucket is its bucket
//! columns' Java-style hash, `(hash & Integer.MAX_VALUE) % buckets`. The hash must be Hive's own,
//! or an engine that prunes buckets would look in the wrong file. Offered to plans as the
//! function `glaux_hive_bucket(buckets, col, …)`.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, Int32Array};
use datafusion::arrow::datatypes::{DataType, Int8Type, Int16Type, Int32Type, Int64Type};
use datafusion::common::{DataFusionError, Result as DfResult, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, ScalarFunctionArgs, ScalarUDF, ScalarUDFImpl, Signature, Volatility};

/// Whether Hive's bucketing hash is defined here for values of type `t`.
pub fn hashable(t: &DataType) -> bool {
    matches!(
        t,
        DataType::Int8
            | DataType::Int16
            | DataType::Int32
            | DataType::Int64
            | DataType::Boolean
            | DataType::Date32
            | DataType::Utf8
            | DataType::LargeUtf8
            | DataType::Utf8View
    )
}

/// One value's hash as Hive computes it (ObjectInspectorUtils.hashCode); NULL is 0.
fn hash_at(column: &ArrayRef, row: usize) -> DfResult<i32> {
    if column.is_null(row) {
        return Ok(0);
    }
    Ok(match column.data_type() {
        DataType::Int8 => i32::from(column.as_primitive::<Int8Type>().value(row)),
        DataType::Int16 => i32::from(column.as_primitive::<Int16Type>().value(row)),
        DataType::Int32 => column.as_primitive::<Int32Type>().value(row),
        DataType::Date32 => column.as_primitive::<datafusion::arrow::datatypes::Date32Type>().value(row),
        DataType::Int64 => {
            let v = column.as_primitive::<Int64Type>().value(row);
            (v ^ ((v as u64) >> 32) as i64) as i32
        }
        DataType::Boolean => i32::from(column.as_boolean().value(row)),
        DataType::Utf8 => bytes_hash(column.as_string::<i32>().value(row).as_bytes()),
        DataType::LargeUtf8 => bytes_hash(column.as_string::<i64>().value(row).as_bytes()),
        DataType::Utf8View => bytes_hash(column.as_string_view().value(row).as_bytes()),
        other => {
            return Err(DataFusionError::Plan(format!("Hive bucketing has no hash for {other}")));
        }
    })
}

/// Hadoop's Text hash: `31 * h + b` over the UTF-8 bytes, bytes signed as in Java.
fn bytes_hash(bytes: &[u8]) -> i32 {
    bytes.iter().fold(0i32, |h, &b| h.wrapping_mul(31).wrapping_add(i32::from(b as i8)))
}

/// The bucket of every row of `columns`.
pub fn buckets(columns: &[ArrayRef], count: i32, rows: usize) -> DfResult<Int32Array> {
    (0..rows)
        .map(|row| {
            let mut hash = 0i32;
            for column in columns {
                hash = hash.wrapping_mul(31).wrapping_add(hash_at(column, row)?);
            }
            Ok(Some((hash & i32::MAX) % count))
        })
        .collect()
}

#[derive(Debug, PartialEq, Eq, Hash)]
struct HiveBucket {
    signature: Signature,
}

impl ScalarUDFImpl for HiveBucket {
    fn name(&self) -> &str {
        "glaux_hive_bucket"
    }

    fn signature(&self) -> &Signature {
        &self.signature
    }

    fn return_type(&self, _: &[DataType]) -> DfResult<DataType> {
        Ok(DataType::Int32)
    }

    fn invoke_with_args(&self, args: ScalarFunctionArgs) -> DfResult<ColumnarValue> {
        let count = match args.args.first() {
            Some(ColumnarValue::Scalar(ScalarValue::Int64(Some(n)))) if *n > 0 && *n <= i64::from(i32::MAX) => {
                *n as i32
            }
            _ => return Err(DataFusionError::Plan("glaux_hive_bucket takes a positive bucket count first".into())),
        };
        let rows = args.number_rows;
        let columns = ColumnarValue::values_to_arrays(&args.args[1..])?;
        Ok(ColumnarValue::Array(Arc::new(buckets(&columns, count, rows)?)))
    }
}

/// `glaux_hive_bucket(buckets, col, …)`.
pub fn udf() -> ScalarUDF {
    ScalarUDF::new_from_impl(HiveBucket { signature: Signature::variadic_any(Volatility::Immutable) })
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Int64Array, StringArray};

    use super::*;

    #[test]
    fn hashes_are_javas() {
        // "abc".hashCode() == 96354; Long.hashCode(2^32 + 5) == 4; a negative hash is masked
        assert_eq!(bytes_hash(b"abc"), 96354);
        let strings: ArrayRef = Arc::new(StringArray::from(vec![Some("abc"), None, Some("polygenelubricants")]));
        let got = buckets(&[strings], 4, 3).unwrap();
        // "polygenelubricants".hashCode() == Integer.MIN_VALUE, & MAX_VALUE == 0
        assert_eq!(got.values(), &[96354 % 4, 0, 0]);
        let longs: ArrayRef = Arc::new(Int64Array::from(vec![(1i64 << 32) + 5, 7, -1]));
        // Long.hashCode(-1) == 0
        assert_eq!(buckets(&[longs], 3, 3).unwrap().values(), &[4 % 3, 7 % 3, 0]);
    }
}
