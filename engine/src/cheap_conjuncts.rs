//! A filter's cheap conditions are evaluated first, so that the costly ones run only on the rows
//! those leave.
//!
//! DataFusion evaluates `a AND b` by computing `a` for every row, then `b` only for the rows `a`
//! keeps when that is a fifth of them or fewer (for every row otherwise), in the order the query
//! wrote them. TPC-H q12 writes `l_shipmode IN ('MAIL', 'SHIP')` (two string comparisons) first
//! and the receipt-date year (two integer comparisons that keep a seventh of the rows) last, so
//! the strings were compared for all 60 million lineitem rows at SF10. Here comparisons of a
//! fixed-width column with a constant come first, then comparisons of two fixed-width columns,
//! then everything else in the order written. The moved conditions cannot fail, and each other
//! condition then sees a subset of the rows it saw before, so a condition written to guard
//! another still does.
//!
//! The cheap conditions are then evaluated together ([`AllOf`]): each on the whole batch, their
//! results combined bit by bit. DataFusion's `a AND b`, once `a` keeps a fifth of the rows or
//! fewer, copies the batch's rows that `a` keeps, evaluates `b` on the copy and spreads the
//! result back, at every AND of the chain: TPC-H q06's five comparisons (a year of ship dates, a
//! discount range, a quantity) took 1.05 s of CPU over 60 M rows at SF10, where each comparison
//! alone is a vectorized pass of a few tens of ms. That copy pays for costly conditions (a LIKE on
//! the rows left), which still run after the cheap ones in DataFusion's way.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::array::{Array, BooleanArray};
use datafusion::arrow::compute::kernels::boolean::and_kleene;
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::Result;
use datafusion::common::cast::as_boolean_array;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::ColumnarValue;
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{BinaryExpr, Column, Literal};
use datafusion::physical_expr::utils::{conjunction, split_conjunction};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};

#[derive(Debug)]
pub struct CheapConjunctsFirst {
    /// Whether the cheap conditions are evaluated together ([`AllOf`]). A plan spread over
    /// workers keeps DataFusion's AND: its codec does not know AllOf.
    fuse: bool,
}

impl Default for CheapConjunctsFirst {
    fn default() -> Self {
        Self { fuse: true }
    }
}

impl CheapConjunctsFirst {
    /// The rule for plans spread over workers.
    pub fn unfused() -> Self {
        Self { fuse: false }
    }
}

impl PhysicalOptimizerRule for CheapConjunctsFirst {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(filter) = node.downcast_ref::<FilterExec>() else {
                return Ok(Transformed::no(node));
            };
            let schema = filter.input().schema();
            let mut ranked: Vec<(u8, Arc<dyn PhysicalExpr>)> =
                split_conjunction(filter.predicate()).into_iter().map(|c| (cost(c, &schema), Arc::clone(c))).collect();
            let cheap = if self.fuse { ranked.iter().filter(|(cost, _)| *cost < 2).count() } else { 0 };
            if ranked.is_sorted_by_key(|(cost, _)| *cost) && cheap < 2 {
                return Ok(Transformed::no(node));
            }
            // stable: conditions of one cost keep the order they were written in
            ranked.sort_by_key(|(cost, _)| *cost);
            let mut conditions: Vec<_> = ranked.into_iter().map(|(_, c)| c).collect();
            if cheap >= 2 {
                let all = AllOf { conditions: conditions.drain(..cheap).collect() };
                conditions.insert(0, Arc::new(all));
            }
            let predicate = conjunction(conditions);
            let filter = FilterExecBuilder::from(filter).with_predicate(predicate).build()?;
            Ok(Transformed::yes(Arc::new(filter) as Arc<dyn ExecutionPlan>))
        })
        .data()
    }

    fn name(&self) -> &str {
        "cheap_conjuncts_first"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Conditions that cannot fail, each evaluated on every row and combined with SQL's AND (see
/// the module's comment).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AllOf {
    conditions: Vec<Arc<dyn PhysicalExpr>>,
}

impl PhysicalExpr for AllOf {
    fn data_type(&self, _: &Schema) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn nullable(&self, input_schema: &Schema) -> Result<bool> {
        self.conditions.iter().try_fold(false, |any, c| Ok(any || c.nullable(input_schema)?))
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        let mut all: Option<BooleanArray> = None;
        for condition in &self.conditions {
            let result = condition.evaluate(batch)?.into_array(batch.num_rows())?;
            let result = as_boolean_array(&result)?;
            let combined = match &all {
                None => result.clone(),
                Some(all) => and_kleene(all, result)?,
            };
            // false everywhere: no later condition can change that
            let settled = combined.null_count() == 0 && combined.true_count() == 0;
            all = Some(combined);
            if settled {
                break;
            }
        }
        let all = all.unwrap_or_else(|| BooleanArray::from(vec![true; batch.num_rows()]));
        Ok(ColumnarValue::Array(Arc::new(all)))
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        self.conditions.iter().collect()
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn PhysicalExpr>>) -> Result<Arc<dyn PhysicalExpr>> {
        Ok(Arc::new(Self { conditions: children }))
    }

    fn snapshot(&self) -> Result<Option<Arc<dyn PhysicalExpr>>> {
        Ok(Some(conjunction(self.conditions.iter().cloned())))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        conjunction(self.conditions.iter().cloned()).fmt_sql(f)
    }
}

impl fmt::Display for AllOf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // the conditions as the query wrote them, joined by AND
        write!(f, "{}", conjunction(self.conditions.iter().cloned()))
    }
}

