//! `NOT IN (subquery)` joins drop their NULL handling when the files show neither key has a NULL.
//!
//! `x NOT IN (SELECT y …)` is false for every row once `y` holds a NULL, and NULL where `x` is
//! NULL, so DataFusion plans it as a null-aware anti join whenever either column may be NULL. A
//! catalog table's columns always may (Hive and Glue have no NOT NULL), while the same files as
//! DataFusion's own tables carry their writer's non-null schema: the catalog path got the
//! null-aware join, which must hash the outer side (TPC-H q16: 1.2 million partsupp rows
//! instead of 56 suppliers) and leaves one partition for the rest of the query, 1.45× slower at
//! SF10. When the Parquet statistics of the files the two keys come from count no NULL in
//! either, the plain anti join gives the same answer, and DataFusion can then put the small
//! side in the hash table. Only operators that cannot make a NULL are looked through (filters,
//! projections of the column, repartitions, sorts, unions); anything else keeps the NULL handling.

use std::sync::Arc;

use datafusion::common::stats::Precision;
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{JoinSide, JoinType, Result};
use datafusion::config::ConfigOptions;
use datafusion::datasource::physical_plan::{FileScanConfig, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::{CastExpr, Column};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::joins::HashJoinExec;
use datafusion::physical_plan::joins::utils::ColumnIndex;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::sorts::sort::SortExec;
use datafusion::physical_plan::union::UnionExec;
use datafusion::physical_plan::{ExecutionPlan, StatisticsArgs, StatisticsContext};

/// Must run before DataFusion's join selection, which can then swap the sides.
#[derive(Debug, Default)]
pub struct NotInWithoutNulls;

impl PhysicalOptimizerRule for NotInWithoutNulls {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, _: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        plan.transform_up(|node| {
            let Some(join) = node.downcast_ref::<HashJoinExec>() else { return Ok(Transformed::no(node)) };
            if !join.null_aware || join.join_type() != &JoinType::LeftAnti || join.on().len() != 1 {
                return Ok(Transformed::no(node));
            }
            let (outer, inner) = &join.on()[0];
            if !null_free(join.left(), outer) || !null_free(join.right(), inner) {
                return Ok(Transformed::no(node));
            }
            Ok(Transformed::yes(join.builder().with_null_aware(false).build_exec()?))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "glaux_not_in_without_nulls"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Whether `expr` over `plan`'s output is never NULL, by the statistics of the files it is read from.
fn null_free(plan: &Arc<dyn ExecutionPlan>, expr: &Arc<dyn PhysicalExpr>) -> bool {
    if let Some(cast) = expr.downcast_ref::<CastExpr>() {
        // a cast fails on what it cannot convert; it makes no NULL of a value
        return null_free(plan, cast.expr());
    }
    let Some(column) = expr.downcast_ref::<Column>() else { return false };
    column_null_free(plan, column.index())
}

/// Whether output column `index` of `plan` is never NULL.
fn column_null_free(plan: &Arc<dyn ExecutionPlan>, index: usize) -> bool {
    if let Some(scan) = plan.downcast_ref::<DataSourceExec>() {
        return scan
            .downcast_to_file_source::<ParquetSource>()
            .is_some_and(|(config, _)| scan_null_free(scan, config, index));
    }
    if let Some(projection) = plan.downcast_ref::<ProjectionExec>() {
        return projection.expr().get(index).is_some_and(|e| null_free(projection.input(), &e.expr));
    }
    if let Some(filter) = plan.downcast_ref::<FilterExec>() {
        return projected(filter.projection().as_deref(), index)
            .is_some_and(|index| column_null_free(filter.input(), index));
    }
    if let Some(join) = plan.downcast_ref::<HashJoinExec>() {
        return join_column_null_free(join, index);
    }
    if let Some(union) = plan.downcast_ref::<UnionExec>() {
        return union.inputs().iter().all(|input| column_null_free(input, index));
    }
    let passes_rows_as_they_are =
        plan.is::<CoalescePartitionsExec>() || plan.is::<RepartitionExec>() || plan.is::<SortExec>();
    passes_rows_as_they_are && plan.children().first().is_some_and(|child| column_null_free(child, index))
}

/// An inner join passes each side's values through; a semi or anti join passes one side's rows.
/// Outer joins make NULLs of the side without a match.
fn join_column_null_free(join: &HashJoinExec, index: usize) -> bool {
    if !matches!(
        join.join_type(),
        JoinType::Inner | JoinType::LeftSemi | JoinType::LeftAnti | JoinType::RightSemi | JoinType::RightAnti
    ) {
        return false;
    }
    let (left, right) = (join.left(), join.right());
    let columns = crate::join_statistics::output_columns(
        &left.schema(),
        &right.schema(),
        join.join_type(),
        join.projection.as_deref(),
    );
    match columns.get(index) {
        Some(ColumnIndex { index, side: JoinSide::Left }) => column_null_free(left, *index),
        Some(ColumnIndex { index, side: JoinSide::Right }) => column_null_free(right, *index),
        _ => false,
    }
}

/// Which column of an operator's own output is its output column `index`, through the
/// projection it may carry.
fn projected(projection: Option<&[usize]>, index: usize) -> Option<usize> {
    match projection {
        Some(p) => p.get(index).copied(),
        None => Some(index),
    }
}

/// A Parquet scan's column is NULL-free when it is one of the files' columns (not a partition
/// value) and the files' statistics count exactly no NULL in it (a file without the column
/// counts all its rows as NULL, one without statistics leaves the count unknown).
fn scan_null_free(scan: &DataSourceExec, config: &FileScanConfig, index: usize) -> bool {
    let schema = scan.schema();
    let Some(field) = schema.fields().get(index) else { return false };
    if config.file_schema().field_with_name(field.name()).is_err() {
        return false;
    }
    StatisticsContext::new()
        .compute(scan, &StatisticsArgs::new())
        .is_ok_and(|stats| stats.column_statistics.get(index).is_some_and(|c| c.null_count == Precision::Exact(0)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Array, Int64Array, StringArray};
    use datafusion::execution::SessionStateBuilder;
    use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;

    /// A Parquet file whose columns are all nullable, as a catalog table's are.
    fn write(path: &std::path::Path, columns: Vec<(&str, Arc<dyn Array>)>) {
        crate::test_support::write_parquet(path, columns, true)
    }

    /// Whether each hash join of `plan` handles NULLs as NOT IN does.
    fn null_aware(plan: &Arc<dyn ExecutionPlan>) -> Vec<bool> {
        crate::test_support::each_node::<HashJoinExec, _>(plan, |join| Some(join.null_aware))
    }

    /// q16's shape on nullable columns: with no NULL in the files the join is a plain anti join
    /// and the answer is the same; a NULL in the subquery's keys (every row out) or in the outer
    /// keys (that row out) keeps the NULL handling, and the answers are NOT IN's.
    #[tokio::test]
    async fn not_in_drops_null_handling_only_when_the_files_hold_no_null() {
        let dir = crate::test_support::scratch_dir("not-in");
        let n = 1000;
        write(&dir.join("outer.parquet"), vec![("k", Arc::new(Int64Array::from_iter_values(0..n)))]);
        write(
            &dir.join("outer_null.parquet"),
            vec![("k", Arc::new(Int64Array::from_iter((0..n).map(|i| (i != 5).then_some(i)))))],
        );
        let tags = || Arc::new(StringArray::from_iter_values((0..100).map(|i| if i % 10 == 0 { "x" } else { "y" })));
        write(&dir.join("inner.parquet"), vec![("k", Arc::new(Int64Array::from_iter_values(0..100))), ("tag", tags())]);
        write(
            &dir.join("inner_null.parquet"),
            vec![("k", Arc::new(Int64Array::from_iter((0..100).map(|i| (i != 20).then_some(i))))), ("tag", tags())],
        );
        let mut rules = PhysicalOptimizer::new().rules;
        rules.insert(0, Arc::new(NotInWithoutNulls));
        let state = SessionStateBuilder::new().with_default_features().with_physical_optimizer_rules(rules).build();
        let ctx =
            crate::test_support::parquet_context(state, &dir, &["outer", "outer_null", "inner", "inner_null"]).await;
        let run = |outer: &str, inner: &str| {
            let sql = format!("SELECT count(*) FROM {outer} WHERE o.k NOT IN (SELECT k FROM {inner} WHERE tag = 'x')");
            let ctx = ctx.clone();
            async move {
                let (plan, count) = crate::test_support::plan_and_number(&ctx, &sql).await;
                (null_aware(&plan), count)
            }
        };
        // ten keys 0, 10, …, 90 are in the subquery
        assert_eq!(run("outer o", "inner").await, (vec![false], 990));
        // the outer keys through an inner join (q16's partsupp joined to part)
        let joined = "outer o JOIN outer_null p ON o.k = p.k";
        assert_eq!(run(joined, "inner").await, (vec![false, false], 989));
        // key 20 (tag 'x') is NULL in inner_null: k NOT IN (0, 10, NULL, …) is never true
        assert_eq!(run("outer o", "inner_null").await, (vec![true], 0));
        // NULL NOT IN (…) is NULL: row 5 is out
        assert_eq!(run("outer_null o", "inner").await, (vec![true], 989));
        let _ = std::fs::remove_dir_all(dir);
    }
}
