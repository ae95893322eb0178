//! A filter's output goes on in the batches the filter made, small ones gathered into whole
//! batches, instead of through DataFusion's gathering, which copies every row once it holds a few.
//!
//! DataFusion's `FilterExec` gathers its output into batches of `batch_size` rows, passing on
//! untouched only a batch of over half that size that arrives while it holds nothing. A Parquet
//! scan's batches are `batch_size` rows except the last of each row group (TPC-H's files: 306
//! rows after fourteen whole batches), so once such a remainder is held, every later batch is
//! added to it and copied out again, however many rows the filter kept. A filter that keeps most
//! rows then copies them twice: q09's lineitem at SF10 went through a join filter that had stepped
//! aside (it keeps every row) in 382 ms of CPU, 120 ms without the gathering; q01's `l_shipdate`
//! filter, 98.6% kept, in 600 ms, 511 without.
//!
//! So each filter hands on what it makes ([`FilterExec::with_batch_size`] 1) to a
//! [`GatherSmallBatches`] above it, which gathers only batches under half of `batch_size` and,
//! before passing on a larger one, sends what it holds, in order. Selective filters still feed
//! joins and aggregates whole batches (without any gathering, q12 and q22 were 10–25% slower).
//! Plans spread over workers keep DataFusion's filter, whose codec does not know this node.

use std::fmt;
use std::sync::Arc;

use datafusion::arrow::compute::BatchCoalescer;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, Result};
use datafusion::config::ConfigOptions;
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::StreamExt;

/// The `ExecutionPlan` methods of a node with one input whose rows it passes on as they are, in
/// their order and partitions: its statistics are its input's.
macro_rules! passes_rows_on {
    () => {
        fn maintains_input_order(&self) -> Vec<bool> {
            vec![true]
        }

        fn benefits_from_input_partitioning(&self) -> Vec<bool> {
            vec![false]
        }

        fn cardinality_effect(&self) -> datafusion::physical_plan::execution_plan::CardinalityEffect {
            datafusion::physical_plan::execution_plan::CardinalityEffect::Equal
        }

        fn child_stats_requests(&self, partition: Option<usize>) -> Vec<datafusion::physical_plan::ChildStats> {
            vec![datafusion::physical_plan::ChildStats::At(partition)]
        }

        fn statistics_from_inputs(
            &self,
            input_stats: &[Arc<datafusion::common::Statistics>],
            _: &datafusion::physical_plan::StatisticsArgs,
        ) -> datafusion::common::Result<Arc<datafusion::common::Statistics>> {
            match input_stats.first() {
                Some(stats) => Ok(Arc::clone(stats)),
                None => Ok(Arc::new(datafusion::common::Statistics::new_unknown(&self.schema()))),
            }
        }
    };
}
pub(crate) use passes_rows_on;

/// The rule: each filter makes its batches unbuffered, and a [`GatherSmallBatches`] above it
/// gathers them. It runs last, so that no other rule meets the node.
#[derive(Debug, Default)]
pub struct GatherFilterOutput;

impl PhysicalOptimizerRule for GatherFilterOutput {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, config: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        let batch_size = config.execution.batch_size.get();
        plan.transform_up(|node| {
            let Some(filter) = node.downcast_ref::<FilterExec>() else { return Ok(Transformed::no(node)) };
            if filter.batch_size() == 1 {
                // already handing on what it makes: this rule has seen it
                return Ok(Transformed::no(node));
            }
            let unbuffered = Arc::new(filter.with_batch_size(1)?);
            Ok(Transformed::yes(Arc::new(GatherSmallBatches::new(unbuffered, batch_size)) as Arc<dyn ExecutionPlan>))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "glaux_gather_filter_output"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Its input's batches, those under half of `batch_size` rows gathered into batches of
/// `batch_size`, the others handed on as they come; the rows stay in their order.
#[derive(Debug)]
pub struct GatherSmallBatches {
    input: Arc<dyn ExecutionPlan>,
    batch_size: usize,
}

impl GatherSmallBatches {
    pub fn new(input: Arc<dyn ExecutionPlan>, batch_size: usize) -> Self {
        Self { input, batch_size: batch_size.max(1) }
    }
}

impl DisplayAs for GatherSmallBatches {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "GatherSmallBatches: batch_size={}", self.batch_size)
    }
}

impl ExecutionPlan for GatherSmallBatches {
    fn name(&self) -> &str {
        "GatherSmallBatches"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn with_new_children(self: Arc<Self>, mut children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        match (children.pop(), children.is_empty()) {
            (Some(input), true) => Ok(Arc::new(Self::new(input, self.batch_size))),
            _ => Err(DataFusionError::Internal("GatherSmallBatches has one input".into())),
        }
    }

    fn apply_expressions(
        &self,
        _: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        Ok(TreeNodeRecursion::Continue)
    }

    passes_rows_on!();

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let input = self.input.execute(partition, context)?;
        // a batch of half `batch_size` rows or more is large (rows > (batch_size - 1) / 2)
        let coalescer = BatchCoalescer::new(input.schema(), self.batch_size)
            .with_biggest_coalesce_batch_size(Some((self.batch_size - 1) / 2));
        Ok(gathered(input, coalescer))
    }
}

/// `stream`'s batches through `coalescer`: gathered into batches of its target size, except that
/// a batch over its biggest size (when it has one) goes on untouched, after what it holds. Arrow's
/// coalescer passes such a batch on only while it holds nothing, and otherwise copies it into
/// what it holds, so what it holds is sent first.
pub fn gathered(stream: SendableRecordBatchStream, coalescer: BatchCoalescer) -> SendableRecordBatchStream {
    let schema = stream.schema();
    let batches =
        futures::stream::try_unfold((stream, coalescer, false), |(mut stream, mut coalescer, mut done)| async move {
            loop {
                if let Some(batch) = coalescer.next_completed_batch() {
                    return Ok(Some((batch, (stream, coalescer, done))));
                }
                if done {
                    return Ok(None);
                }
                match stream.next().await.transpose()? {
                    Some(batch) => {
                        if coalescer.biggest_coalesce_batch_size().is_some_and(|biggest| batch.num_rows() > biggest) {
                            coalescer.finish_buffered_batch()?;
                        }
                        coalescer.push_batch(batch)?;
                    }
                    None => {
                        coalescer.finish_buffered_batch()?;
                        done = true;
                    }
                }
            }
        });
    Box::pin(RecordBatchStreamAdapter::new(schema, batches))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{AsArray, Int64Array};
    use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema};
    use datafusion::arrow::record_batch::RecordBatch;
    use datafusion::datasource::memory::MemorySourceConfig;
    use datafusion::physical_expr::expressions::{BinaryExpr, col, lit};
    use datafusion::physical_plan::collect;

