//! A per-partition TopK below an ordered merge sorts by the merge's whole ordering.
//!
//! DataFusion 55 drops from a partition's sort the columns that are constant within each
//! partition, even when they differ between partitions (`SELECT 1 AS k, … UNION ALL SELECT 0
//! AS k, … ORDER BY k, v LIMIT n` sorts each branch by `v` alone). Without a LIMIT that is only
//! redundant; with one, the TopK operators of the partitions share one filter, so the first
//! branch's threshold on `v` discards rows of the branch that sorts first by `k`: wrong answers,
//! depending on which branch runs first (apache/datafusion#23528, fixed after 55). Sorting each
//! partition by the merge's full ordering makes the shared threshold lexicographic, hence right
//! for every partition, at the cost of comparing one constant column.

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::config::ConfigOptions;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::execution_plan::replace_children_if_necessary;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::sorts::sort_preserving_merge::SortPreservingMergeExec;

#[derive(Debug, Default)]
pub struct FullOrderingTopK;

impl PhysicalOptimizerRule for FullOrderingTopK {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_down(|node| {
            let Some(merge) = node.downcast_ref::<SortPreservingMergeExec>() else {
                return Ok(Transformed::no(node));
            };
            let Some(sort) = merge.input().downcast_ref::<SortExec>() else {
                return Ok(Transformed::no(node));
            };
            if sort.fetch().is_none() || !sort.preserve_partitioning() || sort.expr().len() >= merge.expr().len() {
                return Ok(Transformed::no(node));
            }
            let full = SortExec::new(merge.expr().clone(), Arc::clone(sort.input()))
                .with_preserve_partitioning(true)
                .with_fetch(sort.fetch());
            let merge = replace_children_if_necessary(Arc::clone(&node), vec![Arc::new(full)])?;
            Ok(Transformed::yes(merge))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "glaux_full_ordering_topk"
    }

    fn schema_check(&self) -> bool {
        true
    }
}
