//! A WITH query or view used more than once in a statement is computed once.
//!
//! DataFusion inlines each use of a CTE as its own copy of the plan, so TPC-H q15, whose
//! `revenue0` is joined and also searched for its maximum, reads and aggregates lineitem's
//! quarter twice (3.1× DuckDB at SF10, which materialises such CTEs). Here an analyzer rule finds
//! the copies — subquery aliases over equal plans that read a table and aggregate, join or
//! window, so the sharing saves real work — and wraps each in a [`SharedSubplan`] node that
//! the optimizer cannot see through from above: both copies are optimized alike inside and
//! stay equal. Planned, each becomes a [`SharedExec`] over one cache for the statement: the
//! first use to ask for a partition runs the first copy's plan for it and keeps the batches;
//! the other use gets them. Two copies whose physical plans still differ each run their own.
//!
//! The kept batches count against the memory pool. A subplan with volatile functions or
//! references to an outer query is left as DataFusion plans it (each use its own values, as
//! Athena evaluates a WITH query at each use), and so is everything when a query is spread
//! over workers, which cannot carry the shared cache. `GLAUX_NO_SHARED_SUBPLANS=1` turns it off.

use std::collections::HashMap;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::{Arc, Mutex, OnceLock};

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::catalog::Session;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DFSchemaRef, DataFusionError, Result};
use datafusion::config::ConfigOptions;
use datafusion::execution::context::QueryPlanner;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::physical_planning_context::PhysicalPlanningContext;
use datafusion::logical_expr::{
    Expr, Extension, LogicalPlan, SubqueryAlias, UserDefinedLogicalNode, UserDefinedLogicalNodeCore,
};
use datafusion::optimizer::AnalyzerRule;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties, displayable};
use datafusion::physical_planner::{DefaultPhysicalPlanner, ExtensionPlanner, PhysicalPlanner};
use futures::{StreamExt, TryStreamExt};

/// Finds subplans used more than once and wraps each use in a [`SharedSubplan`].
#[derive(Debug, Default)]
pub struct ShareRepeatedSubplans;

impl AnalyzerRule for ShareRepeatedSubplans {
    fn analyze(&self, plan: LogicalPlan, _: &ConfigOptions) -> Result<LogicalPlan> {
        if std::env::var_os("GLAUX_NO_SHARED_SUBPLANS").is_some() {
            // each use computed on its own, as DataFusion plans it (to measure what sharing does)
            return Ok(plan);
        }
        let mut uses: HashMap<LogicalPlan, usize> = HashMap::new();
        let mut recursive = false;
        plan.apply_with_subqueries(|node| {
            recursive |= matches!(node, LogicalPlan::RecursiveQuery(_));
            if let LogicalPlan::SubqueryAlias(alias) = node
                && worth_sharing(&alias.input)
            {
                *uses.entry(alias.input.as_ref().clone()).or_default() += 1;
            }
            Ok(TreeNodeRecursion::Continue)
        })?;
        let shared: HashMap<LogicalPlan, Arc<SharedCache>> =
            uses.into_iter().filter(|(_, n)| *n > 1).map(|(input, n)| (input, Arc::new(SharedCache::new(n)))).collect();
        if shared.is_empty() || recursive {
            // a recursive query runs its plan again over a work table that changes each time
            return Ok(plan);
        }
        plan.transform_down_with_subqueries(|node| {
            let LogicalPlan::SubqueryAlias(alias) = &node else { return Ok(Transformed::no(node)) };
            let Some(cache) = shared.get(alias.input.as_ref()) else { return Ok(Transformed::no(node)) };
            let input = LogicalPlan::Extension(Extension {
                node: Arc::new(SharedSubplan { input: alias.input.as_ref().clone(), cache: Arc::clone(cache) }),
            });
            let wrapped = LogicalPlan::SubqueryAlias(SubqueryAlias::try_new(Arc::new(input), alias.alias.clone())?);
            // the copy inside is shared as a whole: nothing in it is shared again
            Ok(Transformed::new(wrapped, true, TreeNodeRecursion::Jump))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "glaux_share_repeated_subplans"
    }
}

/// A subplan is worth computing once when it reads a table and does more than filter and
/// project it (those are cheaper to run twice than to keep), and gives the same rows at each
/// use: no volatile function, no reference to an outer query.
fn worth_sharing(plan: &LogicalPlan) -> bool {
    let (mut reads, mut works, mut fixed) = (false, false, true);
    let _ = plan.apply_with_subqueries(|node| {
        match node {
            LogicalPlan::TableScan(_) => reads = true,
            LogicalPlan::Aggregate(_) | LogicalPlan::Join(_) | LogicalPlan::Window(_) | LogicalPlan::Distinct(_) => {
                works = true
            }
            _ => {}
        }
        for expr in node.expressions() {
            let _ = expr.apply(|e| {
                if matches!(e, Expr::OuterReferenceColumn(..)) || e.is_volatile_node() {
                    fixed = false;
                    return Ok(TreeNodeRecursion::Stop);
                }
                Ok(TreeNodeRecursion::Continue)
            });
        }
        Ok(if fixed { TreeNodeRecursion::Continue } else { TreeNodeRecursion::Stop })
    });
    reads && works && fixed
}

/// One use of a subplan that is computed once for all its uses in the statement.
#[derive(Debug, Clone)]
pub struct SharedSubplan {
    input: LogicalPlan,
    cache: Arc<SharedCache>,
}

impl PartialEq for SharedSubplan {
    fn eq(&self, other: &Self) -> bool {
        self.input == other.input && Arc::ptr_eq(&self.cache, &other.cache)
    }
}

impl Eq for SharedSubplan {}

impl Hash for SharedSubplan {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.input.hash(state);
    }
}

impl PartialOrd for SharedSubplan {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        self.input.partial_cmp(&other.input)
    }
}

