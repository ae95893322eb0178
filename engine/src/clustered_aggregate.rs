//! A partial aggregate whose input arrives grouped (every key in one run of rows) emits each
//! group as its run ends, instead of holding every group in a hash table.
//!
//! Files are often written in the order of a key: TPC-H's lineitem by `l_orderkey`, an event
//! table by its id or time. q18's `GROUP BY l_orderkey` then feeds DataFusion's partial aggregate
//! 60 M rows that make 15 M groups at SF10: its hash table grows to millions of entries, each
//! row's lookup misses the caches, and it took 3.8 s of CPU, the largest part of the query. Nothing
//! declares the files' order to the planner (Parquet's `sorting_columns` is rarely written, and
//! tpchgen does not), so DataFusion cannot choose its ordered aggregate.
//!
//! A partial aggregate's output may hold a key more than once (each input partition already gives
//! its own row for a key; the final aggregate merges them), so its ordered form is correct on any
//! input: it keeps the groups since its last output, emits all but the newest after each batch,
//! and a key seen again after its group left starts a new group. It is fast when keys come in
//! runs, and on input that is not grouped it emits about a row per input row, as DataFusion's own
//! partial aggregate does once it finds that grouping does not pay. So [`ClusteredPartial`]
//! decides per partition, from its first batch: the ordered form when every key of that batch is
//! in one run, runs are two rows or longer on average (keys each seen once tell nothing), and
//! there are many keys (at least one per [`ROWS_PER_GROUP`] rows; with fewer, a hash table stays
//! small and reduces the rows more); DataFusion's hash aggregate otherwise. The ordered form's
//! output, a fraction of a batch after each input batch, is gathered into whole batches. A
//! partition whose first batch is not in runs and makes at most [`FEW_KEYS`] groups (q01's four)
//! is aggregated by [`few_groups`] instead, which hands what it cannot take to DataFusion's
//! aggregate. Plans spread over workers keep DataFusion's aggregate, whose codec does not know
//! this node.
//! `GLAUX_NO_CLUSTERED_AGGREGATES=1` turns the rule off.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex};

use datafusion::arrow::compute::{BatchCoalescer, SortOptions};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::arrow::row::{RowConverter, SortField};
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, Result, Statistics};
use datafusion::config::ConfigOptions;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::{EquivalenceProperties, LexOrdering, PhysicalExpr, PhysicalSortExpr};
use datafusion::physical_expr_common::utils::evaluate_expressions_to_arrays;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::{AggregateExec, AggregateMode};
use datafusion::physical_plan::execution_plan::CardinalityEffect;
use datafusion::physical_plan::execution_plan::{
    Boundedness, ChildrenPropertiesMode, EmissionType, ReplaceChildrenOptions,
};
use datafusion::physical_plan::metrics::{ExecutionPlanMetricsSet, MetricBuilder, MetricsSet};
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{
    ChildStats, DisplayAs, DisplayFormatType, ExecutionPlan, InputDistributionRequirements, InputOrderMode,
    Partitioning, PlanProperties, StatisticsArgs,
};
use futures::{StreamExt, TryStreamExt};

use crate::few_groups;

/// The ordered form is chosen only when a batch holds at least one key per this many rows.
pub const ROWS_PER_GROUP: usize = 8;

/// Batches smaller than this tell too little: the hash aggregate runs.
const MIN_SAMPLE_ROWS: usize = 256;

/// Keys of a first batch up to which a partition is aggregated as [`few_groups`] does.
const FEW_KEYS: usize = 16;

/// The rule: every partial aggregate with GROUP BY, on input of no known order, becomes a
/// [`ClusteredPartial`]. It runs last, after the rules that rewrite aggregates' arguments.
#[derive(Debug, Default)]
pub struct ClusteredAggregates;

