//! Byte estimates of join outputs that follow their row estimates, so that a join above another
//! join builds its hash table on the side that is really smaller.
//!
//! DataFusion picks a hash join's build side by the estimated bytes of its two inputs. For a
//! join's own output it keeps the row estimate but carries each column's byte size over from the
//! table the column came from: the output of a join that keeps 0.7 million of lineitem's 60
//! million rows was still "worth" all of lineitem's key columns. TPC-H q21's NOT EXISTS at SF10
//! then hashed 38 million lineitem rows (1.6 GB, 8 s) to probe them with 0.7 million, where
//! hashing the 0.7 million and probing with the 38 million is what the sizes call for; the same
//! files as DataFusion's own tables did the same. Here each output column of a hash or cross
//! join is sized as the join's rows times the width of the column on the side it comes from
//! (that side's bytes over its rows), which is what the rows say. The other operators keep
//! DataFusion's own estimates, computed from these (filters, projections and pass-through
//! operators read their input's estimate from the same walk).

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::common::stats::Precision;
use datafusion::common::{JoinSide, JoinType, Result, Statistics};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::joins::utils::{ColumnIndex, build_join_schema};
use datafusion::physical_plan::joins::{CrossJoinExec, HashJoinExec};
use datafusion::physical_plan::operator_statistics::{
    AggregateStatisticsProvider, DefaultStatisticsProvider, ExtendedStatistics, FilterStatisticsProvider,
    JoinStatisticsProvider, LimitStatisticsProvider, PassthroughStatisticsProvider, ProjectionStatisticsProvider,
    StatisticsProvider, StatisticsRegistry, StatisticsResult, UnionStatisticsProvider,
};
use datafusion::physical_plan::{StatisticsArgs, StatisticsContext};

use crate::filter_statistics::distinct_count;

/// The statistics the session's physical optimizer uses (with `use_statistics_registry`): joins
/// sized here, every other operator as DataFusion sizes it. DataFusion's own join provider is
/// left out: without distinct counts (Parquet has none) it takes a join's rows to be the
/// product of its inputs'.
pub fn registry() -> StatisticsRegistry {
    StatisticsRegistry::with_providers(vec![
        Arc::new(JoinBytes),
        Arc::new(crate::filter_statistics::DistinctCountFilter),
        Arc::new(FilterStatisticsProvider),
        Arc::new(ProjectionStatisticsProvider),
        Arc::new(PassthroughStatisticsProvider),
        Arc::new(AggregateStatisticsProvider),
        Arc::new(LimitStatisticsProvider),
        Arc::new(UnionStatisticsProvider),
        Arc::new(DefaultStatisticsProvider),
    ])
}

/// Bytes a value of a type whose width is not fixed is taken to hold when its input says nothing.
const VARIABLE_WIDTH: usize = 24;

#[derive(Debug)]
struct JoinBytes;

impl StatisticsProvider for JoinBytes {
    fn compute_statistics(&self, plan: &dyn ExecutionPlan, inputs: &[ExtendedStatistics]) -> Result<StatisticsResult> {
        let (join_type, projection) = if let Some(join) = plan.downcast_ref::<HashJoinExec>() {
            (*join.join_type(), join.projection.as_ref().map(|p| p.to_vec()))
        } else if plan.downcast_ref::<CrossJoinExec>().is_some() {
            (JoinType::Inner, None)
        } else {
            return Ok(StatisticsResult::Delegate);
        };
        let children = plan.children();
        if children.len() != 2 || inputs.len() != 2 {
            return Ok(StatisticsResult::Delegate);
        }
        // DataFusion's row estimate (and its column ranges) stand, but for a join whose keys'
        // distinct counts are known (ANALYZE): that one is made from the inputs as estimated
        // here, which know what the filters below keep (filter_statistics)
        // (DataFusion's provider starts from DataFusion's own statistics of the join, so they
        // are computed once either way)
        let by_keys = match plan.downcast_ref::<HashJoinExec>() {
            Some(join) if keys_have_distinct_counts(join, inputs) => {
                match JoinStatisticsProvider.compute_statistics(plan, inputs)? {
                    StatisticsResult::Computed(by_keys) => Some(Arc::clone(by_keys.base_arc())),
                    StatisticsResult::Delegate => None,
                }
            }
            _ => None,
        };
        let stats = match by_keys {
            Some(stats) => stats,
            None => StatisticsContext::new().compute(plan, &StatisticsArgs::new())?,
        };
        let mut stats = Arc::unwrap_or_clone(stats);
        let Some(&rows) = stats.num_rows.get_value() else {
            return Ok(StatisticsResult::Delegate);
        };
        let columns = output_columns(&children[0].schema(), &children[1].schema(), &join_type, projection.as_deref());
        let schema = plan.schema();
        if columns.len() != stats.column_statistics.len() || columns.len() != schema.fields().len() {
            return Ok(StatisticsResult::Delegate);
        }
        let mut total = 0usize;
        for ((column, stat), field) in columns.iter().zip(stats.column_statistics.iter_mut()).zip(schema.fields()) {
            let input = match column.side {
                JoinSide::Left => Some(inputs[0].base()),
                JoinSide::Right => Some(inputs[1].base()),
                JoinSide::None => None,
            };
            let width = input.and_then(|s| width(s, column.index)).unwrap_or_else(|| type_width(field.data_type()));
            let bytes = rows.saturating_mul(width);
            stat.byte_size = Precision::Inexact(bytes);
            total = total.saturating_add(bytes);
        }
        stats.total_byte_size = Precision::Inexact(total);
        Ok(StatisticsResult::Computed(ExtendedStatistics::new(stats)))
    }
}

