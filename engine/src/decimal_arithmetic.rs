//! Decimal `+`, `-` and `*` on values that fit in 64 bits, computed without a per-value overflow
//! check.
//!
//! Arrow computes every Decimal128 sum, difference and product with a checked 128-bit operation
//! per value, which the compiler can neither inline cheaply nor vectorize: in TPC-H q01 at SF10,
//! `l_extendedprice * (1 - l_discount) * (1 + l_tax)` cost 1.2 s of CPU for 59 M rows, as much as
//! decoding two of the columns. Parquet stores decimals of up to 18 digits as 64-bit integers,
//! and a product or sum of two 64-bit integers cannot overflow 128 bits. So this rule replaces
//! each such operation in filters, projections and the arguments of aggregates with [`DecimalArith`],
//! which first checks, in one branch-free pass, that both operands hold 64-bit values, then
//! computes the result in plain 128-bit arithmetic; any other batch (a larger value, a scale
//! beyond 38) goes to arrow's own kernel, so answers, result types and errors are the same.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, PrimitiveArray};
use datafusion::arrow::buffer::{NullBuffer, ScalarBuffer};
use datafusion::arrow::compute::kernels::numeric;
use datafusion::arrow::datatypes::{DataType, Decimal128Type, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{Result, ScalarValue};
use datafusion::logical_expr::{ColumnarValue, Operator};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::BinaryExpr;
use datafusion::physical_expr_common::datum::apply;

use crate::expression_rewrite::{ExpressionRule, Operands};

/// The rule; it runs last, so no other rule sees the replaced expressions.
pub const FAST_DECIMAL_ARITHMETIC: ExpressionRule = ExpressionRule::new("glaux_fast_decimal_arithmetic", replace);

/// Each decimal `+`, `-`, `*` of an expression, innermost first, made a [`DecimalArith`].
fn replace(expr: &Arc<dyn PhysicalExpr>, schema: &Schema) -> Result<Transformed<Arc<dyn PhysicalExpr>>> {
    Arc::clone(expr).transform_up(|e| {
        let Some(binary) = e.downcast_ref::<BinaryExpr>() else {
            return Ok(Transformed::no(e));
        };
        let decimal = |side: &Arc<dyn PhysicalExpr>| {
            // a child already replaced reports the same type as the operation it replaced
            side.data_type(schema).is_ok_and(|t| matches!(t, DataType::Decimal128(..)))
        };
        if matches!(binary.op(), Operator::Plus | Operator::Minus | Operator::Multiply)
            && decimal(binary.left())
            && decimal(binary.right())
        {
            let new = DecimalArith { operands: Operands::of(binary) };
            return Ok(Transformed::yes(Arc::new(new) as Arc<dyn PhysicalExpr>));
        }
        Ok(Transformed::no(e))
    })
}

/// `left op right` on two Decimal128 operands; see the module's comment.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct DecimalArith {
    pub(crate) operands: Operands,
}

impl DecimalArith {
    /// The same operation as DataFusion's, for its type and for batches that do not fit.
    fn binary(&self) -> BinaryExpr {
        self.operands.binary()
    }
}

/// One side of the operation: its values (one for a constant), nulls, precision and scale.
struct Operand<'a> {
    values: &'a [i128],
    nulls: Option<&'a NullBuffer>,
    precision: u8,
    scale: i8,
}

impl<'a> Operand<'a> {
    fn of(value: &'a ColumnarValue, scalar: &'a mut [i128; 1]) -> Option<Self> {
        match value {
            ColumnarValue::Array(array) => {
                let DataType::Decimal128(precision, scale) = *array.data_type() else { return None };
                let array = array.as_primitive_opt::<Decimal128Type>()?;
                Some(Self { values: array.values(), nulls: array.nulls(), precision, scale })
            }
            ColumnarValue::Scalar(ScalarValue::Decimal128(Some(v), precision, scale)) => {
                scalar[0] = *v;
                Some(Self { values: &scalar[..], nulls: None, precision: *precision, scale: *scale })
            }
            _ => None,
        }
    }

    /// Whether every value (nulls' slots too, whatever they hold) fits in 64 bits.
    fn fits_64_bits(&self) -> bool {
        self.values.iter().fold(true, |fits, v| fits & (*v as i64 as i128 == *v))
    }
}

