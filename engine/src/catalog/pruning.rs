//! Partition pruning: filters on partition columns decide which partitions a query reads.
//!
//! The decision is exact: the filters are evaluated by DataFusion itself over one row per
//! partition (typed values), so casts, BETWEEN, IN, OR and functions all behave as in the query.
//! A Glue expression derived from the same filters narrows what the catalog returns; it may
//! return more (never less), so the exact evaluation always runs on its answer.

use std::collections::HashSet;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray, RecordBatch, StringArray};
use datafusion::arrow::compute::and_kleene;
use datafusion::arrow::compute::kernels::cast::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::{DataType, FieldRef, Schema};
use datafusion::catalog::Session;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::logical_expr::{BinaryExpr, Expr, Operator};

use crate::error::{Error, Result};

/// Hive's folder name for a NULL partition value (`key=__HIVE_DEFAULT_PARTITION__`).
pub const NULL_PARTITION: &str = "__HIVE_DEFAULT_PARTITION__";

/// Whether `expr` reads only partition columns (and reads at least one).
pub fn only_partition_columns(expr: &Expr, partition_columns: &HashSet<String>) -> bool {
    let refs = expr.column_refs();
    !refs.is_empty() && refs.iter().all(|c| partition_columns.contains(&c.name))
}

/// Each partition's values, typed as its key: one array per key. A value that does not parse
/// as the key's type is an error naming the table, the partition and the key.
pub fn typed_columns(table: &str, fields: &[FieldRef], partitions: &[Vec<String>]) -> Result<Vec<ArrayRef>> {
    let options = CastOptions { safe: false, ..Default::default() };
    fields
        .iter()
        .enumerate()
        .map(|(i, field)| {
            // Hive's name for a NULL value is a NULL
            let raw: StringArray =
                partitions.iter().map(|p| p.get(i).map(String::as_str).filter(|v| *v != NULL_PARTITION)).collect();
            if field.data_type() == &DataType::Utf8 {
                return Ok(Arc::new(raw) as ArrayRef);
            }
            cast_with_options(&raw, field.data_type(), &options).map_err(|_| {
                // find the offending partition to name it
                let bad = partitions
                    .iter()
                    .find(|p| {
                        let one = StringArray::from(vec![p.get(i).map(String::as_str)]);
                        cast_with_options(&one, field.data_type(), &options).is_err()
                    })
                    .cloned()
                    .unwrap_or_default();
                Error::InvalidInput(format!(
                    "table {table}: partition ({}) has {} = '{}', which is not a valid {}",
                    bad.join(", "),
                    field.name(),
                    bad.get(i).cloned().unwrap_or_default(),
                    field.data_type()
                ))
            })
        })
        .collect()
}

/// The indexes of the partitions that satisfy every filter (NULL counts as false).
pub fn surviving(
    state: &dyn Session,
    fields: &[FieldRef],
    columns: Vec<ArrayRef>,
    rows: usize,
    filters: &[Expr],
) -> Result<Vec<usize>> {
    if filters.is_empty() || fields.is_empty() {
        return Ok((0..rows).collect());
    }
    let schema = Arc::new(Schema::new(fields.to_vec()));
    let batch = RecordBatch::try_new(Arc::clone(&schema), columns).map_err(datafusion::error::DataFusionError::from)?;
    let df_schema = DFSchema::try_from(Arc::clone(&schema))?;
    let mut keep = BooleanArray::from(vec![true; rows]);
    for filter in filters {
        let physical = state.create_physical_expr(filter.clone(), &df_schema)?;
        let result = physical.evaluate(&batch)?.into_array(rows)?;
        let result = result
            .as_any()
            .downcast_ref::<BooleanArray>()
            .ok_or_else(|| Error::InvalidInput(format!("partition filter {filter} is not a boolean")))?;
        keep = and_kleene(&keep, result).map_err(datafusion::error::DataFusionError::from)?;
    }
    // only true survives: NULL (unknown) reads nothing, as in a WHERE clause
    Ok(keep.iter().enumerate().filter_map(|(i, v)| (v == Some(true)).then_some(i)).collect())
}

/// A Glue `GetPartitions` expression for the filters, when they can be said in Glue's language;
/// untranslatable conjuncts are left out (the answer only gets larger).
pub fn glue_expression(filters: &[Expr], keys: &[FieldRef]) -> Option<String> {
    let parts: Vec<String> = filters.iter().filter_map(|f| glue(f, keys)).collect();
    if parts.is_empty() { None } else { Some(parts.join(" AND ")) }
}

