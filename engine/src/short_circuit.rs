//! AND and OR evaluated as DataFusion evaluates them, except that when the right side ran only on
//! the few rows the left side leaves open, its answers are put back in place bit by bit.
//!
//! DataFusion's `a AND b`, when `a` is true on a fifth of the rows or fewer, evaluates `b` only on
//! those rows and then spreads `b`'s answers back over the batch: for every run of consecutive
//! selected rows it slices `b`'s array and appends its values one by one. Selected rows that are
//! scattered make one slice per row. TPC-H q19's last condition (three ranges of quantities,
//! after the ship mode and instruction leave 7% of lineitem) spent 11% of the query's CPU in that
//! spreading alone at SF10, more than evaluating the condition. Here the answers are written
//! straight to the positions of the selected rows. `a OR b` does the same for the rows where `a`
//! is false. Everything else (which side is evaluated, on which rows, nulls, the uniform answers
//! DataFusion returns without spreading) is DataFusion's: outside that one step the evaluation is
//! handed to DataFusion's own expression. Plans spread over workers keep DataFusion's: its codec
//! does not know this one.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, BooleanArray, BooleanBufferBuilder};
use datafusion::arrow::buffer::NullBuffer;
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, Operator};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::BinaryExpr;

use crate::expression_rewrite::{ExpressionRule, Operands};

/// The rule; it runs after the rules that reorder a filter's conditions.
pub const SHORT_CIRCUITS: ExpressionRule = ExpressionRule::new("glaux_short_circuits", replace);

/// Each AND and OR of two boolean expressions made a [`ShortCircuit`].
fn replace(expr: &Arc<dyn PhysicalExpr>, schema: &Schema) -> Result<Transformed<Arc<dyn PhysicalExpr>>> {
    Arc::clone(expr).transform_up(|e| {
        if let Some(binary) = e.downcast_ref::<BinaryExpr>()
            && matches!(binary.op(), Operator::And | Operator::Or)
            && binary.left().data_type(schema).is_ok_and(|t| t == DataType::Boolean)
            && binary.right().data_type(schema).is_ok_and(|t| t == DataType::Boolean)
        {
            let replaced = ShortCircuit { operands: Operands::of(binary) };
            return Ok(Transformed::yes(Arc::new(replaced) as Arc<dyn PhysicalExpr>));
        }
        Ok(Transformed::no(e))
    })
}

/// `left AND right` or `left OR right` (see the module's comment).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ShortCircuit {
    pub(crate) operands: Operands,
}

impl ShortCircuit {
    fn binary(&self) -> BinaryExpr {
        self.operands.binary()
    }

    /// The rows whose answer depends on the right side, when DataFusion evaluates it on those
    /// rows only: the left side has no nulls, and is true (AND) or false (OR) on some rows, at
    /// most a fifth of them. With the value every other row takes.
    fn selection(&self, left: &ColumnarValue) -> Option<(BooleanArray, bool)> {
        const PRE_SELECTION_THRESHOLD: f32 = 0.2;
        let ColumnarValue::Array(left) = left else { return None };
        let left = left.as_boolean_opt()?;
        if left.null_count() > 0 || left.is_empty() {
            return None;
        }
        let (open, fill) = match self.operands.op {
            Operator::And => (left.true_count(), false),
            _ => (left.len() - left.true_count(), true),
        };
        if open == 0 || open == left.len() || open as f32 / left.len() as f32 > PRE_SELECTION_THRESHOLD {
            return None;
        }
        let mask = if fill { BooleanArray::new(!left.values(), None) } else { left.clone() };
        Some((mask, fill))
    }
}

impl PhysicalExpr for ShortCircuit {
    fn data_type(&self, input_schema: &Schema) -> Result<DataType> {
        self.binary().data_type(input_schema)
    }

