//! An inner join builds its hash table on the side with fewer rows, unless that side is much
//! wider (or, for a side collected whole, too large to collect).
//!
//! DataFusion's JoinSelection builds on the side of fewer estimated bytes. Building costs per
//! row (each row hashed and inserted, its chain followed), and so does probing, but a build row
//! costs several times a probe row: TPC-H q09 at SF10 hashed all 15 M orders (two narrow
//! columns, 180 MB) to probe them with the 3.3 M lineitem rows of green parts (eight columns),
//! 1.4 s of building where the 3.3 M rows would have taken a fifth of that. Here, after
//! JoinSelection, a partitioned inner join whose build side has over [`ROWS`] times the rows of
//! its probe side is swapped when the probe side is at most [`BYTES`] times as wide in bytes: a
//! table that large still fits where the other did, since both are split across the partitions.
//! A join collected whole (CollectLeft) is swapped the same when the side of fewer rows is also
//! as small as JoinSelection requires of a collected side: its hash table is built by one thread
//! while the other waits, so a row less to insert counts double. TPC-H q07 at SF1 built on the
//! orders its join filters let through (0.5–0.76 M rows, as soon as the filters arrive) to meet
//! the 146 k lineitem rows of the two nations' suppliers; built on those rows instead, the build
//! took 10 ms instead of 24–47, and q07 × 5 in one process 145–151 ms a query instead of 163.
//! (q05, q08, q09, q14, q16, q19, q20 and q22 changed sides too, all within noise.)
//! `GLAUX_NO_BUILD_SIDE_BY_ROWS=1` turns the rule off.

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
            let mode = *join.partition_mode();
            let swappable = *join.join_type() == JoinType::Inner
                && matches!(mode, PartitionMode::Partitioned | PartitionMode::CollectLeft)
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
            // a side collected whole is built once and shared: the other may take its place only
            // while it is as small as JoinSelection requires of a shared side
            let fits = mode == PartitionMode::Partitioned
                || (probe_bytes <= config.optimizer.hash_join_single_partition_threshold as f64
                    && probe_rows <= config.optimizer.hash_join_single_partition_threshold_rows as f64);
            if build_rows > ROWS * probe_rows && probe_bytes <= BYTES * build_bytes && fits {
                return Ok(Transformed::yes(join.swap_inputs(mode)?));
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
    use std::path::Path;

    /// A state with the rule or without it; joins whose sides are under `collect` bytes are
    /// collected whole (0: every join is partitioned).
    fn state(by_rows: bool, collect: usize) -> datafusion::execution::SessionState {
        let mut rules = PhysicalOptimizer::new().rules;
        if by_rows {
            let before = rules.len();
            BuildSideByRows::place(&mut rules);
            assert_eq!(rules.len(), before + 1, "JoinSelection is among DataFusion's rules");
        }
        let mut config = SessionConfig::new().with_target_partitions(2);
        let options = config.options_mut();
        options.optimizer.use_statistics_registry = true;
        options.optimizer.hash_join_single_partition_threshold = collect;
        options.optimizer.hash_join_single_partition_threshold_rows = collect;
        SessionStateBuilder::new()
            .with_default_features()
            .with_config(config)
            .with_physical_optimizer_rules(rules)
            .build()
    }

    /// The file the build side of the plan's one hash join reads, the join being `mode`.
    fn built_on(plan: &Arc<dyn ExecutionPlan>, mode: PartitionMode) -> String {
        let builds = each_node::<HashJoinExec, _>(plan, |join| {
            assert_eq!(*join.partition_mode(), mode);
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

    /// `narrow` (60 000 rows of two numbers), `wide` (20 000 rows of ten) and `widest` (20 000 of
    /// sixty) in `dir`, and a query joining narrow with `wide` or `widest` on `k`, reading every
    /// column, each k of the wide side meeting three rows of narrow: its SQL and its answer.
    fn tables(dir: &Path) -> impl Fn(&str) -> (String, i64) + use<> {
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
        |table: &str| {
            let extra = if table == "widest" { 59 } else { 9 };
            let columns = (0..extra).map(|c| format!("w.c{c}")).collect::<Vec<_>>().join(" + ");
            let sql = format!("SELECT sum(n.v) + sum({columns}) FROM narrow n JOIN {table} w ON n.k = w.k");
            let expected = (0..60_000i64).sum::<i64>() + 3 * extra as i64 * (0..20_000i64).map(|i| 2 * i).sum::<i64>();
            (sql, expected)
        }
    }

    const TABLES: [&str; 3] = ["narrow", "wide", "widest"];

    /// `narrow` has three times the rows of `wide` and under half its bytes: JoinSelection builds
    /// on narrow, the rule on wide's fewer rows, with the same answer. `widest`, over eight times
    /// narrow's bytes, is not built on.
    #[tokio::test]
    async fn the_side_with_fewer_rows_builds_unless_much_wider() {
        let dir = scratch_dir("build-side");
        let query = tables(&dir);
        let (by_rows, by_bytes) = (
            parquet_context(state(true, 0), &dir, &TABLES).await,
            parquet_context(state(false, 0), &dir, &TABLES).await,
        );
        let (sql, expected) = query("wide");
        let (plan, answer) = plan_and_number(&by_rows, &sql).await;
        let (plain_plan, plain_answer) = plan_and_number(&by_bytes, &sql).await;
        assert_eq!(built_on(&plain_plan, PartitionMode::Partitioned), "narrow.parquet");
        assert_eq!(built_on(&plan, PartitionMode::Partitioned), "wide.parquet");
        assert_eq!((answer, plain_answer), (expected, expected));
        let (sql, expected) = query("widest");
        let (plan, answer) = plan_and_number(&by_rows, &sql).await;
        assert_eq!(built_on(&plan, PartitionMode::Partitioned), "narrow.parquet");
        assert_eq!(answer, expected);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A join whose build side is collected whole gives way the same to a side of fewer rows, as
    /// long as that side is as small as JoinSelection requires of a collected one.
    #[tokio::test]
    async fn a_collected_side_gives_way_to_fewer_rows_small_enough_to_collect() {
        let dir = scratch_dir("build-side-collected");
        let query = tables(&dir);
        let (sql, expected) = query("wide");
        let everything = 1 << 30;
        let (by_rows, by_bytes) = (
            parquet_context(state(true, everything), &dir, &TABLES).await,
            parquet_context(state(false, everything), &dir, &TABLES).await,
        );
        let (plan, answer) = plan_and_number(&by_rows, &sql).await;
        let (plain_plan, plain_answer) = plan_and_number(&by_bytes, &sql).await;
        assert_eq!(built_on(&plain_plan, PartitionMode::CollectLeft), "narrow.parquet");
        assert_eq!(built_on(&plan, PartitionMode::CollectLeft), "wide.parquet");
        assert_eq!((answer, plain_answer), (expected, expected));
        // a limit between the two sides' estimated bytes: narrow may be collected, wide may not
        let bytes = |side: &Arc<dyn ExecutionPlan>| {
            let stats = crate::join_statistics::registry().compute_base(side.as_ref()).unwrap();
            *stats.total_byte_size.get_value().expect("estimated bytes")
        };
        let sides = each_node::<HashJoinExec, _>(&plain_plan, |join| Some((bytes(join.left()), bytes(join.right()))));
        let [(narrow, wide)] = sides[..] else { panic!("one join: {sides:?}") };
        assert!(narrow < wide, "{narrow} vs {wide}");
        let between = parquet_context(state(true, (narrow + wide) / 2), &dir, &TABLES).await;
        let (plan, answer) = plan_and_number(&between, &sql).await;
        assert_eq!(built_on(&plan, PartitionMode::CollectLeft), "narrow.parquet");
        assert_eq!(answer, expected);
        let _ = std::fs::remove_dir_all(dir);
    }
}