impl UserDefinedLogicalNodeCore for SharedSubplan {
    fn name(&self) -> &str {
        "SharedSubplan"
    }

    fn inputs(&self) -> Vec<&LogicalPlan> {
        vec![&self.input]
    }

    fn schema(&self) -> &DFSchemaRef {
        self.input.schema()
    }

    fn expressions(&self) -> Vec<Expr> {
        vec![]
    }

    fn fmt_for_explain(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "SharedSubplan: computed once for its {} uses", self.cache.uses)
    }

    fn with_exprs_and_inputs(&self, _: Vec<Expr>, mut inputs: Vec<LogicalPlan>) -> Result<Self> {
        Ok(Self { input: inputs.swap_remove(0), cache: Arc::clone(&self.cache) })
    }

    /// Every column of the input, whatever each use needs of it: the copies stay equal.
    fn necessary_children_exprs(&self, _: &[usize]) -> Option<Vec<Vec<usize>>> {
        Some(vec![(0..self.input.schema().fields().len()).collect()])
    }
}

/// The batches of a shared subplan, by partition, for one statement.
#[derive(Debug)]
pub struct SharedCache {
    uses: usize,
    /// By the text of the physical plan that fills it: the first use's, which the others
    /// share when theirs is the same.
    runs: Mutex<HashMap<String, Arc<SharedRun>>>,
}

impl SharedCache {
    fn new(uses: usize) -> Self {
        Self { uses, runs: Mutex::new(HashMap::new()) }
    }
}

/// One physical plan's partitions, each computed once.
#[derive(Debug)]
struct SharedRun {
    plan: Arc<dyn ExecutionPlan>,
    partitions: Vec<tokio::sync::OnceCell<Arc<Kept>>>,
}

/// A partition's batches and the memory they hold.
#[derive(Debug)]
struct Kept {
    batches: Vec<RecordBatch>,
    _reservation: MemoryReservation,
}

/// Plans [`SharedSubplan`]s as [`SharedExec`]s.
#[derive(Debug)]
struct SharedPlanner;

#[async_trait]
impl ExtensionPlanner for SharedPlanner {
    async fn plan_extension(
        &self,
        _: &dyn PhysicalPlanner,
        node: &dyn UserDefinedLogicalNode,
        _: &[&LogicalPlan],
        physical_inputs: &[Arc<dyn ExecutionPlan>],
        _: &dyn Session,
        _: &PhysicalPlanningContext,
    ) -> Result<Option<Arc<dyn ExecutionPlan>>> {
        let Some(shared) = node.as_any().downcast_ref::<SharedSubplan>() else { return Ok(None) };
        Ok(Some(Arc::new(SharedExec::new(Arc::clone(&physical_inputs[0]), Arc::clone(&shared.cache)))))
    }
}

/// DataFusion's planner, with shared subplans.
#[derive(Debug, Default)]
pub struct GlauxQueryPlanner;

#[async_trait]
impl QueryPlanner for GlauxQueryPlanner {
    async fn create_physical_plan(&self, plan: &LogicalPlan, session: &dyn Session) -> Result<Arc<dyn ExecutionPlan>> {
        DefaultPhysicalPlanner::with_extension_planners(vec![Arc::new(SharedPlanner)])
            .create_physical_plan(plan, session)
            .await
    }
}

/// One use of a shared subplan: its partitions come from the statement's cache.
#[derive(Debug)]
pub struct SharedExec {
    input: Arc<dyn ExecutionPlan>,
    cache: Arc<SharedCache>,
    text: OnceLock<String>,
}

impl SharedExec {
    fn new(input: Arc<dyn ExecutionPlan>, cache: Arc<SharedCache>) -> Self {
        Self { input, cache, text: OnceLock::new() }
    }