    fn nullable(&self, input_schema: &Schema) -> Result<bool> {
        self.binary().nullable(input_schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        let Operands { op, left, right } = &self.operands;
        let left = left.evaluate(batch)?;
        if let Some((mask, fill)) = self.selection(&left) {
            let selected = filter_record_batch(batch, &mask)?;
            // the same answer on every selected row: nothing to spread
            let uniform = |value: bool, left| {
                if value == fill { ColumnarValue::Scalar(ScalarValue::Boolean(Some(fill))) } else { left }
            };
            match right.evaluate(&selected)? {
                ColumnarValue::Array(answers) if answers.as_boolean_opt().is_some() => {
                    let answers = answers.as_boolean();
                    if answers.null_count() == 0 && (!answers.has_false() || !answers.has_true()) {
                        return Ok(uniform(answers.has_true(), left));
                    }
                    return Ok(ColumnarValue::Array(Arc::new(spread(&mask, answers, fill))));
                }
                ColumnarValue::Scalar(ScalarValue::Boolean(Some(value))) => return Ok(uniform(value, left)),
                ColumnarValue::Scalar(ScalarValue::Boolean(None)) => {
                    let answers = BooleanArray::new_null(selected.num_rows());
                    return Ok(ColumnarValue::Array(Arc::new(spread(&mask, &answers, fill))));
                }
                // not a boolean: DataFusion's own error, below
                _ => {}
            }
        }
        // everything else as DataFusion does it, from the left side already evaluated
        BinaryExpr::new(Arc::new(Evaluated(left)), *op, Arc::clone(right)).evaluate(batch)
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        self.operands.children()
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn PhysicalExpr>>) -> Result<Arc<dyn PhysicalExpr>> {
        Ok(Arc::new(Self { operands: self.operands.with_children(children)? }))
    }

    fn snapshot(&self) -> Result<Option<Arc<dyn PhysicalExpr>>> {
        Ok(Some(Arc::new(self.binary())))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.operands.fmt_sql_as_written(f)
    }
}

impl fmt::Display for ShortCircuit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.operands.fmt_as_written(f)
    }
}

/// `right`'s answers (one per row `mask` selects, in order) at the selected rows' positions,
/// `fill` at the others.
fn spread(mask: &BooleanArray, right: &BooleanArray, fill: bool) -> BooleanArray {
    let len = mask.len();
    let mut values = BooleanBufferBuilder::new(len);
    values.append_n(len, fill);
    let mut valid = right.nulls().map(|_| {
        let mut valid = BooleanBufferBuilder::new(len);
        valid.append_n(len, true);
        valid
    });
    for (k, i) in mask.values().set_indices().enumerate() {
        values.set_bit(i, right.values().value(k));
        if let Some(valid) = valid.as_mut() {
            valid.set_bit(i, right.is_valid(k));
        }
    }
    BooleanArray::new(values.finish(), valid.map(|mut v| NullBuffer::new(v.finish())))
}

/// A value already computed, given to DataFusion's expression as its left side.
#[derive(Debug)]
struct Evaluated(ColumnarValue);

impl PhysicalExpr for Evaluated {
    fn data_type(&self, _: &Schema) -> Result<DataType> {
        Ok(self.0.data_type())
    }

    fn nullable(&self, _: &Schema) -> Result<bool> {
        Ok(true)
    }

    fn evaluate(&self, _: &RecordBatch) -> Result<ColumnarValue> {
        Ok(self.0.clone())
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![]
    }

    fn with_new_children(self: Arc<Self>, _: Vec<Arc<dyn PhysicalExpr>>) -> Result<Arc<dyn PhysicalExpr>> {
        Ok(self)
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "(evaluated)")
    }
}

impl fmt::Display for Evaluated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "(evaluated)")
    }
}

// never compared or hashed: it lives for one evaluation
impl PartialEq for Evaluated {
    fn eq(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
    }
}

impl Eq for Evaluated {}