impl PhysicalOptimizerRule for ClusteredAggregates {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        if std::env::var_os("GLAUX_NO_CLUSTERED_AGGREGATES").is_some() {
            return Ok(plan);
        }
        plan.transform_up(|node| {
            let Some(aggregate) = node.downcast_ref::<AggregateExec>() else { return Ok(Transformed::no(node)) };
            if !applies(aggregate) {
                return Ok(Transformed::no(node));
            }
            Ok(Transformed::yes(Arc::new(ClusteredPartial::new(Arc::new(aggregate.clone())))))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "glaux_clustered_aggregates"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Partial, grouped by one set of keys (no GROUPING SETS), of input in no known order, with no
/// limit and no aggregate that needs its input ordered.
fn applies(aggregate: &AggregateExec) -> bool {
    *aggregate.mode() == AggregateMode::Partial
        && aggregate.input_order_mode() == &InputOrderMode::Linear
        && !aggregate.group_expr().expr().is_empty()
        && aggregate.group_expr().groups().len() == 1
        && aggregate.limit_options().is_none()
        && aggregate.aggr_expr().iter().all(|a| a.order_bys().is_empty())
}

/// A partial aggregate that runs DataFusion's hash form or its ordered form, per partition, as its
/// first batch shows the keys come (see the module's comment). Shown as the aggregate it runs.
#[derive(Debug)]
pub struct ClusteredPartial {
    /// DataFusion's aggregate, as planned (hash form).
    aggregate: Arc<AggregateExec>,
    /// The aggregates that ran, one per partition executed: their metrics are this node's.
    ran: Arc<Mutex<Vec<Arc<dyn ExecutionPlan>>>>,
    /// `partitions_in_runs`: how many partitions ran the ordered form (EXPLAIN ANALYZE shows it).
    metrics: ExecutionPlanMetricsSet,
}

impl ClusteredPartial {
    pub fn new(aggregate: Arc<AggregateExec>) -> Self {
        Self { aggregate, ran: Arc::default(), metrics: ExecutionPlanMetricsSet::new() }
    }

    /// The form each partition DataFusion's aggregate ran for ran in (hash: `Linear`; ordered:
    /// `Sorted`).
    #[cfg(test)]
    fn forms(&self) -> Vec<InputOrderMode> {
        let ran = self.ran.lock().unwrap_or_else(|e| e.into_inner());
        ran.iter().filter_map(|a| a.downcast_ref::<AggregateExec>().map(|a| a.input_order_mode().clone())).collect()
    }

    /// How many partitions started as few groups.
    #[cfg(test)]
    fn few_groups(&self) -> usize {
        self.metrics.clone_inner().sum_by_name("partitions_few_groups").map_or(0, |m| m.as_usize())
    }
}

impl DisplayAs for ClusteredPartial {
    fn fmt_as(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        self.aggregate.fmt_as(t, f)
    }
}

impl ExecutionPlan for ClusteredPartial {
    fn name(&self) -> &str {
        "ClusteredPartial"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.aggregate.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![self.aggregate.input()]
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.aggregate.apply_expressions(f)
    }

    fn with_new_children(self: Arc<Self>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        let aggregate = recomputed(&self.aggregate, children)?;
        let aggregate = aggregate
            .downcast_ref::<AggregateExec>()
            .ok_or_else(|| DataFusionError::Internal("a partial aggregate's copy is not an aggregate".into()))?;
        Ok(Arc::new(Self::new(Arc::new(aggregate.clone()))))
    }

    fn reset_state(self: Arc<Self>) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(Arc::new(Self::new(Arc::clone(&self.aggregate))))
    }

    // what the planner asks of a node, answered as the aggregate answers it

    fn input_distribution_requirements(&self) -> InputDistributionRequirements {
        self.aggregate.input_distribution_requirements()
    }

    fn maintains_input_order(&self) -> Vec<bool> {
        self.aggregate.maintains_input_order()
    }

    fn cardinality_effect(&self) -> CardinalityEffect {
        self.aggregate.cardinality_effect()
    }

    fn child_stats_requests(&self, partition: Option<usize>) -> Vec<ChildStats> {
        self.aggregate.child_stats_requests(partition)
    }

    fn statistics_from_inputs(
        &self,
        input_stats: &[Arc<Statistics>],
        args: &StatisticsArgs,
    ) -> Result<Arc<Statistics>> {
        self.aggregate.statistics_from_inputs(input_stats, args)
    }

    fn metrics(&self) -> Option<MetricsSet> {
        let ran = self.ran.lock().unwrap_or_else(|e| e.into_inner());
        let mut metrics = self.metrics.clone_inner();
        for ran_metrics in ran.iter().filter_map(|aggregate| aggregate.metrics()) {
            for metric in ran_metrics.iter() {
                metrics.push(Arc::clone(metric));
            }
        }
        Some(metrics)
    }

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let mut input = self.aggregate.input().execute(partition, Arc::clone(&context))?;
        let aggregate = Arc::clone(&self.aggregate);
        let schema = self.schema();
        let ran = Arc::clone(&self.ran);
        let in_runs = MetricBuilder::new(&self.metrics).counter("partitions_in_runs", partition);
        let few = MetricBuilder::new(&self.metrics).counter("partitions_few_groups", partition);
        let started = async move {
            // the first batch with rows decides; it is handed on with the rest
            let mut first = None;
            while let Some(batch) = input.next().await {
                let batch = batch?;
                if batch.num_rows() > 0 {
                    first = Some(batch);
                    break;
                }
            }
            // a partition without rows has no groups: nothing to aggregate
            let Some(first) = first else {
                let empty = futures::stream::empty();
                return Ok(
                    Box::pin(RecordBatchStreamAdapter::new(aggregate.schema(), empty)) as SendableRecordBatchStream
                );
            };
            let keys = aggregate.group_expr().input_exprs();
            let ordered = comes_in_runs(&first, &keys)?;
            if ordered {
                in_runs.add(1);
            }
            // DataFusion's aggregate (its ordered form when keys come in runs) over a stream
            let hashed = {
                let (aggregate, ran, context) = (Arc::clone(&aggregate), Arc::clone(&ran), Arc::clone(&context));
                let keys = keys.clone();
                move |rest: SendableRecordBatchStream, ordered: bool| {
                    let input_schema = rest.schema();
                    let handoff = Handoff::new(rest, input_schema, ordered.then_some(keys));
                    let run = recomputed(&aggregate, vec![Arc::new(handoff)])?;
                    ran.lock().unwrap_or_else(|e| e.into_inner()).push(Arc::clone(&run));
                    let batch_size = context.session_config().batch_size();
                    let output = run.execute(0, context)?;
                    // the ordered form emits after each input batch, a fraction of a batch each time
                    if !ordered {
                        return Ok(output);
                    }
                    let coalescer = BatchCoalescer::new(output.schema(), batch_size);
                    Ok::<_, DataFusionError>(crate::filter_output::gathered(output, coalescer))
                }
            };
            if !ordered && few_groups::eligible(&aggregate) && few_groups::has_few_keys(&first, &keys, FEW_KEYS)? {
                few.add(1);
                return few_groups::run(Arc::clone(&aggregate), first, input, |rest| hashed(rest, false)).await;
            }
            let input_schema = input.schema();
            let rest = futures::stream::iter([Ok(first)]).chain(input);
            hashed(Box::pin(RecordBatchStreamAdapter::new(input_schema, rest)), ordered)
        };
        let stream = futures::stream::once(started).try_flatten();
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, stream)))
    }
}

