//! What rules replacing expressions with faster equivalents share: the walk over each filter's
//! predicate, each projection's expressions and the arguments of aggregates that read input rows,
//! and the operands of a stand-in for one of DataFusion's binary expressions.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use datafusion::arrow::array::ArrayRef;
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::{Transformed, TransformedResult, TreeNode};
use datafusion::common::{DataFusionError, Result, ScalarValue};
use datafusion::config::ConfigOptions;
use datafusion::logical_expr::{ColumnarValue, Operator};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{BinaryExpr, Literal};
use datafusion::physical_expr::projection::ProjectionExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use datafusion::physical_plan::projection::ProjectionExec;

/// How an expression over rows of `schema` is replaced.
pub type Replace = fn(&Arc<dyn PhysicalExpr>, &Schema) -> Result<Transformed<Arc<dyn PhysicalExpr>>>;

/// A rule that replaces expressions through [`rewrite_expressions`]: its name, and how.
#[derive(Debug)]
pub struct ExpressionRule {
    name: &'static str,
    replace: Replace,
}

impl ExpressionRule {
    pub const fn new(name: &'static str, replace: Replace) -> Self {
        Self { name, replace }
    }
}

impl PhysicalOptimizerRule for ExpressionRule {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        rewrite_expressions(plan, self.replace)
    }

    fn name(&self) -> &str {
        self.name
    }

    fn schema_check(&self) -> bool {
        true
    }
}

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

/// The operator and operands of an expression standing in for DataFusion's `BinaryExpr` (the same
/// operation, evaluated faster): compared, hashed and shown as that expression.
#[derive(Debug, Clone)]
pub struct Operands {
    pub op: Operator,
    pub left: Arc<dyn PhysicalExpr>,
    pub right: Arc<dyn PhysicalExpr>,
}

impl Operands {
    pub fn of(binary: &BinaryExpr) -> Self {
        Self { op: *binary.op(), left: Arc::clone(binary.left()), right: Arc::clone(binary.right()) }
    }

    /// DataFusion's expression over the same operands.
    pub fn binary(&self) -> BinaryExpr {
        BinaryExpr::new(Arc::clone(&self.left), self.op, Arc::clone(&self.right))
    }

    pub fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.left, &self.right]
    }

    pub fn with_children(&self, children: Vec<Arc<dyn PhysicalExpr>>) -> Result<Self> {
        let [left, right]: [Arc<dyn PhysicalExpr>; 2] =
            children.try_into().map_err(|_| DataFusionError::Internal(format!("{} takes two operands", self.op)))?;
        Ok(Self { op: self.op, left, right })
    }

    /// Shown as DataFusion's expression, the stand-ins inside it too: DataFusion puts the
    /// parentheses precedence needs (`a * (1 - b)`) only around its own expressions.
    pub fn fmt_as_written(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.as_written())
    }

    pub fn fmt_sql_as_written(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.as_written().fmt_sql(f)
    }

    fn as_written(&self) -> Arc<dyn PhysicalExpr> {
        let written: Arc<dyn PhysicalExpr> = Arc::new(self.binary());
        written
            .transform_up(|e| match stand_in(&e) {
                Some(operands) => Ok(Transformed::yes(Arc::new(operands.binary()) as Arc<dyn PhysicalExpr>)),
                None => Ok(Transformed::no(e)),
            })
            .data()
            .unwrap_or_else(|_| Arc::new(self.binary()))
    }
}

/// The operands of `e` when it stands in for one of DataFusion's binary expressions.
fn stand_in(e: &Arc<dyn PhysicalExpr>) -> Option<&Operands> {
    e.downcast_ref::<crate::decimal_arithmetic::DecimalArith>()
        .map(|d| &d.operands)
        .or_else(|| e.downcast_ref::<crate::short_circuit::ShortCircuit>().map(|s| &s.operands))
}

impl PartialEq for Operands {
    fn eq(&self, other: &Self) -> bool {
        self.op == other.op && self.left.eq(&other.left) && self.right.eq(&other.right)
    }
}

impl Eq for Operands {}

impl Hash for Operands {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.op.hash(state);
        self.left.hash(state);
        self.right.hash(state);
    }
}

/// A non-null string constant.
pub fn string_constant(e: &Arc<dyn PhysicalExpr>) -> Option<String> {
    match e.downcast_ref::<Literal>()?.value() {
        ScalarValue::Utf8(Some(s)) | ScalarValue::Utf8View(Some(s)) | ScalarValue::LargeUtf8(Some(s)) => {
            Some(s.clone())
        }
        _ => None,
    }
}

/// What an expression standing in for one of DataFusion's over a single column keeps: that
/// column, and the expression it replaced (`original`), which evaluates arrays the stand-in does
/// not take and is what the stand-in is shown, compared and hashed as.
#[derive(Debug, Clone)]
pub struct Replaced {
    pub column: Arc<dyn PhysicalExpr>,
    pub original: Arc<dyn PhysicalExpr>,
}

impl Replaced {
    pub fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.column]
    }

    /// The column's values in `batch` when they are string views; otherwise (`Err`) what the
    /// original expression gives for the batch.
    pub fn views_or_original(&self, batch: &RecordBatch) -> Result<std::result::Result<ArrayRef, ColumnarValue>> {
        match self.column.evaluate(batch)? {
            ColumnarValue::Array(array) if array.data_type() == &DataType::Utf8View => Ok(Ok(array)),
            _ => Ok(Err(self.original.evaluate(batch)?)),
        }
    }

    /// The same on `children`' one column, wherever it now is; None without one.
    pub fn with_children(&self, mut children: Vec<Arc<dyn PhysicalExpr>>) -> Result<Option<Self>> {
        let Some(column) = children.pop() else { return Ok(None) };
        let original = Arc::clone(&self.original)
            .transform_up(|e| {
                Ok(if e.eq(&self.column) { Transformed::yes(Arc::clone(&column)) } else { Transformed::no(e) })
            })?
            .data;
        Ok(Some(Self { column, original }))
    }
}

/// Display (as the query wrote it), equality and hashing of a stand-in with a `replaced:
/// Replaced` field: those of the expression it replaced.
macro_rules! as_replaced {
    ($stand_in:ty) => {
        impl std::fmt::Display for $stand_in {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                write!(f, "{}", self.replaced.original)
            }
        }

        impl PartialEq for $stand_in {
            fn eq(&self, other: &Self) -> bool {
                self.replaced.original.eq(&other.replaced.original)
            }
        }

        impl Eq for $stand_in {}

        impl std::hash::Hash for $stand_in {
            fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
                self.replaced.original.hash(state);
            }
        }
    };
}
pub(crate) use as_replaced;

/// Inside `impl PhysicalExpr` for a stand-in with a `replaced: Replaced` field: its nullability,
/// child (the column), snapshot and SQL, those of the expression it replaced.
macro_rules! physical_as_replaced {
    () => {
        fn nullable(&self, input_schema: &Schema) -> Result<bool> {
            self.replaced.original.nullable(input_schema)
        }

        fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
            self.replaced.children()
        }

        fn snapshot(&self) -> Result<Option<Arc<dyn PhysicalExpr>>> {
            Ok(Some(Arc::clone(&self.replaced.original)))
        }

        fn fmt_sql(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            self.replaced.original.fmt_sql(f)
        }
    };
}
pub(crate) use physical_as_replaced;