impl Hash for Evaluated {
    fn hash<H: Hasher>(&self, state: &mut H) {
        std::ptr::hash(self, state)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::Int64Array;
    use datafusion::arrow::datatypes::Field;
    use datafusion::physical_expr::expressions::{col, lit};

    /// A batch of `n` rows: `a` true where `a(i)`, `b` where `b(i)` (None: NULL), `x` = i.
    fn batch(n: usize, a: impl Fn(usize) -> Option<bool>, b: impl Fn(usize) -> Option<bool>) -> RecordBatch {
        let schema = Schema::new(vec![
            Field::new("a", DataType::Boolean, true),
            Field::new("b", DataType::Boolean, true),
            Field::new("x", DataType::Int64, false),
        ]);
        RecordBatch::try_new(
            Arc::new(schema),
            vec![
                Arc::new((0..n).map(&a).collect::<BooleanArray>()),
                Arc::new((0..n).map(&b).collect::<BooleanArray>()),
                Arc::new(Int64Array::from_iter_values(0..n as i64)),
            ],
        )
        .unwrap()
    }

    /// Every left side (few, many, no and all rows true; with NULLs) against every right side
    /// (mixed, NULLs, the same on every row, a comparison evaluated on the selected rows only,
    /// a constant), AND and OR: the same rows, NULLs and types as DataFusion's.
    #[test]
    fn the_same_answers_as_datafusions_and_and_or() {
        let n = 1000;
        let lefts: Vec<Box<dyn Fn(usize) -> Option<bool>>> = vec![
            Box::new(|i| Some(i % 10 == 3)),
            Box::new(|i| Some(i % 10 != 3)),
            Box::new(|i| Some(i % 97 == 0)),
            Box::new(|_| Some(false)),
            Box::new(|_| Some(true)),
            Box::new(|i| if i % 13 == 0 { None } else { Some(i % 10 == 3) }),
        ];
        let rights: Vec<Box<dyn Fn(usize) -> Option<bool>>> = vec![
            Box::new(|i| Some(i % 3 == 0)),
            Box::new(|i| if i % 7 == 0 { None } else { Some(i % 2 == 0) }),
            Box::new(|_| Some(true)),
            Box::new(|_| Some(false)),
            Box::new(|_| None),
        ];
        let mut checked = 0;
        for left in &lefts {
            for right in &rights {
                let batch = batch(n, left, right);
                let schema = batch.schema();
                let sides: Vec<Arc<dyn PhysicalExpr>> = vec![
                    col("b", &schema).unwrap(),
                    Arc::new(BinaryExpr::new(col("x", &schema).unwrap(), Operator::Gt, lit(500i64))),
                    lit(ScalarValue::Boolean(None)),
                    lit(true),
                ];
                for right_side in sides {
                    for op in [Operator::And, Operator::Or] {
                        let left_side = col("a", &schema).unwrap();
                        let operands = Operands { op, left: Arc::clone(&left_side), right: Arc::clone(&right_side) };
                        let ours = ShortCircuit { operands };
                        let theirs = BinaryExpr::new(left_side, op, Arc::clone(&right_side));
                        let (ours, theirs) = (ours.evaluate(&batch).unwrap(), theirs.evaluate(&batch).unwrap());
                        let (ours, theirs) = (ours.into_array(n).unwrap(), theirs.into_array(n).unwrap());
                        assert_eq!(ours.as_boolean(), theirs.as_boolean(), "{op} with right side {right_side}");
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 6 * 5 * 4 * 2);
    }

    /// The spreading itself: answers land at the selected positions, NULLs too, the rest filled.
    #[test]
    fn answers_land_where_their_rows_were() {
        let mask = BooleanArray::from(vec![false, true, false, false, true, true, false]);
        let right = BooleanArray::from(vec![Some(true), None, Some(false)]);
        let and = spread(&mask, &right, false);
        assert_eq!(
            and,
            BooleanArray::from(vec![Some(false), Some(true), Some(false), Some(false), None, Some(false), Some(false)])
        );
        let or = spread(&mask, &right, true);
        assert_eq!(
            or,
            BooleanArray::from(vec![Some(true), Some(true), Some(true), Some(true), None, Some(false), Some(true)])
        );
    }

    #[test]
    fn ands_and_ors_of_conditions_are_replaced_and_shown_as_written() {
        let schema = batch(1, |_| Some(true), |_| Some(true)).schema();
        let x_gt = |v: i64| -> Arc<dyn PhysicalExpr> {
            Arc::new(BinaryExpr::new(col("x", &schema).unwrap(), Operator::Gt, lit(v)))
        };
        let inner: Arc<dyn PhysicalExpr> = Arc::new(BinaryExpr::new(x_gt(1), Operator::Or, x_gt(2)));
        let expr: Arc<dyn PhysicalExpr> = Arc::new(BinaryExpr::new(col("a", &schema).unwrap(), Operator::And, inner));
        let shown = expr.to_string();
        let replaced = replace(&expr, &schema).unwrap().data;
        let mut found = 0;
        replaced
            .apply(|e| {
                found += usize::from(e.downcast_ref::<ShortCircuit>().is_some());
                Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
            })
            .unwrap();
        assert_eq!(found, 2);
        assert_eq!(replaced.to_string(), shown);
    }
}