/// The aggregate over other input, its properties (and so its form) worked out again.
fn recomputed(aggregate: &Arc<AggregateExec>, children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
    Arc::clone(aggregate).replace_children(children, ReplaceChildrenOptions::new(ChildrenPropertiesMode::Recompute))
}

/// Whether the batch's keys come in runs, each key in one, of two rows or more on average, and
/// there are many of them (at least one per [`ROWS_PER_GROUP`] rows).
fn comes_in_runs(batch: &RecordBatch, keys: &[Arc<dyn PhysicalExpr>]) -> Result<bool> {
    if batch.num_rows() < MIN_SAMPLE_ROWS {
        return Ok(false);
    }
    let columns = evaluate_expressions_to_arrays(keys, batch)?;
    // a key type the row format cannot hold: DataFusion's hash aggregate, which can
    let Ok(converter) = RowConverter::new(columns.iter().map(|c| SortField::new(c.data_type().clone())).collect())
    else {
        return Ok(false);
    };
    let rows = converter.convert_columns(&columns)?;
    let runs = 1 + (1..rows.num_rows()).filter(|&i| rows.row(i) != rows.row(i - 1)).count();
    // runs of one row each tell nothing of where a key comes again
    if runs * ROWS_PER_GROUP < rows.num_rows() || runs * 2 > rows.num_rows() {
        return Ok(false);
    }
    let distinct = rows.iter().collect::<HashSet<_>>().len();
    Ok(distinct == runs)
}

