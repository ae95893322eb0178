//! A string column compared with constants (`=`, `<>`, `IN`) by its 16-byte views, without a
//! branch per row.
//!
//! Parquet strings are read as views: each row's length, first four bytes and, up to 12 bytes,
//! the whole string, in 16 bytes. Arrow compares a view column with a constant row by row,
//! through lengths and prefixes, with branches the data decides: in TPC-H q19 at SF10,
//! `l_shipmode = 'AIR' OR l_shipmode = 'AIR REG'` took 754 ms of CPU over 60 M rows, twice
//! `l_shipdate` between two dates. A constant of up to 12 bytes equals a row exactly when the
//! row's length and inline bytes are the constant's, which is one masked 128-bit comparison;
//! a longer constant is compared so first on its length and prefix, and only the rows that match
//! look at their bytes. Other arrays (a string column not read as views) go to arrow's kernels.

use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, BooleanArray, StringViewArray};
use datafusion::arrow::buffer::BooleanBuffer;
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::Result;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::logical_expr::{ColumnarValue, Operator};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{BinaryExpr, Column, InListExpr};

use crate::expression_rewrite::{ExpressionRule, Replaced, as_replaced, physical_as_replaced, string_constant};

/// The rule; it runs last, so no other rule sees the replaced expressions.
pub const VIEW_EQUALITY: ExpressionRule = ExpressionRule::new("glaux_view_equality", replace);

/// Each `column = 'constant'`, `column <> 'constant'` and `column [NOT] IN ('a', …)` on a view
/// column made a [`ViewEquals`].
fn replace(expr: &Arc<dyn PhysicalExpr>, schema: &Schema) -> Result<Transformed<Arc<dyn PhysicalExpr>>> {
    let view_column = |e: &Arc<dyn PhysicalExpr>| {
        e.downcast_ref::<Column>().is_some() && e.data_type(schema).is_ok_and(|t| t == DataType::Utf8View)
    };
    Arc::clone(expr).transform_up(|e| {
        let mut found = None;
        if let Some(binary) = e.downcast_ref::<BinaryExpr>()
            && matches!(binary.op(), Operator::Eq | Operator::NotEq)
        {
            let (l, r) = (binary.left(), binary.right());
            let negated = *binary.op() == Operator::NotEq;
            if view_column(l)
                && let Some(t) = string_constant(r)
            {
                found = Some((Arc::clone(l), vec![t], negated));
            } else if view_column(r)
                && let Some(t) = string_constant(l)
            {
                found = Some((Arc::clone(r), vec![t], negated));
            }
        } else if let Some(list) = e.downcast_ref::<InListExpr>()
            && view_column(list.expr())
            && let Some(values) = list.list().iter().map(string_constant).collect::<Option<Vec<_>>>()
        {
            found = Some((Arc::clone(list.expr()), values, list.negated()));
        }
        Ok(match found {
            Some((column, values, negated)) => {
                let new = ViewEquals { values, negated, replaced: Replaced { column, original: e } };
                Transformed::yes(Arc::new(new) as Arc<dyn PhysicalExpr>)
            }
            None => Transformed::no(e),
        })
    })
}

/// `column = any of values` (or, negated, none of them) on a view column; see the module's
/// comment. `replaced` keeps the expression it replaced, for other arrays and for display.
#[derive(Debug, Clone)]
pub struct ViewEquals {
    values: Vec<String>,
    negated: bool,
    replaced: Replaced,
}

