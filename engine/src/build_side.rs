//! A partitioned inner join builds its hash table on the side with fewer rows, unless that side
//! is much wider.
//!
//! DataFusion's JoinSelection builds on the side of fewer estimated bytes. Building costs per
//! row (each row hashed and inserted, its chain followed), and so does probing, but a build row
//! costs several times a probe row: TPC-H q09 at SF10 hashed all 15 M orders (two narrow
//! columns, 180 MB) to probe them with the 3.3 M lineitem rows of green parts (eight columns),
//! 1.4 s of building where the 3.3 M rows would have taken a fifth of that. Here, after
//! JoinSelection, a partitioned inner join whose build side has over [`ROWS`] times the rows of
//! its probe side is swapped when the probe side is at most [`BYTES`] times as wide in bytes: a
//! table that large still fits where the other did, since both are split across the partitions.
//! Joins collected whole (CollectLeft) are left to JoinSelection: their build side was chosen as
//! the one small enough to share. `GLAUX_NO_BUILD_SIDE_BY_ROWS=1` turns the rule off.

use std::sync::Arc;

use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{JoinType, Result};
use datafusion::config::ConfigOptions;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode};

/// How many times the probe side's rows the build side must hold to be swapped.
const ROWS: f64 = 1.0;

/// How many times the build side's bytes the probe side may hold and still be built on.
const BYTES: f64 = 8.0;

/// The rule; it runs right after JoinSelection, before the sides are repartitioned (see
/// [`BuildSideByRows::place`]).
#[derive(Debug, Default)]
pub struct BuildSideByRows;

impl BuildSideByRows {
    /// `rules` with this rule right after JoinSelection; unchanged where there is none, since
    /// anywhere else a swap could undo the partitioning the rules after it arranged.
    pub fn place(rules: &mut Vec<Arc<dyn PhysicalOptimizerRule + Send + Sync>>) {
        if let Some(selection) = rules.iter().position(|r| r.name() == "join_selection") {
            rules.insert(selection + 1, Arc::new(Self));
        }
    }
}

