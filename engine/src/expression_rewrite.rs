//! The walk that rules replacing expressions with faster equivalents share: each filter's
//! predicate, each projection's expressions and the arguments of aggregates that read input rows.

use std::sync::Arc;

use datafusion::arrow::datatypes::Schema;
use datafusion::common::Result;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::projection::ProjectionExpr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use datafusion::physical_plan::projection::ProjectionExec;

/// How an expression over rows of `schema` is replaced.
pub type Replace = fn(&Arc<dyn PhysicalExpr>, &Schema) -> Result<Transformed<Arc<dyn PhysicalExpr>>>;

/// `plan` with `replace` applied to the expressions of its filters, projections and aggregates.
pub fn rewrite_expressions(plan: Arc<dyn ExecutionPlan>, replace: Replace) -> Result<Arc<dyn ExecutionPlan>> {
    plan.transform_up(|node| {
        if let Some(filter) = node.downcast_ref::<FilterExec>() {
            let predicate = replace(filter.predicate(), &filter.input().schema())?;
            if !predicate.transformed {
                return Ok(Transformed::no(node));
            }
            let new = FilterExecBuilder::from(filter).with_predicate(predicate.data).build()?;
            return Ok(Transformed::yes(Arc::new(new) as Arc<dyn ExecutionPlan>));
        }
        if let Some(projection) = node.downcast_ref::<ProjectionExec>() {
            let schema = projection.input().schema();
            let mut changed = false;
            let exprs = projection
                .expr()
                .iter()
                .map(|e| {
                    let expr = replace(&e.expr, &schema)?;
                    changed |= expr.transformed;
                    Ok(ProjectionExpr { expr: expr.data, alias: e.alias.clone() })
                })
                .collect::<Result<Vec<_>>>()?;
            if !changed {
                return Ok(Transformed::no(node));
            }
            let input = Arc::clone(projection.input());
            let new = ProjectionExec::try_new_with_schema_metadata(exprs, input, &projection.schema())?;
            return Ok(Transformed::yes(Arc::new(new) as Arc<dyn ExecutionPlan>));
        }
        if let Some(aggregate) = node.downcast_ref::<AggregateExec>()
            // only these modes evaluate their arguments on input rows
            && matches!(aggregate.mode(), AggregateMode::Partial | AggregateMode::Single | AggregateMode::SinglePartitioned)
        {
            let schema = aggregate.input().schema();
            let mut changed = false;
            let mut functions = vec![];
            for function in aggregate.aggr_expr() {
                let expressions = function.all_expressions();
                let args = expressions
                    .args
                    .iter()
                    .map(|a| {
                        let a = replace(a, &schema)?;
                        changed |= a.transformed;
                        Ok(a.data)
                    })
                    .collect::<Result<Vec<_>>>()?;
                match function.with_new_expressions(args, expressions.order_by_exprs) {
                    Some(f) => functions.push(Arc::new(f)),
                    None => return Ok(Transformed::no(node)),
                }
            }
            if !changed {
                return Ok(Transformed::no(node));
            }
            let new = aggregate.with_new_aggr_exprs(functions);
            return Ok(Transformed::yes(Arc::new(new) as Arc<dyn ExecutionPlan>));
        }
        Ok(Transformed::no(node))
    })
    .data()
}