/// One partition's input, already started, handed to the aggregate that runs it; declared in the
/// order of the group keys when they come in runs, which makes DataFusion's aggregate run its
/// ordered form. Never part of a plan anything else sees.
struct Handoff {
    stream: Mutex<Option<SendableRecordBatchStream>>,
    properties: Arc<PlanProperties>,
}

impl Handoff {
    fn new(
        stream: SendableRecordBatchStream,
        schema: SchemaRef,
        ordered_by: Option<Vec<Arc<dyn PhysicalExpr>>>,
    ) -> Self {
        let ordering = ordered_by.and_then(|keys| {
            LexOrdering::new(keys.into_iter().map(|key| PhysicalSortExpr::new(key, SortOptions::default())))
        });
        let properties = EquivalenceProperties::new_with_orderings(schema, ordering);
        let properties = PlanProperties::new(
            properties,
            Partitioning::UnknownPartitioning(1),
            EmissionType::Incremental,
            Boundedness::Bounded,
        );
        Self { stream: Mutex::new(Some(stream)), properties: Arc::new(properties) }
    }
}

impl fmt::Debug for Handoff {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Handoff")
    }
}

impl DisplayAs for Handoff {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "Handoff")
    }
}

impl ExecutionPlan for Handoff {
    fn name(&self) -> &str {
        "Handoff"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        &self.properties
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![]
    }