/// The rows of `array` equal to `value`.
fn equal_to(array: &StringViewArray, value: &[u8]) -> BooleanBuffer {
    let views = array.views();
    let len = value.len();
    if len <= 12 {
        // the length and the inline bytes; bytes past the string are not compared
        let mut expected = [0u8; 16];
        expected[..4].copy_from_slice(&(len as u32).to_le_bytes());
        expected[4..4 + len].copy_from_slice(value);
        let expected = u128::from_le_bytes(expected);
        let mask = if len == 0 { u32::MAX as u128 } else { (u32::MAX as u128) | (((1u128 << (8 * len)) - 1) << 32) };
        return BooleanBuffer::collect_bool(views.len(), |i| views[i] & mask == expected);
    }
    // the length and the first four bytes, then the bytes of the rows that have both
    let mut expected = [0u8; 8];
    expected[..4].copy_from_slice(&(len as u32).to_le_bytes());
    expected[4..].copy_from_slice(&value[..4]);
    let expected = u64::from_le_bytes(expected) as u128;
    let mask = u64::MAX as u128;
    let buffers = array.data_buffers();
    BooleanBuffer::collect_bool(views.len(), |i| {
        let view = views[i];
        view & mask == expected && {
            let (buffer, offset) = ((view >> 64) as u32 as usize, (view >> 96) as u32 as usize);
            buffers.get(buffer).and_then(|b| b.get(offset..offset + len)) == Some(value)
        }
    })
}

impl PhysicalExpr for ViewEquals {
    fn data_type(&self, _: &Schema) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    physical_as_replaced!();

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        let array = match self.replaced.views_or_original(batch)? {
            Ok(array) => array,
            Err(original) => return Ok(original),
        };
        let strings = array.as_string_view();
        let equal = self.values.iter().map(|value| equal_to(strings, value.as_bytes()));
        let mut kept = equal.reduce(|a, b| &a | &b).unwrap_or_else(|| BooleanBuffer::new_unset(strings.len()));
        if self.negated {
            kept = !&kept;
        }
        // a null string is neither equal nor unequal to anything (no constant is null)
        Ok(ColumnarValue::Array(Arc::new(BooleanArray::new(kept, strings.nulls().cloned()))))
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn PhysicalExpr>>) -> Result<Arc<dyn PhysicalExpr>> {
        let Some(replaced) = self.replaced.with_children(children)? else { return Ok(self) };
        Ok(Arc::new(Self { values: self.values.clone(), negated: self.negated, replaced }))
    }
}