    /// The run this use reads: the first use's when their plans are the same, else its own.
    fn run(&self) -> Arc<SharedRun> {
        let text = self.text.get_or_init(|| displayable(self.input.as_ref()).indent(true).to_string());
        let mut runs = self.cache.runs.lock().unwrap_or_else(|p| p.into_inner());
        let run = runs.entry(text.clone()).or_insert_with(|| {
            let partitions = self.input.properties().partitioning.partition_count();
            Arc::new(SharedRun {
                plan: Arc::clone(&self.input),
                partitions: (0..partitions).map(|_| tokio::sync::OnceCell::new()).collect(),
            })
        });
        Arc::clone(run)
    }
}

impl DisplayAs for SharedExec {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "SharedExec: computed once for its {} uses", self.cache.uses)
    }
}

impl ExecutionPlan for SharedExec {
    fn name(&self) -> &str {
        "SharedExec"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn apply_expressions(
        &self,
        _: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, mut children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(SharedExec::new(children.swap_remove(0), Arc::clone(&self.cache))))
    }

    /// A plan run again starts with nothing kept (each use then runs its own copy).
    fn reset_state(self: Arc<Self>) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(SharedExec::new(Arc::clone(&self.input), Arc::new(SharedCache::new(self.cache.uses)))))
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let run = self.run();
        let schema = self.schema();
        let kept = async move {
            let cell = run
                .partitions
                .get(partition)
                .ok_or_else(|| DataFusionError::Internal(format!("shared subplan has no partition {partition}")))?;
            let kept = cell
                .get_or_try_init(|| async {
                    let reservation =
                        MemoryConsumer::new(format!("SharedExec[{partition}]")).register(context.memory_pool());
                    let mut batches = vec![];
                    let mut stream = run.plan.execute(partition, Arc::clone(&context))?;
                    while let Some(batch) = stream.next().await {
                        let batch = batch?;
                        reservation.try_grow(batch.get_array_memory_size())?;
                        batches.push(batch);
                    }
                    Ok::<_, DataFusionError>(Arc::new(Kept { batches, _reservation: reservation }))
                })
                .await?;
            Ok::<_, DataFusionError>(futures::stream::iter(
                kept.batches.clone().into_iter().map(Ok::<_, DataFusionError>),
            ))
        };
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, futures::stream::once(kept).try_flatten())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{each_node, parquet_context, scratch_dir};
    use datafusion::arrow::array::Int64Array;
    use datafusion::datasource::source::DataSourceExec;
    use datafusion::execution::SessionStateBuilder;

    /// q15's shape: a WITH query joined and searched for its maximum is computed once, reading
    /// its table once, with the answer DataFusion gives without sharing.
    #[tokio::test]
    async fn a_with_query_used_twice_reads_its_table_once() {
        let dir = scratch_dir("shared");
        let n = 10_000;
        crate::test_support::write_parquet(
            &dir.join("t.parquet"),
            vec![
                ("k", Arc::new(Int64Array::from_iter_values((0..n).map(|i| i % 100)))),
                ("v", Arc::new(Int64Array::from_iter_values((0..n).map(|i| (i * 7919) % 1000)))),
            ],
            false,
        );
        let sql = "WITH totals AS (SELECT k, sum(v) AS total FROM t GROUP BY k) \
                   SELECT k, total FROM totals WHERE total = (SELECT max(total) FROM totals) ORDER BY k";
        let mut answers = vec![];
        for shared in [false, true] {
            let mut builder = SessionStateBuilder::new().with_default_features();
            if shared {
                builder = builder
                    .with_analyzer_rule(Arc::new(ShareRepeatedSubplans))
                    .with_query_planner(Arc::new(GlauxQueryPlanner));
            }
            let ctx = parquet_context(builder.build(), &dir, &["t"]).await;
            let frame = ctx.sql(sql).await.unwrap();
            let plan = frame.clone().create_physical_plan().await.unwrap();
            let rows = datafusion::physical_plan::collect(Arc::clone(&plan), ctx.task_ctx()).await.unwrap();
            // rows the scans of t gave, over every scan in the plan
            let scanned: usize =
                each_node::<DataSourceExec, _>(&plan, |scan| scan.metrics().and_then(|m| m.output_rows())).iter().sum();
            let shared_nodes = each_node::<SharedExec, _>(&plan, |_| Some(())).len();
            assert_eq!(shared_nodes, if shared { 2 } else { 0 });
            assert_eq!(scanned, if shared { n as usize } else { 2 * n as usize }, "shared: {shared}");
            answers.push(datafusion::arrow::util::pretty::pretty_format_batches(&rows).unwrap().to_string());
        }
        assert_eq!(answers[0], answers[1]);
        assert!(answers[1].lines().count() > 4, "{}", answers[1]);
        let _ = std::fs::remove_dir_all(dir);
    }
}