    fn apply_expressions(
        &self,
        _: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    fn with_new_children(self: Arc<Self>, _: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(self)
    }

    fn execute(&self, partition: usize, _: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let stream = self.stream.lock().unwrap_or_else(|e| e.into_inner()).take();
        match (partition, stream) {
            (0, Some(stream)) => Ok(stream),
            _ => {
                Err(DataFusionError::Internal(format!("a partial aggregate's input was asked for twice ({partition})")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{each_node, parquet_context, scratch_dir, write_parquet};
    use datafusion::arrow::array::{ArrayRef, Int64Array, StringArray};
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::execution::SessionStateBuilder;
    use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
    use datafusion::physical_plan::{collect, displayable};
    use datafusion::prelude::SessionConfig;

    const ROWS: i64 = 40_000;

    /// The forms the rule's aggregates ran in: DataFusion's, partition by partition, and how
    /// many partitions started as few groups.
    type Forms = (Vec<InputOrderMode>, usize);

    /// `sql` over a table of `ROWS` rows whose key is `key(i)` and value `i`, with and without
    /// the rule: the two answers, and the forms the rule's aggregates ran in. Its `flag` is a
    /// short string of three values in the first 30,000 rows and longer than a string view holds
    /// after them; `n` is `i % 4` or NULL (every seventh row).
    async fn both_ways(key: impl Fn(i64) -> i64, sql: &str) -> (String, String, Forms) {
        let dir = scratch_dir("clustered-aggregate");
        let keys: Vec<i64> = (0..ROWS).map(&key).collect();
        let label: ArrayRef = Arc::new(StringArray::from_iter_values(keys.iter().map(|k| format!("key {}", k / 2))));
        let flag = |i: i64| if i < 30_000 { format!("f{}", i % 3) } else { format!("a longer flag, {}", i % 3) };
        write_parquet(
            &dir.join("t.parquet"),
            vec![
                ("k", Arc::new(Int64Array::from(keys.clone())) as ArrayRef),
                ("label", label),
                ("v", Arc::new(Int64Array::from_iter_values(0..ROWS))),
                ("flag", Arc::new(StringArray::from_iter_values((0..ROWS).map(flag)))),
                ("n", Arc::new(Int64Array::from_iter((0..ROWS).map(|i| (i % 7 != 0).then_some(i % 4)))) as ArrayRef),
            ],
            true,
        );
        let mut answers = vec![];
        let mut forms = (vec![], 0);
        for clustered in [false, true] {
            let mut rules = PhysicalOptimizer::new().rules;
            if clustered {
                rules.push(Arc::new(ClusteredAggregates));
            }
            let state = SessionStateBuilder::new()
                .with_config(SessionConfig::new().with_target_partitions(2))
                .with_default_features()
                .with_physical_optimizer_rules(rules)
                .build();
            let ctx = parquet_context(state, &dir, &["t"]).await;
            let plan = ctx.sql(sql).await.unwrap().create_physical_plan().await.unwrap();
            let shown = displayable(plan.as_ref()).indent(false).to_string();
            assert!(!shown.contains("Clustered") && shown.contains("mode=Partial"), "{shown}");
            let batches = collect(Arc::clone(&plan), ctx.task_ctx()).await.unwrap();
            answers.push(pretty_format_batches(&batches).unwrap().to_string());
            if clustered {
                forms = (
                    each_node::<ClusteredPartial, _>(&plan, |c| Some(c.forms())).concat(),
                    each_node::<ClusteredPartial, _>(&plan, |c| Some(c.few_groups())).iter().sum(),
                );
            }
        }
        std::fs::remove_dir_all(&dir).unwrap();
        let [without, with] = <[String; 2]>::try_from(answers).unwrap();
        (without, with, forms)
    }

    const SUMS: &str = "SELECT k, sum(v), count(*), min(v) FROM t GROUP BY k ORDER BY k";

    #[tokio::test]
    async fn keys_in_runs_are_aggregated_run_by_run() {
        let (without, with, (forms, _)) = both_ways(|i| i / 4, SUMS).await;
        assert_eq!(with, without);
        assert_eq!(with.lines().count(), 4 + 10_000);
        assert!(forms.contains(&InputOrderMode::Sorted), "{forms:?}");
    }

    #[tokio::test]
    async fn keys_in_runs_of_two_columns_are_aggregated_run_by_run() {
        let sql = "SELECT label, k, sum(v) FROM t GROUP BY label, k ORDER BY k";
        let (without, with, (forms, _)) = both_ways(|i| i / 3, sql).await;
        assert_eq!(with, without);
        assert!(forms.contains(&InputOrderMode::Sorted), "{forms:?}");
    }

    #[tokio::test]
    async fn keys_that_come_back_are_hashed() {
        let (without, with, (forms, _)) = both_ways(|i| i / 2 % 3_000, SUMS).await;
        assert_eq!(with, without);
        assert!(!forms.is_empty() && forms.iter().all(|f| *f == InputOrderMode::Linear), "{forms:?}");
    }

    #[tokio::test]
    async fn keys_seen_once_each_are_hashed() {
        let (without, with, (forms, _)) = both_ways(|i| i * 7919 % 10_000, SUMS).await;
        assert_eq!(with, without);
        assert!(!forms.is_empty() && forms.iter().all(|f| *f == InputOrderMode::Linear), "{forms:?}");
    }

    #[tokio::test]
    async fn few_keys_are_aggregated_as_few_groups() {
        let (without, with, (forms, few)) = both_ways(|i| i / 10_000, SUMS).await;
        assert_eq!(with, without);
        assert_eq!(with.lines().count(), 4 + 4);
        assert!(forms.is_empty() && few > 0, "{forms:?}, {few}");
    }

    /// Two key columns, a string and an integer with NULLs, 15 groups; sums, averages, counts
    /// with and without a FILTER, and extremes, as DataFusion's aggregate gives them.
    #[tokio::test]
    async fn few_groups_of_strings_and_nulls_answer_as_datafusion() {
        let sql = "SELECT flag, n, sum(v), avg(v), count(*), count(n), min(v), max(k), \
                   sum(v) FILTER (WHERE v % 2 = 0), count(*) FILTER (WHERE n IS NULL) \
                   FROM t WHERE v < 30000 GROUP BY flag, n ORDER BY flag, n";
        let (without, with, (forms, few)) = both_ways(|i| i % 10, sql).await;
        assert_eq!(with, without);
        assert_eq!(with.lines().count(), 4 + 15, "{with}");
        assert!(forms.is_empty() && few > 0, "{forms:?}, {few}");
    }

    /// An integer key whose values include -1 (all 64 bits set) beside NULL, and a boolean key:
    /// NULL and -1 stay apart.
    #[tokio::test]
    async fn few_groups_tell_null_from_minus_one() {
        let sql = "SELECT n - 1 AS m, v % 2 = 0 AS even, count(*), sum(v) FROM t \
                   GROUP BY n - 1, v % 2 = 0 ORDER BY m, even";
        let (without, with, (forms, few)) = both_ways(|i| i, sql).await;
        assert_eq!(with, without);
        // n is i % 4, so each m has one parity; NULL n falls on both
        assert_eq!(with.lines().count(), 4 + 6, "{with}");
        assert!(with.contains("| -1 "), "{with}");
        assert!(forms.is_empty() && few > 0, "{forms:?}, {few}");
    }

    /// Strings too long for a code after the first batch: the groups so far are emitted and
    /// DataFusion's aggregate takes the rest; every group is still counted once in the end.
    #[tokio::test]
    async fn keys_without_a_code_after_the_first_batch_go_to_datafusion() {
        let sql = "SELECT flag, count(*), sum(v) FROM t GROUP BY flag ORDER BY flag";
        let (without, with, (forms, few)) = both_ways(|i| i, sql).await;
        assert_eq!(with, without);
        assert_eq!(with.lines().count(), 4 + 6, "{with}");
        assert!(!forms.is_empty() && few > 0, "{forms:?}, {few}");
    }

    /// More groups than few after the first batch: handed on the same way.
    #[tokio::test]
    async fn more_keys_after_the_first_batch_go_to_datafusion() {
        let (without, with, (forms, few)) = both_ways(|i| if i < 10_000 { i % 3 } else { i % 1_000 }, SUMS).await;
        assert_eq!(with, without);
        assert_eq!(with.lines().count(), 4 + 1_000);
        assert!(!forms.is_empty() && few > 0, "{forms:?}, {few}");
    }

    /// The first batch decides; keys that stop coming in runs after it are still all counted,
    /// each once (a key seen again starts a new group, which the final aggregate merges).
    #[tokio::test]
    async fn keys_that_stop_coming_in_runs_are_still_counted_once() {
        let (without, with, (forms, _)) = both_ways(|i| if i < 16_384 { i / 4 } else { i / 2 % 3_000 }, SUMS).await;
        assert_eq!(with, without);
        assert!(forms.contains(&InputOrderMode::Sorted), "{forms:?}");
    }
}
