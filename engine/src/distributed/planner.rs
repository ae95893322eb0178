//! When a plan is spread over the workers: when some are up and its pruned scan reads at least
//! the threshold; a small query runs faster where it was planned than it can be shipped.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::catalog::Session;
use datafusion::common::display::{PlanType, StringifiedPlan};
use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::physical_plan::FileGroup;
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::SessionStateBuilder;
use datafusion::execution::context::QueryPlanner;
use datafusion::logical_expr::LogicalPlan;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::ExecutionPlanProperties;
use datafusion::physical_plan::explain::ExplainExec;
use datafusion::physical_planner::{DefaultPhysicalPlanner, PhysicalPlanner};
use datafusion_distributed::{
    DistributedLeafExec, ScaleUpLeafNodeEvent, ScaleUpLeafNodeEventResponse, SessionStateBuilderExt, display_plan_ascii,
};

use super::workers::Workers;

/// Plans as DataFusion does, then hands large plans to the distributed planner.
#[derive(Debug)]
pub(crate) struct WhenLarge {
    pub above: u64,
    pub workers: Workers,
}

#[async_trait]
impl QueryPlanner for WhenLarge {
    async fn create_physical_plan(
        &self,
        logical_plan: &LogicalPlan,
        session: &dyn Session,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        if let LogicalPlan::Explain(explain) = logical_plan
            && !explain.verbose
            && explain.logical_optimization_succeeded
        {
            // DataFusion plans EXPLAIN's input itself, past the query planner: plan it here, so
            // EXPLAIN shows the plan the query would run, stages and all
            let input = Box::pin(self.create_physical_plan(&explain.plan, session)).await?;
            if input.is::<datafusion_distributed::DistributedExec>() {
                // the logical plans DataFusion made, and the physical one it would have
                let mut plans: Vec<StringifiedPlan> = explain.stringified_plans.clone();
                plans.push(StringifiedPlan::new(PlanType::FinalLogicalPlan, explain.plan.display_indent().to_string()));
                plans
                    .push(StringifiedPlan::new(PlanType::FinalPhysicalPlan, display_plan_ascii(input.as_ref(), false)));
                plans.retain(|p| p.should_display(false));
                return Ok(Arc::new(ExplainExec::new(Arc::clone(explain.schema.inner()), plans, false)));
            }
        }
        let local = DefaultPhysicalPlanner::default().create_physical_plan(logical_plan, session).await?;
        if scan_bytes(&local)? < self.above || self.workers.live().is_empty() {
            return Ok(local);
        }
        // the distributed planner starts from a physical plan made by the planner before it:
        // give it this one, so files are listed (and footers read) once
        let mut builder = SessionStateBuilder::new()
            .with_query_planner(Arc::new(Planned(Mutex::new(Some(local)))))
            .with_distributed_planner();
        let distributed = builder
            .query_planner()
            .take()
            .ok_or_else(|| DataFusionError::Internal("the distributed planner was not set up".into()))?;
        distributed.create_physical_plan(logical_plan, session).await
    }
}

/// A planner that returns a plan made already, once.
#[derive(Debug)]
struct Planned(Mutex<Option<Arc<dyn ExecutionPlan>>>);

#[async_trait]
impl QueryPlanner for Planned {
    async fn create_physical_plan(&self, _: &LogicalPlan, _: &dyn Session) -> Result<Arc<dyn ExecutionPlan>> {
        self.0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .ok_or_else(|| DataFusionError::Internal("a plan was asked for twice".into()))
    }
}

/// The bytes of the files (or byte ranges of files) a plan's scans read.
pub(crate) fn scan_bytes(plan: &Arc<dyn ExecutionPlan>) -> Result<u64> {
    let mut total = 0;
    plan.apply(|node| {
        if let Some(config) = crate::formats::file_scan(node.as_ref()) {
            for file in config.file_groups.iter().flat_map(|group| group.iter()) {
                total += match &file.range {
                    Some(range) => (range.end - range.start).max(0) as u64,
                    None => file.object_meta.size,
                };
            }
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    Ok(total)
}

/// Spreads a scan whose files cannot be cut into byte ranges (compressed text) by whole files:
/// datafusion-distributed 4.0 cuts every scan's files into ranges, and a reader that starts in
/// the middle of a gzip object finds no rows in it.
pub(crate) fn whole_files(event: ScaleUpLeafNodeEvent) -> Option<Result<ScaleUpLeafNodeEventResponse>> {
    let scan = crate::formats::file_scan(event.plan.as_ref())?;
    if !scan.file_compression_type.is_compressed() && scan.file_source.supports_repartitioning() {
        return None;
    }
    let groups = event.plan.output_partitioning().partition_count().max(1) * event.task_count;
    let mut rebalanced = vec![vec![]; groups];
    for (i, file) in scan.file_groups.iter().flat_map(|group| group.iter().cloned()).enumerate() {
        rebalanced[i % groups].push(file);
    }
    let mut template = scan.clone();
    template.file_groups.clear();
    let mut scans = vec![template; event.task_count];
    for (i, files) in rebalanced.into_iter().enumerate() {
        scans[i % event.task_count].file_groups.push(FileGroup::new(files));
    }
    let variants = scans.into_iter().map(|scan| DataSourceExec::from_data_source(scan) as Arc<dyn ExecutionPlan>);
    Some(
        DistributedLeafExec::try_new(Arc::clone(event.plan), variants)
            .map(|leaf| ScaleUpLeafNodeEventResponse::new(Arc::new(leaf))),
    )
}