fn glue(expr: &Expr, keys: &[FieldRef]) -> Option<String> {
    match expr {
        Expr::BinaryExpr(BinaryExpr { left, op: Operator::And, right }) => {
            match (glue(left, keys), glue(right, keys)) {
                (Some(l), Some(r)) => Some(format!("({l} AND {r})")),
                (one, other) => one.or(other),
            }
        }
        Expr::BinaryExpr(BinaryExpr { left, op: Operator::Or, right }) => {
            Some(format!("({} OR {})", glue(left, keys)?, glue(right, keys)?))
        }
        Expr::BinaryExpr(BinaryExpr { left, op, right }) => {
            let symbol = match op {
                Operator::Eq => "=",
                Operator::NotEq => "<>",
                Operator::Lt => "<",
                Operator::LtEq => "<=",
                Operator::Gt => ">",
                Operator::GtEq => ">=",
                _ => return None,
            };
            match (left.as_ref(), right.as_ref()) {
                (Expr::Column(c), Expr::Literal(v, _)) => {
                    Some(format!("{} {symbol} {}", c.name, literal(v, key(keys, &c.name)?)?))
                }
                (Expr::Literal(v, _), Expr::Column(c)) => {
                    let flipped = match symbol {
                        "<" => ">",
                        "<=" => ">=",
                        ">" => "<",
                        ">=" => "<=",
                        s => s,
                    };
                    Some(format!("{} {flipped} {}", c.name, literal(v, key(keys, &c.name)?)?))
                }
                _ => None,
            }
        }
        Expr::InList(list) if !list.negated => {
            let Expr::Column(c) = list.expr.as_ref() else { return None };
            let k = key(keys, &c.name)?;
            let values: Option<Vec<String>> = list
                .list
                .iter()
                .map(|e| match e {
                    Expr::Literal(v, _) => literal(v, k),
                    _ => None,
                })
                .collect();
            Some(format!("{} IN ({})", c.name, values?.join(", ")))
        }
        Expr::Between(b) if !b.negated => {
            let (Expr::Column(c), Expr::Literal(lo, _), Expr::Literal(hi, _)) =
                (b.expr.as_ref(), b.low.as_ref(), b.high.as_ref())
            else {
                return None;
            };
            let k = key(keys, &c.name)?;
            Some(format!("{} BETWEEN {} AND {}", c.name, literal(lo, k)?, literal(hi, k)?))
        }
        _ => None,
    }
}

fn key<'a>(keys: &'a [FieldRef], name: &str) -> Option<&'a FieldRef> {
    keys.iter().find(|k| k.name() == name)
}

/// A literal as Glue reads it: quoted for string keys, bare for numeric ones.
fn literal(value: &ScalarValue, key: &FieldRef) -> Option<String> {
    if value.is_null() {
        return None;
    }
    let text = match value {
        ScalarValue::Utf8(Some(s)) | ScalarValue::LargeUtf8(Some(s)) | ScalarValue::Utf8View(Some(s)) => s.clone(),
        v if v.data_type().is_numeric() => v.to_string(),
        ScalarValue::Date32(_) => value.to_string(),
        _ => return None,
    };
    if key.data_type().is_numeric() {
        text.parse::<f64>().ok()?;
        Some(text)
    } else {
        Some(format!("'{}'", text.replace('\'', "''")))
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::fuzz::config;
    use datafusion::arrow::datatypes::{DataType, Field, TimeUnit};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(config())]

        /// Partition values as the catalog holds them (any text) become typed values or an
        /// error that names the table — never a panic.
        #[test]
        fn any_partition_value_is_typed_or_refused(values in proptest::collection::vec("\\PC{0,24}|-?[0-9]{1,30}(\\.[0-9]{0,10})?|[0-9]{4}-[0-9]{2}-[0-9]{2}( [0-9:.]{0,15})?", 1..4)) {
            let types = [
                DataType::Int32, DataType::Int64, DataType::Int8, DataType::Float64, DataType::Boolean,
                DataType::Date32, DataType::Timestamp(TimeUnit::Microsecond, None), DataType::Decimal128(10, 2),
                DataType::Utf8,
            ];
            for t in types {
                let fields = vec![Arc::new(Field::new("k", t.clone(), true))];
                let rows: Vec<Vec<String>> = values.iter().map(|v| vec![v.clone()]).collect();
                if let Err(e) = typed_columns("db.t", &fields, &rows) {
                    prop_assert!(e.to_string().contains("db.t"), "{t}: {e}");
                }
            }
        }
    }
}