/// Arrow's result precision and scale for the operation (its `decimal_op`), and the powers of ten
/// each side is multiplied by first; None where this computation does not apply.
fn result_type(op: Operator, l: &Operand, r: &Operand) -> Option<(u8, i8, i128, i128)> {
    const MAX_PRECISION: u8 = 38;
    const MAX_SCALE: i8 = 38;
    // 10^18 times a 64-bit value stays below 2^123: the sum of two such cannot overflow
    const MAX_RESCALE: i8 = 18;
    match op {
        Operator::Plus | Operator::Minus => {
            let scale = l.scale.max(r.scale);
            let precision = (scale.saturating_add((l.precision as i8 - l.scale).max(r.precision as i8 - r.scale))
                as u8)
                .saturating_add(1)
                .min(MAX_PRECISION);
            let (lk, rk) = (scale - l.scale, scale - r.scale);
            if !(0..=MAX_RESCALE).contains(&lk) || !(0..=MAX_RESCALE).contains(&rk) {
                return None;
            }
            Some((precision, scale, 10i128.pow(lk as u32), 10i128.pow(rk as u32)))
        }
        Operator::Multiply => {
            let precision = l.precision.saturating_add(r.precision + 1).min(MAX_PRECISION);
            let scale = l.scale.saturating_add(r.scale);
            (scale <= MAX_SCALE).then_some((precision, scale, 1, 1))
        }
        _ => None,
    }
}

/// A value known to fit in 64 bits, as 128: the compiler multiplies two of these with one
/// widening instruction.
#[inline(always)]
fn wide(v: i128) -> i128 {
    v as i64 as i128
}

/// `f` over the rows, a constant side (one value) read once rather than at every row; None if a
/// side is neither one value nor `len`.
#[inline(always)]
fn each_pair(l: &Operand, r: &Operand, len: usize, f: impl Fn(i128, i128) -> i128) -> Option<Vec<i128>> {
    Some(match (l.values, r.values) {
        (a, b) if a.len() == len && b.len() == len => a.iter().zip(b).map(|(&a, &b)| f(a, b)).collect(),
        ([a], b) if b.len() == len => b.iter().map(|&b| f(*a, b)).collect(),
        (a, [b]) if a.len() == len => a.iter().map(|&a| f(a, *b)).collect(),
        _ => return None,
    })
}

/// The result when both operands fit in 64 bits, None otherwise.
fn fast(op: Operator, lhs: &ColumnarValue, rhs: &ColumnarValue) -> Option<ArrayRef> {
    let (mut ls, mut rs) = ([0i128], [0i128]);
    let (l, r) = (Operand::of(lhs, &mut ls)?, Operand::of(rhs, &mut rs)?);
    let len = match (lhs, rhs) {
        (ColumnarValue::Array(a), ColumnarValue::Array(b)) if a.len() == b.len() => a.len(),
        (ColumnarValue::Array(a), ColumnarValue::Scalar(_)) | (ColumnarValue::Scalar(_), ColumnarValue::Array(a)) => {
            a.len()
        }
        _ => return None,
    };
    let (precision, scale, lm, rm) = result_type(op, &l, &r)?;
    if !l.fits_64_bits() || !r.fits_64_bits() {
        return None;
    }
    // the operands fit in 64 bits, so none of these can overflow 128 (see result_type), and the
    // products are of two 64-bit values: one widening multiply each, not three
    let (lm, rm) = (lm as i64, rm as i64);
    let values = match op {
        Operator::Multiply => each_pair(&l, &r, len, |a, b| wide(a).wrapping_mul(wide(b))),
        Operator::Plus if (lm, rm) == (1, 1) => each_pair(&l, &r, len, |a, b| wide(a).wrapping_add(wide(b))),
        Operator::Minus if (lm, rm) == (1, 1) => each_pair(&l, &r, len, |a, b| wide(a).wrapping_sub(wide(b))),
        Operator::Plus => each_pair(&l, &r, len, |a, b| (wide(a) * lm as i128).wrapping_add(wide(b) * rm as i128)),
        Operator::Minus => each_pair(&l, &r, len, |a, b| (wide(a) * lm as i128).wrapping_sub(wide(b) * rm as i128)),
        _ => return None,
    }?;
    let nulls = NullBuffer::union(l.nulls, r.nulls);
    let array = PrimitiveArray::<Decimal128Type>::new(ScalarBuffer::from(values), nulls)
        .with_precision_and_scale(precision, scale)
        .ok()?;
    Some(Arc::new(array))
}

impl PhysicalExpr for DecimalArith {
    fn data_type(&self, input_schema: &Schema) -> Result<DataType> {
        self.binary().data_type(input_schema)
    }