impl PhysicalOptimizerRule for BuildSideByRows {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, config: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        if !config.optimizer.join_reordering || std::env::var_os("GLAUX_NO_BUILD_SIDE_BY_ROWS").is_some() {
            return Ok(plan);
        }
        let registry = crate::join_statistics::registry();
        plan.transform_up(|node| {
            let Some(join) = node.downcast_ref::<HashJoinExec>() else { return Ok(Transformed::no(node)) };
            let swappable = *join.join_type() == JoinType::Inner
                && *join.partition_mode() == PartitionMode::Partitioned
                && !join.null_aware;
            if !swappable {
                return Ok(Transformed::no(node));
            }
            let size = |plan: &Arc<dyn ExecutionPlan>| -> Result<Option<(f64, f64)>> {
                let stats = registry.compute_base(plan.as_ref())?;
                let rows = stats.num_rows.get_value().map(|&r| r as f64);
                let bytes = stats.total_byte_size.get_value().map(|&b| b as f64);
                Ok(rows.zip(bytes))
            };
            let (Some((build_rows, build_bytes)), Some((probe_rows, probe_bytes))) =
                (size(join.left())?, size(join.right())?)
            else {
                return Ok(Transformed::no(node));
            };
            if build_rows > ROWS * probe_rows && probe_bytes <= BYTES * build_bytes {
                return Ok(Transformed::yes(join.swap_inputs(PartitionMode::Partitioned)?));
            }
            Ok(Transformed::no(node))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "glaux_build_side_by_rows"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{each_node, parquet_context, plan_and_number, scratch_dir, write_parquet};
    use datafusion::arrow::array::Int64Array;
    use datafusion::datasource::physical_plan::ParquetSource;
    use datafusion::datasource::source::DataSourceExec;
    use datafusion::execution::SessionStateBuilder;
    use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
    use datafusion::prelude::SessionConfig;

    fn state(by_rows: bool) -> datafusion::execution::SessionState {
        let mut rules = PhysicalOptimizer::new().rules;
        if by_rows {
            let before = rules.len();
            BuildSideByRows::place(&mut rules);
            assert_eq!(rules.len(), before + 1, "JoinSelection is among DataFusion's rules");
        }
        let mut config = SessionConfig::new().with_target_partitions(2);
        let options = config.options_mut();
        options.optimizer.use_statistics_registry = true;
        // no join is small enough to share: each is partitioned
        options.optimizer.hash_join_single_partition_threshold = 0;
        options.optimizer.hash_join_single_partition_threshold_rows = 0;
        SessionStateBuilder::new()
            .with_default_features()
            .with_config(config)
            .with_physical_optimizer_rules(rules)
            .build()
    }

    /// The file the build side of the plan's one hash join reads.
    fn built_on(plan: &Arc<dyn ExecutionPlan>) -> String {
        let builds = each_node::<HashJoinExec, _>(plan, |join| {
            assert_eq!(*join.partition_mode(), PartitionMode::Partitioned);
            let files = each_node::<DataSourceExec, _>(join.left(), |scan| {
                let (config, _) = scan.downcast_to_file_source::<ParquetSource>()?;
                let file = config.file_groups.iter().flat_map(|g| g.files()).next()?;
                file.object_meta.location.filename().map(String::from)
            });
            files.into_iter().next()
        });
        let [build] = &builds[..] else { panic!("one join: {builds:?}") };
        build.clone()
    }

    /// `narrow` has three times the rows of `wide` and under half its bytes: JoinSelection builds
    /// on narrow, the rule on wide's fewer rows, with the same answer. `widest`, over eight times
    /// narrow's bytes, is not built on.
    #[tokio::test]
    async fn the_side_with_fewer_rows_builds_unless_much_wider() {
        let dir = scratch_dir("build-side");
        let write = |name: &str, columns: Vec<(String, Arc<dyn datafusion::arrow::array::Array>)>| {
            let columns = columns.iter().map(|(n, c)| (n.as_str(), Arc::clone(c))).collect();
            write_parquet(&dir.join(format!("{name}.parquet")), columns, false)
        };
        let numbers = |n: i64, f: fn(i64) -> i64| Arc::new(Int64Array::from_iter_values((0..n).map(f))) as _;
        write("narrow", vec![("k".into(), numbers(60_000, |i| i % 20_000)), ("v".into(), numbers(60_000, |i| i))]);
        // 20 000 rows of k and `extra` more numbers
        let wide = |extra: usize| {
            let mut columns = vec![("k".to_string(), numbers(20_000, |i| i))];
            columns.extend((0..extra).map(|c| (format!("c{c}"), numbers(20_000, |i| 2 * i))));
            columns
        };
        write("wide", wide(9));
        write("widest", wide(59));
        let tables = ["narrow", "wide", "widest"];
        let (by_rows, by_bytes) =
            (parquet_context(state(true), &dir, &tables).await, parquet_context(state(false), &dir, &tables).await);
        // every column of the wide side read, each k of it meeting three rows of narrow
        let query = |table: &str, extra: usize| {
            let columns = (0..extra).map(|c| format!("w.c{c}")).collect::<Vec<_>>().join(" + ");
            let sql = format!("SELECT sum(n.v) + sum({columns}) FROM narrow n JOIN {table} w ON n.k = w.k");
            let expected = (0..60_000i64).sum::<i64>() + 3 * extra as i64 * (0..20_000i64).map(|i| 2 * i).sum::<i64>();
            (sql, expected)
        };
        let (sql, expected) = query("wide", 9);
        let (plan, answer) = plan_and_number(&by_rows, &sql).await;
        let (plain_plan, plain_answer) = plan_and_number(&by_bytes, &sql).await;
        assert_eq!(built_on(&plain_plan), "narrow.parquet");
        assert_eq!(built_on(&plan), "wide.parquet");
        assert_eq!((answer, plain_answer), (expected, expected));
        let (sql, expected) = query("widest", 59);
        let (plan, answer) = plan_and_number(&by_rows, &sql).await;
        assert_eq!(built_on(&plan), "narrow.parquet");
        assert_eq!(answer, expected);
        let _ = std::fs::remove_dir_all(dir);
    }
}