    /// Batches of the given sizes counting up from 0, as a scan in one partition.
    fn scan(sizes: &[usize]) -> (Arc<dyn ExecutionPlan>, Vec<RecordBatch>) {
        let schema = Arc::new(Schema::new(vec![Field::new("n", DataType::Int64, false)]));
        let mut next = 0i64;
        let batches: Vec<RecordBatch> = sizes
            .iter()
            .map(|&size| {
                let values = Int64Array::from_iter_values(next..next + size as i64);
                next += size as i64;
                RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(values)]).unwrap()
            })
            .collect();
        (MemorySourceConfig::try_new_exec(std::slice::from_ref(&batches), schema, None).unwrap(), batches)
    }

    fn values(batches: &[RecordBatch]) -> Vec<i64> {
        batches.iter().flat_map(|b| b.column(0).as_primitive::<Int64Type>().values().to_vec()).collect()
    }

    fn first_value_address(batch: &RecordBatch) -> *const i64 {
        batch.column(0).as_primitive::<Int64Type>().values().as_ptr()
    }

    /// A row group's remainder (306 rows) between whole batches: the whole batches go on as they
    /// came (the same memory), the small ones are gathered, and every row keeps its place.
    #[tokio::test]
    async fn large_batches_pass_untouched_and_small_ones_are_gathered() {
        let sizes = [8192, 306, 8192, 8192, 100, 200, 300, 5000, 3000, 3000, 3000];
        let (input, sent) = scan(&sizes);
        let gather = Arc::new(GatherSmallBatches::new(input, 8192));
        let got = collect(gather, Arc::new(TaskContext::default())).await.unwrap();
        let got_sizes: Vec<usize> = got.iter().map(RecordBatch::num_rows).collect();
        assert_eq!(got_sizes, vec![8192, 306, 8192, 8192, 600, 5000, 8192, 808]);
        assert_eq!(values(&got), values(&sent));
        for (out, into) in [(0, 0), (2, 2), (3, 3), (5, 7)] {
            assert_eq!(first_value_address(&got[out]), first_value_address(&sent[into]), "batch {into} was copied");
        }
    }

    /// Through a filter that keeps every row: DataFusion's own gathering copies each whole batch
    /// after the remainder; with the rule, the filter's batches reach the top uncopied.
    #[tokio::test]
    async fn a_filter_that_keeps_every_row_copies_no_whole_batch() {
        let run = |rule: bool| async move {
            let (input, sent) = scan(&[8192, 306, 8192, 8192, 8192]);
            let keep_all = Arc::new(BinaryExpr::new(
                col("n", &input.schema()).unwrap(),
                datafusion::logical_expr::Operator::GtEq,
                lit(0i64),
            ));
            let mut plan: Arc<dyn ExecutionPlan> = Arc::new(FilterExec::try_new(keep_all, input).unwrap());
            if rule {
                plan = GatherFilterOutput.optimize(plan, &ConfigOptions::default()).unwrap();
                // a second pass leaves the plan as it is
                let again = GatherFilterOutput.optimize(Arc::clone(&plan), &ConfigOptions::default()).unwrap();
                assert_eq!(
                    datafusion::physical_plan::displayable(again.as_ref()).indent(false).to_string(),
                    datafusion::physical_plan::displayable(plan.as_ref()).indent(false).to_string()
                );
            }
            let got = collect(plan, Arc::new(TaskContext::default())).await.unwrap();
            assert_eq!(values(&got), values(&sent));
            // the whole batches that reached the top uncopied
            sent.iter()
                .filter(|s| s.num_rows() == 8192)
                .filter(|s| got.iter().any(|g| first_value_address(g) == first_value_address(s)))
                .count()
        };
        assert_eq!(run(true).await, 4);
        assert!(run(false).await < 4, "DataFusion's filter no longer copies: this rule may go");
    }
}