    fn nullable(&self, input_schema: &Schema) -> Result<bool> {
        self.binary().nullable(input_schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        let Operands { op, left, right } = &self.operands;
        let lhs = left.evaluate(batch)?;
        let rhs = right.evaluate(batch)?;
        if let Some(array) = fast(*op, &lhs, &rhs) {
            return Ok(ColumnarValue::Array(array));
        }
        // arrow's kernels check each value; for decimals the wrapping and checked ones are one
        match op {
            Operator::Plus => apply(&lhs, &rhs, numeric::add),
            Operator::Minus => apply(&lhs, &rhs, numeric::sub),
            _ => apply(&lhs, &rhs, numeric::mul),
        }
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

impl fmt::Display for DecimalArith {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // the same operation as the query's: EXPLAIN shows it as written
        self.operands.fmt_as_written(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::each_node;
    use datafusion::arrow::array::Decimal128Array;
    use datafusion::arrow::datatypes::Field;
    use datafusion::physical_expr::expressions::{Column, Literal};
    use datafusion::physical_plan::ExecutionPlan;
    use datafusion::physical_plan::aggregates::AggregateExec;
    use datafusion::physical_plan::projection::ProjectionExec;

    fn decimals(values: Vec<Option<i128>>, precision: u8, scale: i8) -> ArrayRef {
        Arc::new(Decimal128Array::from(values).with_precision_and_scale(precision, scale).unwrap())
    }

    /// `price * (1 - discount)` replaced shows as written, parentheses and all (the inner
    /// operation is a stand-in too, which DataFusion's display would not put them around).
    #[test]
    fn nested_operations_show_as_written() {
        let schema = Schema::new(vec![
            Field::new("price", DataType::Decimal128(15, 2), true),
            Field::new("discount", DataType::Decimal128(15, 2), true),
        ]);
        let column = |name: &str| Arc::new(Column::new_with_schema(name, &schema).unwrap()) as Arc<dyn PhysicalExpr>;
        let one = Arc::new(Literal::new(ScalarValue::Decimal128(Some(1), 20, 0))) as Arc<dyn PhysicalExpr>;
        let inner = Arc::new(BinaryExpr::new(one, Operator::Minus, column("discount"))) as Arc<dyn PhysicalExpr>;
        let expr = Arc::new(BinaryExpr::new(column("price"), Operator::Multiply, inner)) as Arc<dyn PhysicalExpr>;
        let replaced = replace(&expr, &schema).unwrap();
        assert!(replaced.transformed);
        assert!(replaced.data.downcast_ref::<DecimalArith>().is_some());
        assert_eq!(replaced.data.to_string(), expr.to_string());
        assert!(replaced.data.to_string().contains("price@0 * ("), "{}", replaced.data);
    }

    /// Every operation gives what arrow's kernel gives — values, nulls, type, errors — for
    /// arrays and constants, values in and out of 64 bits, equal and different scales.
    #[test]
    fn the_same_answers_as_arrows_kernels() {
        let big = i64::MAX as i128 * 3;
        let cases: Vec<(ArrayRef, ArrayRef)> = vec![
            (
                decimals(vec![Some(10_500_000), Some(-1), None, Some(i64::MAX as i128)], 15, 2),
                decimals(vec![Some(96), Some(100), Some(5), Some(i64::MIN as i128)], 15, 2),
            ),
            (decimals(vec![Some(123), None, Some(-7)], 38, 4), decimals(vec![Some(4), Some(5), None], 23, 2)),
            // out of 64 bits: arrow's kernel, including its overflow error
            (decimals(vec![Some(big), Some(1)], 38, 0), decimals(vec![Some(big), Some(2)], 38, 0)),
            (decimals(vec![Some(1), Some(2)], 38, 30), decimals(vec![Some(3), Some(4)], 38, 10)),
            (decimals(vec![Some(5)], 10, 0), decimals(vec![Some(6)], 38, 38)),
        ];
        let mut fast_paths = 0;
        for (a, b) in cases {
            let schema = Schema::new(vec![
                Field::new("a", a.data_type().clone(), true),
                Field::new("b", b.data_type().clone(), true),
            ]);
            let batch = RecordBatch::try_new(Arc::new(schema.clone()), vec![Arc::clone(&a), Arc::clone(&b)]).unwrap();
            let one = ScalarValue::try_from_array(&b, 0).unwrap();
            let sides: Vec<(Arc<dyn PhysicalExpr>, Arc<dyn PhysicalExpr>)> = vec![
                (Arc::new(Column::new("a", 0)), Arc::new(Column::new("b", 1))),
                (Arc::new(Literal::new(one.clone())), Arc::new(Column::new("a", 0))),
                (Arc::new(Column::new("a", 0)), Arc::new(Literal::new(one))),
            ];
            for op in [Operator::Plus, Operator::Minus, Operator::Multiply] {
                for (l, r) in &sides {
                    let binary = BinaryExpr::new(Arc::clone(l), op, Arc::clone(r));
                    let ours = DecimalArith { operands: Operands { op, left: Arc::clone(l), right: Arc::clone(r) } };
                    let (lhs, rhs) = (l.evaluate(&batch).unwrap(), r.evaluate(&batch).unwrap());
                    fast_paths += usize::from(fast(op, &lhs, &rhs).is_some());
                    let expected = binary.evaluate(&batch).and_then(|v| v.into_array(batch.num_rows()));
                    let got = ours.evaluate(&batch).and_then(|v| v.into_array(batch.num_rows()));
                    match (expected, got) {
                        (Ok(e), Ok(g)) => {
                            assert_eq!(e.data_type(), g.data_type(), "{binary}");
                            assert_eq!(&e, &g, "{binary}");
                            assert_eq!(binary.data_type(&schema).unwrap(), *g.data_type(), "{binary}");
                        }
                        (Err(e), Err(g)) => assert_eq!(e.to_string(), g.to_string(), "{binary}"),
                        (e, g) => panic!("{binary}: arrow {e:?}, glaux {g:?}"),
                    }
                }
            }
        }
        // the first two cases (18 operations) and the constant sides of the third fit in 64 bits
        assert!(fast_paths >= 18, "{fast_paths} operations took the fast path");
    }

    /// How many operations of a plan's projections and aggregate arguments are replaced.
    fn replaced(plan: &Arc<dyn ExecutionPlan>) -> usize {
        let count = |e: &Arc<dyn PhysicalExpr>| {
            let mut n = 0;
            e.apply(|e| {
                n += usize::from(e.downcast_ref::<DecimalArith>().is_some());
                Ok(datafusion::common::tree_node::TreeNodeRecursion::Continue)
            })
            .unwrap();
            n
        };
        let projected: usize =
            each_node::<ProjectionExec, _>(plan, |p| Some(p.expr().iter().map(|e| count(&e.expr)).sum::<usize>()))
                .into_iter()
                .sum();
        let aggregated: usize = each_node::<AggregateExec, _>(plan, |a| {
            Some(a.aggr_expr().iter().flat_map(|f| f.expressions()).map(|e| count(&e)).sum::<usize>())
        })
        .into_iter()
        .sum();
        projected + aggregated
    }

    /// q01's arithmetic in small: the projection's and the aggregate's decimal operations are
    /// replaced, and the sums are the same as DataFusion's own, to the last digit.
    #[tokio::test]
    async fn q01s_arithmetic_is_replaced_and_the_sums_stay() {
        use crate::test_support::{parquet_context, scratch_dir, write_parquet};
        use datafusion::arrow::array::StringArray;
        use datafusion::arrow::util::pretty::pretty_format_batches;
        use datafusion::execution::SessionStateBuilder;
        use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;

        let dir = scratch_dir("decimals");
        let n = 20_000i128;
        let column =
            |f: fn(i128) -> i128, precision, scale| decimals((0..n).map(|i| Some(f(i))).collect(), precision, scale);
        write_parquet(
            &dir.join("items.parquet"),
            vec![
                ("price", column(|i| 90_000 + i * 7919 % 10_500_000, 15, 2)),
                ("discount", column(|i| i % 11, 15, 2)),
                ("tax", column(|i| i % 9, 15, 2)),
                ("flag", Arc::new(StringArray::from_iter_values((0..n).map(|i| ["A", "N", "R"][i as usize % 3])))),
            ],
            true,
        );
        let sql = "SELECT flag, sum(price), sum(price * (1 - discount)) AS disc, \
                   sum(price * (1 - discount) * (1 + tax)) AS charge, sum(price - tax * 3) AS odd \
                   FROM items GROUP BY flag ORDER BY flag";
        let mut answers = vec![];
        for fast in [false, true] {
            let mut rules = PhysicalOptimizer::new().rules;
            if fast {
                rules.push(Arc::new(FAST_DECIMAL_ARITHMETIC));
            }
            let state = SessionStateBuilder::new().with_default_features().with_physical_optimizer_rules(rules).build();
            let ctx = parquet_context(state, &dir, &["items"]).await;
            let frame = ctx.sql(sql).await.unwrap();
            let plan = frame.clone().create_physical_plan().await.unwrap();
            let table = pretty_format_batches(&frame.collect().await.unwrap()).unwrap().to_string();
            answers.push((replaced(&plan), table));
        }
        assert_eq!(answers[0].0, 0);
        // 1 - discount, price * (…), 1 + tax, (…) * (…), tax * 3, price - (…)
        assert_eq!(answers[1].0, 6, "{}", answers[1].1);
        assert_eq!(answers[0].1, answers[1].1);
        assert_eq!(answers[1].1.lines().count(), 3 + 4, "{}", answers[1].1);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