// the same comparison as the query's: EXPLAIN shows it as written
as_replaced!(ViewEquals);

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::Field;
    use datafusion::common::ScalarValue;
    use datafusion::physical_expr::expressions::{in_list, lit};

    const WORDS: [&str; 10] = [
        "AIR",
        "AIR REG",
        "",
        "DELIVER IN PERSON",
        "DELIVER IN PERSON!",
        "DELIVEX IN PERSON",
        "DELI",
        "A",
        "TWELVE BYTES",
        "TWELVE BYTEZ",
    ];

    /// Each comparison gives what DataFusion's own gives, row for row, nulls included: short and
    /// long constants, prefixes alike, the empty string, a sliced array.
    #[test]
    fn the_same_rows_as_datafusions_comparisons() {
        let rows: Vec<Option<&str>> =
            (0..500).map(|i| if i % 13 == 0 { None } else { Some(WORDS[(i * 7 + i / 3) % WORDS.len()]) }).collect();
        let whole: Arc<dyn Array> = Arc::new(StringViewArray::from(rows));
        let schema = Arc::new(Schema::new(vec![Field::new("s", DataType::Utf8View, true)]));
        let column: Arc<dyn PhysicalExpr> = Arc::new(Column::new("s", 0));
        let mut compared = 0;
        for array in [Arc::clone(&whole), whole.slice(37, 400)] {
            let batch = RecordBatch::try_new(Arc::clone(&schema), vec![array]).unwrap();
            let mut originals: Vec<Arc<dyn PhysicalExpr>> = vec![];
            for word in WORDS {
                let constant = lit(ScalarValue::Utf8View(Some(word.to_string())));
                for op in [Operator::Eq, Operator::NotEq] {
                    originals.push(Arc::new(BinaryExpr::new(Arc::clone(&column), op, Arc::clone(&constant))));
                    originals.push(Arc::new(BinaryExpr::new(Arc::clone(&constant), op, Arc::clone(&column))));
                }
            }
            for negated in [false, true] {
                let list = ["AIR", "DELIVER IN PERSON", "", "TWELVE BYTES"]
                    .map(|w| lit(ScalarValue::Utf8View(Some(w.to_string()))))
                    .to_vec();
                originals.push(in_list(Arc::clone(&column), list, &negated, &schema).unwrap());
            }
            for original in originals {
                let replaced = replace(&original, &schema).unwrap();
                assert!(replaced.transformed, "{original}");
                let ours = replaced.data;
                assert!(ours.is::<ViewEquals>());
                let expected = original.evaluate(&batch).unwrap().into_array(batch.num_rows()).unwrap();
                let got = ours.evaluate(&batch).unwrap().into_array(batch.num_rows()).unwrap();
                assert_eq!(&expected, &got, "{original}");
                compared += 1;
            }
        }
        assert_eq!(compared, 2 * (WORDS.len() * 4 + 2));
    }

    /// q19's filter in small, read from Parquet: its comparisons are replaced in the plan and the
    /// count is DataFusion's own.
    #[tokio::test]
    async fn q19s_filter_is_replaced_and_the_count_stays() {
        use crate::test_support::{each_node, parquet_context, plan_and_number, scratch_dir, write_parquet};
        use datafusion::arrow::array::StringArray;
        use datafusion::common::tree_node::TreeNodeRecursion;
        use datafusion::execution::SessionStateBuilder;
        use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
        use datafusion::physical_plan::filter::FilterExec;

        let dir = scratch_dir("view-equality");
        let n = 30_000;
        write_parquet(
            &dir.join("items.parquet"),
            vec![
                ("mode", Arc::new(StringArray::from_iter((0..n).map(|i| (i % 11 != 0).then_some(WORDS[i % 7]))))),
                ("how", Arc::new(StringArray::from_iter_values((0..n).map(|i| WORDS[(i / 3) % 10])))),
            ],
            true,
        );
        let sql = "SELECT count(*) FROM items WHERE (mode = 'AIR' OR mode = 'AIR REG') \
                   AND how = 'DELIVER IN PERSON' AND mode NOT IN ('A', 'DELI')";
        let mut answers = vec![];
        for fast in [false, true] {
            let mut rules = PhysicalOptimizer::new().rules;
            if fast {
                rules.push(Arc::new(VIEW_EQUALITY));
            }
            let state = SessionStateBuilder::new().with_default_features().with_physical_optimizer_rules(rules).build();
            let ctx = parquet_context(state, &dir, &["items"]).await;
            let (plan, count) = plan_and_number(&ctx, sql).await;
            let replaced: usize = each_node::<FilterExec, _>(&plan, |f| {
                let mut n = 0;
                f.predicate()
                    .apply(|e| {
                        n += usize::from(e.is::<ViewEquals>());
                        Ok(TreeNodeRecursion::Continue)
                    })
                    .unwrap();
                Some(n)
            })
            .into_iter()
            .sum();
            answers.push((replaced, count));
        }
        assert_eq!(answers[0].0, 0);
        assert!(answers[1].0 >= 3, "{answers:?}");
        assert_eq!(answers[0].1, answers[1].1);
        assert!(answers[1].1 > 0, "{answers:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// A column of plain strings (not views) is left to arrow's kernels: nothing is replaced.
    #[test]
    fn plain_string_columns_are_left_alone() {
        let schema = Schema::new(vec![Field::new("s", DataType::Utf8, true)]);
        let original: Arc<dyn PhysicalExpr> = Arc::new(BinaryExpr::new(
            Arc::new(Column::new("s", 0)),
            Operator::Eq,
            lit(ScalarValue::Utf8(Some("AIR".into()))),
        ));
        assert!(!replace(&original, &schema).unwrap().transformed);
    }
}
