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

use std::sync::Arc;

use datafusion::arrow::datatypes::Schema;
use datafusion::common::Result;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::Operator;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{BinaryExpr, Column, Literal};
use datafusion::physical_expr::utils::{conjunction, split_conjunction};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};

#[derive(Debug, Default)]
pub struct CheapConjunctsFirst;

impl PhysicalOptimizerRule for CheapConjunctsFirst {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(filter) = node.downcast_ref::<FilterExec>() else {
                return Ok(Transformed::no(node));
            };
            let schema = filter.input().schema();
            let mut ranked: Vec<(u8, Arc<dyn PhysicalExpr>)> =
                split_conjunction(filter.predicate()).into_iter().map(|c| (cost(c, &schema), Arc::clone(c))).collect();
            if ranked.is_sorted_by_key(|(cost, _)| *cost) {
                return Ok(Transformed::no(node));
            }
            // stable: conditions of one cost keep the order they were written in
            ranked.sort_by_key(|(cost, _)| *cost);
            let predicate = conjunction(ranked.into_iter().map(|(_, c)| c));
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
    /// the column-to-column comparison; the count is the same as DataFusion's own order gives.
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
                rules.push(Arc::new(CheapConjunctsFirst));
            }
            let state = SessionStateBuilder::new().with_default_features().with_physical_optimizer_rules(rules).build();
            let ctx = parquet_context(state, &dir, &["items"]).await;
            let (plan, count) = plan_and_number(&ctx, sql).await;
            let order = each_node::<FilterExec, _>(&plan, |f| {
                let schema = f.input().schema();
                Some(split_conjunction(f.predicate()).into_iter().map(|c| cost(c, &schema)).collect::<Vec<_>>())
            });
            answers.push((order, count));
        }
        assert_eq!(answers[0].1, answers[1].1);
        assert!(answers[0].1 > 0, "{answers:?}");
        assert_eq!(answers[0].0, vec![vec![2, 1, 0, 0]], "as written: {answers:?}");
        assert_eq!(answers[1].0, vec![vec![0, 0, 1, 2]], "cheap first: {answers:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
