//! Casts of floating-point and decimal numbers to integers round half away from zero, as Athena
//! (Trino) does: `CAST(81.94 AS INTEGER)` is 82 and `CAST(-2.5 AS BIGINT)` is -3. DataFusion
//! truncates toward zero, which silently changes answers of queries written for Athena; this
//! analyzer rule wraps the cast operand in `round()` (which rounds half away from zero for both
//! floats and decimals) and keeps every expression's name, so nothing above the cast notices.

use datafusion::arrow::datatypes::DataType;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, Result};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::expr::{Cast, TryCast};
use datafusion::logical_expr::expr_rewriter::NamePreserver;
use datafusion::logical_expr::utils::merge_schema;
use datafusion::logical_expr::{Expr, ExprSchemable, LogicalPlan};
use datafusion::optimizer::AnalyzerRule;

#[derive(Debug, Default)]
pub struct RoundingIntegerCasts;

impl AnalyzerRule for RoundingIntegerCasts {
    fn name(&self) -> &str {
        "glaux_rounding_integer_casts"
    }

    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        plan.transform_up_with_subqueries(|plan| {
            let schema = merge_schema(&plan.inputs());
            let names = NamePreserver::new(&plan);
            plan.map_expressions(|expr| {
                let name = names.save(&expr);
                expr.transform_up(|e| round_operand(e, &schema)).map(|t| t.update_data(|e| name.restore(e)))
            })?
            .map_data(|plan| plan.recompute_schema())
        })
        .map(|t| t.data)
    }
}

fn rounds(from: &DataType) -> bool {
    matches!(
        from,
        DataType::Float16
            | DataType::Float32
            | DataType::Float64
            | DataType::Decimal32(..)
            | DataType::Decimal64(..)
            | DataType::Decimal128(..)
            | DataType::Decimal256(..)
    )
}

fn round(expr: Expr) -> Box<Expr> {
    Box::new(datafusion::functions::math::expr_fn::round(vec![expr]))
}

/// `CAST(x AS <integer>)` with a fractional `x` becomes `CAST(round(x) AS <integer>)`.
fn round_operand(e: Expr, schema: &DFSchema) -> Result<Transformed<Expr>> {
    let fractional = |operand: &Expr, to: &DataType| {
        // a type we cannot tell (an error the planner reports itself) is left alone
        to.is_integer() && operand.get_type(schema).is_ok_and(|t| rounds(&t))
    };
    Ok(match e {
        Expr::Cast(Cast { expr, field }) if fractional(&expr, field.data_type()) => {
            Transformed::yes(Expr::Cast(Cast { expr: round(*expr), field }))
        }
        Expr::TryCast(TryCast { expr, field }) if fractional(&expr, field.data_type()) => {
            Transformed::yes(Expr::TryCast(TryCast { expr: round(*expr), field }))
        }
        other => Transformed::no(other),
    })
}
