//! Parquet scans filtered only by a join's keys apply the filter to rows as they decode.
//!
//! A hash join hands its probe side a dynamic filter: the build side's key range and hash
//! table. Without Parquet filter pushdown DataFusion 55 uses it only to skip row groups by
//! their min/max, which does nothing when the keys are spread through the file (TPC-H q17's
//! `l_partkey`): every row is decoded and aggregated before the join drops nearly all of them.
//! Pushdown applies the filter while decoding (the key column first, the others only for the
//! rows that match), but turned on for every scan it slows scans whose own predicates keep most
//! rows (q07, q15). So it is turned on only for a scan whose whole predicate is join filters.
//!
//! Measured at TPC-H SF10 (bench/results/tpch-sf10.md, and an A/B of the rule on and off): q07,
//! q17 and q18 a third faster or more; q05, q09 and q12, whose join builds hold hundreds of
//! thousands of keys, 15–25% slower, because most rows still pass and the filter runs twice.
//! The build's size is known only when the query runs, so the rule cannot tell these apart
//! when it plans. `GLAUX_NO_JOIN_FILTERS_IN_SCANS=1` turns the rule off.

use std::sync::Arc;

use datafusion::common::Result;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::config::ConfigOptions;
use datafusion::datasource::physical_plan::{FileScanConfig, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::physical_expr::expressions::DynamicFilterPhysicalExpr;
use datafusion::physical_expr::split_conjunction;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;

/// Must run after DataFusion's own rules: the join filters are attached by the last of them.
#[derive(Debug, Default)]
pub struct JoinFiltersInScans;

impl PhysicalOptimizerRule for JoinFiltersInScans {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, options: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        if options.execution.parquet.pushdown_filters || std::env::var_os("GLAUX_NO_JOIN_FILTERS_IN_SCANS").is_some() {
            // every scan filters its rows already (or the rule is off, to measure what it does)
            return Ok(plan);
        }
        plan.transform_up(|node| {
            let Some(exec) = node.downcast_ref::<DataSourceExec>() else { return Ok(Transformed::no(node)) };
            let Some((config, parquet)) = exec.downcast_to_file_source::<ParquetSource>() else {
                return Ok(Transformed::no(node));
            };
            if !only_join_filters(parquet) {
                return Ok(Transformed::no(node));
            }
            let source = parquet.clone().with_pushdown_filters(true);
            let mut config: FileScanConfig = config.clone();
            config.file_source = Arc::new(source);
            Ok(Transformed::yes(DataSourceExec::from_data_source(config) as Arc<dyn ExecutionPlan>))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "glaux_join_filters_in_scans"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Whether `parquet` has a predicate and every part of it is a join's dynamic filter.
fn only_join_filters(parquet: &ParquetSource) -> bool {
    use datafusion::datasource::physical_plan::FileSource;
    let Some(predicate) = parquet.filter() else { return false };
    if parquet.table_parquet_options().global.pushdown_filters {
        return false;
    }
    let parts = split_conjunction(&predicate);
    !parts.is_empty() && parts.iter().all(|part| part.is::<DynamicFilterPhysicalExpr>())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{parquet_context, plan_and_number, scratch_dir};
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::execution::SessionStateBuilder;

    fn write(path: &std::path::Path, columns: Vec<(&str, Arc<dyn datafusion::arrow::array::Array>)>) {
        crate::test_support::write_parquet(path, columns, false)
    }

    /// Whether each Parquet scan of `plan` filters rows as it decodes.
    fn pushdown(plan: &Arc<dyn ExecutionPlan>) -> Vec<bool> {
        crate::test_support::each_node::<DataSourceExec, _>(plan, |exec| {
            exec.downcast_to_file_source::<ParquetSource>()
                .map(|(_, parquet)| parquet.table_parquet_options().global.pushdown_filters)
        })
    }

    /// q17's shape: the large side's scan, filtered only by the join's keys, decodes with the
    /// filter; with a predicate of its own it does not; and the answers are the same.
    #[tokio::test]
    async fn only_scans_filtered_by_join_keys_alone_decode_with_the_filter() {
        let dir = scratch_dir("join-filters");
        let n = 10_000;
        write(
            &dir.join("big.parquet"),
            vec![
                ("k", Arc::new(Int64Array::from_iter_values((0..n).map(|i| i % 1000)))),
                ("v", Arc::new(Int64Array::from_iter_values(0..n))),
            ],
        );
        write(
            &dir.join("small.parquet"),
            vec![
                ("k", Arc::new(Int64Array::from_iter_values(0..1000))),
                (
                    "tag",
                    Arc::new(StringArray::from_iter_values((0..1000).map(|i| if i % 100 == 7 { "x" } else { "y" }))),
                ),
            ],
        );
        let state = SessionStateBuilder::new()
            .with_default_features()
            .with_physical_optimizer_rule(Arc::new(JoinFiltersInScans))
            .build();
        let ctx = parquet_context(state, &dir, &["big", "small"]).await;
        let joined = "SELECT sum(b.v) AS s FROM big b JOIN small s ON b.k = s.k WHERE s.tag = 'x'";
        let own = "SELECT sum(b.v) AS s FROM big b JOIN small s ON b.k = s.k WHERE s.tag = 'x' AND b.v > 5000";
        let (joined_plan, sum) = plan_and_number(&ctx, joined).await;
        assert!(pushdown(&joined_plan).contains(&true), "the probe side's scan decodes every row");
        assert!(
            !pushdown(&plan_and_number(&ctx, own).await.0).contains(&true),
            "a scan with its own predicate changed"
        );
        // keys 7, 107, …, 907 ten times each: v = k + 1000 j
        let expected: i64 = (0..10).flat_map(|j| (0..10).map(move |m| 7 + 100 * m + 1000 * j)).sum();
        assert_eq!(sum, expected);
        let _ = std::fs::remove_dir_all(dir);
    }
}