/// 0: a fixed-width column compared with a constant; 1: two fixed-width columns compared;
/// 2: anything else (strings, functions, ORs, LIKE, arithmetic that may fail).
fn cost(expr: &Arc<dyn PhysicalExpr>, schema: &Schema) -> u8 {
    let fixed = |e: &Arc<dyn PhysicalExpr>| {
        e.downcast_ref::<Column>()
            .is_some_and(|c| schema.fields().get(c.index()).is_some_and(|f| f.data_type().primitive_width().is_some()))
    };
    let constant = |e: &Arc<dyn PhysicalExpr>| e.downcast_ref::<Literal>().is_some();
    let Some(comparison) = expr.downcast_ref::<BinaryExpr>() else {
        return 2;
    };
    if !matches!(
        comparison.op(),
        Operator::Eq | Operator::NotEq | Operator::Lt | Operator::LtEq | Operator::Gt | Operator::GtEq
    ) {
        return 2;
    }
    let (left, right) = (comparison.left(), comparison.right());
    if (fixed(left) && constant(right)) || (constant(left) && fixed(right)) {
        0
    } else if fixed(left) && fixed(right) {
        1
    } else {
        2
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{each_node, parquet_context, plan_and_number, scratch_dir};
    use datafusion::arrow::array::{Date32Array, Int64Array, StringArray};
    use datafusion::execution::SessionStateBuilder;
    use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;

    /// q12's filter in small: the string test written first runs last, after the date range and
    /// the column-to-column comparison, which are evaluated together; the count is the same as
    /// DataFusion's own order gives.
    #[tokio::test]
    async fn cheap_conditions_run_first_and_the_answer_stays() {
        let dir = scratch_dir("conjuncts");
        let n = 10_000;
        crate::test_support::write_parquet(
            &dir.join("items.parquet"),
            vec![
                ("mode", Arc::new(StringArray::from_iter_values((0..n).map(|i| ["MAIL", "SHIP", "AIR"][i % 3])))),
                ("shipped", Arc::new(Date32Array::from_iter_values((0..n).map(|i| 8000 + (i % 700) as i32)))),
                ("received", Arc::new(Date32Array::from_iter_values((0..n).map(|i| 8000 + (i * 7 % 730) as i32)))),
                ("k", Arc::new(Int64Array::from_iter_values(0..n as i64))),
            ],
            true,
        );
        let sql = "SELECT count(*) FROM items WHERE mode IN ('MAIL', 'SHIP') AND shipped < received \
                   AND received >= DATE '1992-01-01' AND received < DATE '1992-07-01'";
        let mut answers = vec![];
        for reorder in [false, true] {
            let mut rules = PhysicalOptimizer::new().rules;
            if reorder {
                rules.push(Arc::new(CheapConjunctsFirst::default()));
            }
            let state = SessionStateBuilder::new().with_default_features().with_physical_optimizer_rules(rules).build();
            let ctx = parquet_context(state, &dir, &["items"]).await;
            let (plan, count) = plan_and_number(&ctx, sql).await;
            let order = each_node::<FilterExec, _>(&plan, |f| {
                let schema = f.input().schema();
                let costs = |c: &Arc<dyn PhysicalExpr>| match c.downcast_ref::<AllOf>() {
                    Some(all) => {
                        format!("all{:?}", all.conditions.iter().map(|c| cost(c, &schema)).collect::<Vec<_>>())
                    }
                    None => cost(c, &schema).to_string(),
                };
                Some(split_conjunction(f.predicate()).into_iter().map(costs).collect::<Vec<_>>())
            });
            answers.push((order, count));
        }
        assert_eq!(answers[0].1, answers[1].1);
        assert!(answers[0].1 > 0, "{answers:?}");
        assert_eq!(answers[0].0, vec![vec!["2", "1", "0", "0"]], "as written: {answers:?}");
        assert_eq!(answers[1].0, vec![vec!["all[0, 0, 1]", "2"]], "cheap first: {answers:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// AllOf answers what DataFusion's chain of ANDs answers, row for row, nulls included, both
    /// where the first condition keeps few rows (DataFusion's copying path) and where it keeps
    /// many, and where no row is left after the first.
    #[test]
    fn all_of_answers_what_and_answers() {
        use datafusion::arrow::datatypes::Field;
        use datafusion::physical_expr::expressions::{binary, col, lit};
        let n = 10_000;
        let schema =
            Arc::new(Schema::new(vec![Field::new("a", DataType::Int64, true), Field::new("b", DataType::Int64, true)]));
        let a = Int64Array::from_iter((0..n).map(|i| (i % 17 != 0).then_some(i % 100)));
        let b = Int64Array::from_iter((0..n).map(|i| (i % 23 != 0).then_some(i % 37)));
        let batch = RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(a), Arc::new(b)]).unwrap();
        let compare = |c: &str, op, v: i64| binary(col(c, &schema).unwrap(), op, lit(v), &schema).unwrap();
        let cases = [
            vec![compare("a", Operator::Lt, 10), compare("b", Operator::GtEq, 5), compare("a", Operator::NotEq, 3)],
            vec![compare("a", Operator::Lt, 90), compare("b", Operator::Lt, 30)],
            vec![compare("a", Operator::Lt, 0), compare("b", Operator::Lt, 30)],
            vec![
                compare("b", Operator::Gt, 1),
                binary(col("a", &schema).unwrap(), Operator::Gt, col("b", &schema).unwrap(), &schema).unwrap(),
            ],
        ];
        for conditions in cases {
            let chained = conjunction(conditions.iter().cloned());
            let all = AllOf { conditions };
            let expected = chained.evaluate(&batch).unwrap().into_array(n as usize).unwrap();
            let got = all.evaluate(&batch).unwrap().into_array(n as usize).unwrap();
            assert_eq!(&expected, &got, "{chained}");
            assert_eq!(all.to_string(), chained.to_string());
        }
    }
}