/// Whether every key of `join` has a distinct count on both sides.
fn keys_have_distinct_counts(join: &HashJoinExec, inputs: &[ExtendedStatistics]) -> bool {
    let known =
        |key: &Arc<dyn PhysicalExpr>, side: &ExtendedStatistics| distinct_count(key.as_ref(), side.base()).is_some();
    inputs.len() == 2
        && !join.on().is_empty()
        && join.on().iter().all(|(left, right)| known(left, &inputs[0]) && known(right, &inputs[1]))
}

/// Where each output column of a join comes from (its side, and its index there), through the
/// projection the join may carry.
pub fn output_columns(
    left: &Schema,
    right: &Schema,
    join_type: &JoinType,
    projection: Option<&[usize]>,
) -> Vec<ColumnIndex> {
    let (_, columns) = build_join_schema(left, right, join_type);
    match projection {
        Some(p) => p.iter().filter_map(|&i| columns.get(i).cloned()).collect(),
        None => columns,
    }
}

/// Bytes per row of column `index` of a plan with these statistics: its bytes over its rows, or
/// its type's width where they are not known.
pub fn column_width(stats: &Statistics, schema: &Schema, index: usize) -> usize {
    width(stats, index).unwrap_or_else(|| type_width(schema.field(index).data_type()))
}

/// Bytes per row of one column of an input: its bytes over its rows, where both are known.
fn width(input: &Statistics, index: usize) -> Option<usize> {
    let rows = *input.num_rows.get_value()?;
    let bytes = *input.column_statistics.get(index)?.byte_size.get_value()?;
    (rows > 0).then(|| bytes.div_ceil(rows))
}

fn type_width(data_type: &DataType) -> usize {
    data_type.primitive_width().unwrap_or(match data_type {
        DataType::Boolean => 1,
        _ => VARIABLE_WIDTH,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{each_node, parquet_context, plan_and_number, scratch_dir};
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::execution::SessionStateBuilder;
    use datafusion::prelude::SessionConfig;

    /// q21's EXISTS and NOT EXISTS in small: the outer side is a join that keeps a tenth of a
    /// large table, the subqueries read the whole table. Sized by its rows, the outer side goes in the hash
    /// table (LeftAnti); sized by the bytes of the columns it came from, the whole table did
    /// (RightAnti). The answer is the same.
    #[tokio::test]
    async fn a_join_that_keeps_few_rows_is_the_smaller_side() {
        let dir = scratch_dir("join-stats");
        let n = 200_000i64;
        crate::test_support::write_parquet(
            &dir.join("big.parquet"),
            vec![
                ("k", Arc::new(Int64Array::from_iter_values((0..n).map(|i| i / 4)))),
                // four rows per key, one supplier for most keys and two for every eighth
                (
                    "s",
                    Arc::new(Int64Array::from_iter_values((0..n).map(|i| (i / 4 * 7 + i64::from(i % 32 == 0)) % 100))),
                ),
                ("v", Arc::new(Int64Array::from_iter_values(0..n))),
            ],
            true,
        );
        crate::test_support::write_parquet(
            &dir.join("dim.parquet"),
            vec![
                ("id", Arc::new(Int64Array::from_iter_values(0..100))),
                (
                    "flag",
                    Arc::new(StringArray::from_iter_values((0..100).map(|i| if i % 10 == 0 { "x" } else { "y" }))),
                ),
            ],
            true,
        );
        let sql = "SELECT sum(b1.v) FROM big b1 JOIN dim d ON b1.s = d.id WHERE d.flag = 'x' \
                   AND EXISTS (SELECT 1 FROM big b2 WHERE b2.k = b1.k AND b2.s = b1.s) \
                   AND NOT EXISTS (SELECT 1 FROM big b3 WHERE b3.k = b1.k AND b3.s <> b1.s)";
        let mut answers = vec![];
        for sized_by_rows in [false, true] {
            let mut config = SessionConfig::new();
            config.options_mut().optimizer.use_statistics_registry = sized_by_rows;
            let state = SessionStateBuilder::new()
                .with_default_features()
                .with_config(config)
                .with_statistics_registry(registry())
                .build();
            let ctx = parquet_context(state, &dir, &["big", "dim"]).await;
            let (plan, sum) = plan_and_number(&ctx, sql).await;
            answers.push((each_node::<HashJoinExec, _>(&plan, |j| Some(*j.join_type())), sum));
        }
        assert_eq!(answers[0].1, answers[1].1);
        assert!(answers[0].1 > 0, "{answers:?}");
        assert_eq!(answers[0].0.first(), Some(&JoinType::RightAnti), "DataFusion's own sizes: {answers:?}");
        assert_eq!(answers[1].0.first(), Some(&JoinType::LeftAnti), "sized by rows: {answers:?}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
