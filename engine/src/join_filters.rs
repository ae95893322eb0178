//! Parquet scans filtered only by a join's keys apply the filter to rows as they decode, while
//! it throws most rows away.
//!
//! A hash join hands its probe side a dynamic filter: the build side's key range and hash
//! table. Without Parquet filter pushdown DataFusion 55 uses it only to skip row groups by
//! their min/max, which does nothing when the keys are spread through the file (TPC-H q17's
//! `l_partkey`): every row is decoded and aggregated before the join drops nearly all of them.
//! Pushdown applies the filter while decoding (the key column first, the others only for the
//! rows that match), but turned on for every scan it slows scans whose own predicates keep most
//! rows (q07, q15). So it is turned on only for a scan whose whole predicate is join filters.
//!
//! Even then the filter pays only where it drops nearly every row. It repeats the join's own
//! lookup (41 ns a row in q09's lineitem scan against 23 in the join), a partitioned join's
//! filter routes each row through a CASE over the partitions (853 ms for q12's 15 M orders,
//! where the join's lookups took 197 ms; when every partition lists its keys, the lists are
//! looked up as one instead, see [`unrouted`]), and rows kept here and there cost more to decode
//! than whole pages. At TPC-H SF10 the filters that paid kept 0.1% of lineitem (q17) or less
//! (q18); those that cost kept 2% (q12), 5% (q09), 15% (q05) and 92% (q11), 15–25% slower in
//! all. How many rows a filter keeps is known only as the scan runs, so on the probe side each
//! filter watches what it keeps and steps aside ([`Selective`]) once it has seen enough rows to
//! tell that it keeps more than [`MAX_KEPT`]. A scan on a join's build side watches its filters
//! too, and a filter above it applies them while they keep less than [`MAX_KEPT_BEFORE_HASHING`]:
//! there every row dropped is a row the hash table need not hold (q07's orders, 13% kept, build 2 M
//! rows instead of 15 M), but decoding a few rows in every page costs more than decoding the pages
//! whole (q09's lineitem under a build side, 5.5% kept: 11 s decoding as the filter kept it,
//! 3.9 s whole). A filter counts as on a build side when a build side lies between its join and
//! the scan: a scan on the probe side of a join under some build side (q21's EXISTS) drops only
//! rows its join drops next. `GLAUX_NO_JOIN_FILTERS_IN_SCANS=1` turns the rule off.
//!
//! A scan with a predicate of its own keeps decoding whole pages, and its own predicate is applied
//! by the filter above it. When an aggregate lies between that scan and the join whose filter it
//! holds (q20: `sum(l_quantity)` over a year of lineitem per part and supplier, joined with the
//! 1% of partsupp that matters), the filter above the scan also applies the join's filter, last,
//! to the rows its own predicate kept: the aggregate then groups only rows the join will keep.
//! A lookup costs a few tens of ns a row; a row grouped and repartitioned, several times that
//! (q20 at SF10: 154 ns a row in its final aggregate alone), so that filter steps aside only when
//! it keeps more than [`MAX_KEPT_BEFORE_HASHING`].
//!
//! A join whose build keys go into a bitmap ([`crate::join_key_bitmap`], a join on an integer
//! key) is left to it: the bitmap's test above the scan drops the same rows in a nanosecond or
//! two a row, and decoding with a filter cost more than it saved even where the filter kept
//! almost nothing. Over TPC-H's 22 queries in one `glaux query`, with the bitmaps in place, this
//! rule cost 3–7% at SF1 and 5–9% at SF10 (q09 318 → 246 ms at SF1 without it, q17 1.27 → 1.08 s
//! at SF10). So the rule runs after the bitmaps and acts only on the filters of joins without
//! one: a join on text keys, or a plan spread over workers, which has no bitmaps.

use std::collections::HashSet;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{Result, ScalarValue};
use datafusion::config::ConfigOptions;
use datafusion::datasource::physical_plan::{FileScanConfig, FileSource, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::logical_expr::ColumnarValue;
use datafusion::physical_expr::expressions::{CaseExpr, DynamicFilterPhysicalExpr, InListExpr, Literal};
use datafusion::physical_expr::utils::reassign_expr_columns;
use datafusion::physical_expr::{PhysicalExpr, conjunction, split_conjunction};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::AggregateExec;
use datafusion::physical_plan::execution_plan::replace_children_if_necessary;
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use datafusion::physical_plan::joins::{CrossJoinExec, HashJoinExec, NestedLoopJoinExec};

use crate::join_key_bitmap::CollectBuildKeys;

/// Must run after DataFusion's own rules: the join filters are attached by the last of them.
#[derive(Debug)]
pub struct JoinFiltersInScans {
    /// Whether probe-side filters watch what they keep ([`Selective`]). A plan spread over
    /// workers keeps them plain: datafusion-distributed sends a scan's predicate to the workers
    /// without asking glaux's codec about expressions it does not know.
    watch: bool,
}

impl Default for JoinFiltersInScans {
    fn default() -> Self {
        Self { watch: true }
    }
}

impl JoinFiltersInScans {
    /// The rule for plans spread over workers.
    pub fn unwatched() -> Self {
        Self { watch: false }
    }
}

impl PhysicalOptimizerRule for JoinFiltersInScans {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, options: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        if options.execution.parquet.pushdown_filters || std::env::var_os("GLAUX_NO_JOIN_FILTERS_IN_SCANS").is_some() {
            // every scan filters its rows already (or the rule is off, to measure what it does)
            return Ok(plan);
        }
        // the filters hash joins make, and those of joins with a bitmap of their build keys
        let mut joins = Joins { watch: self.watch, ..Joins::default() };
        plan.apply(|node| {
            let ids = join_filter_ids(node);
            if node.downcast_ref::<HashJoinExec>().is_some_and(|join| join.left().is::<CollectBuildKeys>()) {
                joins.bitmapped.extend(ids.iter().copied());
            }
            joins.all.extend(ids);
            Ok(TreeNodeRecursion::Continue)
        })?;
        Ok(rewrite(plan, &joins, &Route::default())?.data)
    }

    fn name(&self) -> &str {
        "glaux_join_filters_in_scans"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// The hash joins' filters, whether the rule watches them (not in a plan spread over workers),
/// and those whose joins test a bitmap of their build keys above the probe side's scan
/// ([`crate::join_key_bitmap`]): the rule leaves those to the bitmap.
#[derive(Default)]
struct Joins {
    watch: bool,
    all: HashSet<u64>,
    bitmapped: HashSet<u64>,
}

impl Joins {
    /// Whether `id` is a join's filter the rule watches.
    fn watched(&self, id: u64) -> bool {
        self.watch && self.all.contains(&id)
    }

    /// Whether the join filters among `parts` (not a TopK's) are all left to bitmaps, and there
    /// is one.
    fn all_bitmapped(&self, parts: &[&Arc<dyn PhysicalExpr>]) -> bool {
        let mut ids =
            parts.iter().filter_map(|part| part.expression_id()).filter(|id| self.all.contains(id)).peekable();
        ids.peek().is_some() && ids.all(|id| self.bitmapped.contains(&id))
    }
}

/// The join filters on the way from the plan's root down to a node: those of the joins it is on
/// the probe side of, and which of them have an aggregate, or another join's build side, between
/// that join and the node.
#[derive(Clone, Default)]
struct Route {
    open: Vec<u64>,
    behind_aggregate: Vec<u64>,
    behind_build: Vec<u64>,
}

/// Turns on the filter of each scan under `node`; `joins` says whether the rule watches join
/// filters (it does not in a plan spread over workers) and which it leaves to bitmaps.
fn rewrite(node: Arc<dyn ExecutionPlan>, joins: &Joins, route: &Route) -> Result<Transformed<Arc<dyn ExecutionPlan>>> {
    if let Some(exec) = node.downcast_ref::<DataSourceExec>() {
        return Ok(match filtered_scan(exec, joins, &route.behind_build) {
            Some((scan, None)) => Transformed::yes(scan),
            Some((scan, Some(above))) => Transformed::yes(Arc::new(FilterExecBuilder::new(above, scan).build()?)),
            None => Transformed::no(node),
        });
    }
    if let Some(filter) = node.downcast_ref::<FilterExec>() {
        // on a build side too: the route tells whether the scan is on the probe side of the join
        // whose filter it holds
        if let Some(filter) = filter_before_aggregate(filter, joins, &route.behind_aggregate)? {
            return Ok(Transformed::yes(filter));
        }
        // a filter already over the scan (a bitmap's test, first) takes the scan's join filters
        // as its last conditions
        if let Some(exec) = filter.input().downcast_ref::<DataSourceExec>()
            && let Some((scan, above)) = filtered_scan(exec, joins, &route.behind_build)
        {
            let predicate = conjunction(std::iter::once(Arc::clone(filter.predicate())).chain(above));
            let filter = FilterExecBuilder::from(filter).with_input(scan).with_predicate(predicate).build()?;
            return Ok(Transformed::yes(Arc::new(filter)));
        }
    }
    let mut route = route.clone();
    if node.is::<AggregateExec>() {
        route.behind_aggregate.extend(route.open.iter().copied());
    }
    // the first child of these joins is the side they hold in memory: a row that a filter from
    // above drops there is one the hash table need not hold
    let builds = node.is::<HashJoinExec>() || node.is::<CrossJoinExec>() || node.is::<NestedLoopJoinExec>();
    let mut build = route.clone();
    build.behind_build.extend(route.open.iter().copied());
    // the probe side (the second child) meets the filters a hash join makes
    let mut probe = route.clone();
    probe.open.extend(join_filter_ids(&node));
    let mut changed = false;
    let mut children = Vec::with_capacity(node.children().len());
    for (i, child) in node.children().into_iter().enumerate() {
        let route = match (builds, i) {
            (true, 0) => &build,
            (true, 1) => &probe,
            _ => &route,
        };
        let child = rewrite(Arc::clone(child), joins, route)?;
        changed |= child.transformed;
        children.push(child.data);
    }
    Ok(if changed { Transformed::yes(replace_children_if_necessary(node, children)?) } else { Transformed::no(node) })
}

/// The ids of the dynamic filters `node` makes if it is a hash join (a TopK's filter tightens as
/// the query runs and is left as it is).
fn join_filter_ids(node: &Arc<dyn ExecutionPlan>) -> Vec<u64> {
    match node.is::<HashJoinExec>() {
        true => node.dynamic_expressions_produced().iter().filter_map(|f| f.expression_id()).collect(),
        false => Vec::new(),
    }
}

/// The filter over a Parquet scan with a predicate of its own, also applying (last, watched) the
/// scan's join filters that have an aggregate between the scan and their join, unless a bitmap
/// of the join's build keys drops those rows already. `joins` says which filters may be watched
/// (none in a plan spread over workers) and which have bitmaps.
fn filter_before_aggregate(
    filter: &FilterExec,
    joins: &Joins,
    behind_aggregate: &[u64],
) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let Some(exec) = filter.input().downcast_ref::<DataSourceExec>() else { return Ok(None) };
    let Some((_, parquet)) = exec.downcast_to_file_source::<ParquetSource>() else { return Ok(None) };
    let Some(predicate) = parquet.filter() else { return Ok(None) };
    if parquet.table_parquet_options().global.pushdown_filters {
        return Ok(None);
    }
    let parts = split_conjunction(&predicate);
    if parts.iter().all(|part| part.is::<DynamicFilterPhysicalExpr>()) {
        // join filters alone: the scan applies them as it decodes (filtered_scan)
        return Ok(None);
    }
    let schema = exec.schema();
    let mut added = Vec::new();
    for part in parts {
        let Some(id) = part.expression_id() else { continue };
        let leave = joins.bitmapped.contains(&id) || !joins.watched(id);
        if !part.is::<DynamicFilterPhysicalExpr>() || leave || !behind_aggregate.contains(&id) {
            continue;
        }
        added.extend(above_scan(part, &schema));
    }
    if added.is_empty() {
        return Ok(None);
    }
    let predicate = conjunction(std::iter::once(Arc::clone(filter.predicate())).chain(added));
    let filter = FilterExecBuilder::from(filter).with_predicate(predicate).build()?;
    // the scan under it keeps the join filters in its predicate, to skip row groups by min/max
    Ok(Some(Arc::new(filter)))
}

/// The predicate of a filter to put above a scan, if any.
type AboveScan = Option<Arc<dyn PhysicalExpr>>;

/// The scan with its join filters applied as rows decode, if its predicate is join filters alone
/// and one of them is not left to a bitmap of its join's build keys (a scan whose every join
/// keeps such a bitmap decodes whole pages, and the bitmap's test drops rows above it). Each
/// watches what it keeps and steps aside when it keeps too much (see [`Selective`]). A filter
/// with a build side between its join and the scan (`behind_build`) pays for every row it drops,
/// which that build side's hash table then need not hold: it is also applied by a filter above the
/// scan, to the rows decoded whole once the scan's own copy has stepped aside, and steps aside
/// there only when it keeps more than [`MAX_KEPT_BEFORE_HASHING`]; that filter's predicate comes
/// back beside the scan. (A filter whose join is the next one up drops only rows that join would
/// drop itself.)
fn filtered_scan(
    exec: &DataSourceExec,
    joins: &Joins,
    behind_build: &[u64],
) -> Option<(Arc<dyn ExecutionPlan>, AboveScan)> {
    let (config, parquet) = exec.downcast_to_file_source::<ParquetSource>()?;
    let predicate = parquet.filter()?;
    if parquet.table_parquet_options().global.pushdown_filters {
        return None;
    }
    let parts = split_conjunction(&predicate);
    if parts.is_empty() || !parts.iter().all(|part| part.is::<DynamicFilterPhysicalExpr>()) {
        return None;
    }
    if joins.all_bitmapped(&parts) {
        return None;
    }
    let mut source = parquet.clone().with_pushdown_filters(true);
    let mut above = Vec::new();
    if joins.watch {
        let schema = exec.schema();
        let mut watched = Vec::with_capacity(parts.len());
        for part in parts {
            let Some(id) = part.expression_id().filter(|id| joins.watched(*id)) else {
                watched.push(Arc::clone(part));
                continue;
            };
            if behind_build.contains(&id) && !joins.bitmapped.contains(&id) {
                let Some(applied) = above_scan(part, &schema) else {
                    watched.push(Arc::clone(part));
                    continue;
                };
                above.push(applied);
            }
            watched.push(Arc::new(Selective::new(Arc::clone(part))) as Arc<dyn PhysicalExpr>);
        }
        source = source.with_predicate(conjunction(watched));
    }
    let mut config: FileScanConfig = config.clone();
    config.file_source = Arc::new(source);
    let scan = DataSourceExec::from_data_source(config) as Arc<dyn ExecutionPlan>;
    Some((scan, (!above.is_empty()).then(|| conjunction(above))))
}

/// A join filter of a scan's predicate as a filter above the scan applies it: watched, stepping
/// aside past [`MAX_KEPT_BEFORE_HASHING`]. None when it names a column the scan does not output.
fn above_scan(part: &Arc<dyn PhysicalExpr>, schema: &Schema) -> Option<Arc<dyn PhysicalExpr>> {
    // the scan's predicate names the file's columns; the filter sees the scan's output
    let output = reassign_expr_columns(Arc::clone(part), schema).ok()?;
    Some(Arc::new(Selective::with_limit(output, MAX_KEPT_BEFORE_HASHING)))
}

/// The share of rows above which a filter on the probe side steps aside.
pub const MAX_KEPT: f64 = 0.01;

/// The same where the rows the filter drops would otherwise be grouped by an aggregate or held
/// in a join's hash table.
pub const MAX_KEPT_BEFORE_HASHING: f64 = 0.25;

/// Rows a filter sees before it judges what it keeps: several row groups of most files, so that
/// one group's chance make-up does not decide.
const WATCHED_ROWS: u64 = 1 << 20;

/// A join's filter that counts the rows it sees and keeps, and once it has seen
/// [`WATCHED_ROWS`] and kept more than its limit ([`MAX_KEPT`] unless told) of them, lets every
/// row through without looking (the join still drops what it must). The count is shared by every
/// partition and file of the scan. Pruning sees the filter itself (`snapshot`), so row groups outside the build
/// side's key range are still skipped.
#[derive(Debug)]
pub struct Selective {
    filter: Arc<dyn PhysicalExpr>,
    max_kept: f64,
    tally: Arc<Tally>,
    /// The filter's expression in the form evaluated (see [`unrouted`]), with the generation of
    /// the dynamic filter it was made from.
    evaluated: Mutex<Option<(u64, Arc<dyn PhysicalExpr>)>>,
}

#[derive(Debug, Default)]
struct Tally {
    seen: AtomicU64,
    kept: AtomicU64,
    aside: AtomicBool,
}

impl Selective {
    pub fn new(filter: Arc<dyn PhysicalExpr>) -> Self {
        Self::with_limit(filter, MAX_KEPT)
    }

    /// A filter that steps aside once it keeps more than `max_kept` of the rows it sees.
    pub fn with_limit(filter: Arc<dyn PhysicalExpr>, max_kept: f64) -> Self {
        Self { filter, max_kept, tally: Arc::default(), evaluated: Mutex::default() }
    }

    /// What to evaluate for the filter as it now stands: its current expression, unrouted, its
    /// lists of integers as bitmaps.
    fn evaluated(&self, schema: &Schema) -> Result<Arc<dyn PhysicalExpr>> {
        let generation = self.filter.snapshot_generation();
        let mut evaluated = self.evaluated.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some((made_from, expr)) = evaluated.as_ref()
            && *made_from == generation
        {
            return Ok(Arc::clone(expr));
        }
        let current = self.filter.snapshot()?.unwrap_or_else(|| Arc::clone(&self.filter));
        let expr = unrouted(&current, schema).unwrap_or(current);
        // a long list of integer keys is looked up in a bitmap rather than a hash set
        let expr = crate::join_key_bitmap::InListBits::replace_lists(expr, schema);
        *evaluated = Some((generation, Arc::clone(&expr)));
        Ok(expr)
    }

    /// Whether the filter has stepped aside.
    pub fn stepped_aside(&self) -> bool {
        self.tally.aside.load(Ordering::Relaxed)
    }

    fn count(&self, rows: u64, kept: u64) {
        let seen = self.tally.seen.fetch_add(rows, Ordering::Relaxed) + rows;
        let kept = self.tally.kept.fetch_add(kept, Ordering::Relaxed) + kept;
        if seen >= WATCHED_ROWS && kept as f64 > seen as f64 * self.max_kept {
            self.tally.aside.store(true, Ordering::Relaxed);
        }
    }
}

impl PhysicalExpr for Selective {
    fn data_type(&self, input_schema: &Schema) -> Result<DataType> {
        self.filter.data_type(input_schema)
    }

    fn nullable(&self, input_schema: &Schema) -> Result<bool> {
        self.filter.nullable(input_schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        if self.stepped_aside() {
            return Ok(ColumnarValue::Scalar(ScalarValue::Boolean(Some(true))));
        }
        let result = self.evaluated(&batch.schema())?.evaluate(batch)?;
        let kept = match &result {
            ColumnarValue::Array(array) => {
                datafusion::common::cast::as_boolean_array(array).map_or(array.len(), |b| b.true_count())
            }
            ColumnarValue::Scalar(ScalarValue::Boolean(Some(true))) => batch.num_rows(),
            ColumnarValue::Scalar(_) => 0,
        };
        self.count(batch.num_rows() as u64, kept as u64);
        Ok(result)
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.filter]
    }

    fn with_new_children(self: Arc<Self>, mut children: Vec<Arc<dyn PhysicalExpr>>) -> Result<Arc<dyn PhysicalExpr>> {
        let Some(filter) = children.pop() else { return Ok(self) };
        // the tally stays shared: a scan rewritten for each file is still one scan
        Ok(Arc::new(Self {
            filter,
            max_kept: self.max_kept,
            tally: Arc::clone(&self.tally),
            evaluated: Mutex::default(),
        }))
    }

    fn snapshot(&self) -> Result<Option<Arc<dyn PhysicalExpr>>> {
        Ok(Some(Arc::clone(&self.filter)))
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.filter.fmt_sql(f)
    }
}

/// A partitioned join's filter, `CASE hash(key) % n WHEN 0 THEN f0 WHEN 1 THEN f1 … END`, as one
/// list `key IN (…)` when each partition's filter is its build side's keys in a list (with or
/// without their range): a small build side.
///
/// The CASE hashes each row, and evaluates each partition's branch on a copy of the rows routed
/// to it; one lookup in the union of the lists is cheaper (TPC-H q18 at SF10: the 624 orders of
/// over 300 units, in four lists, filter lineitem's 60 M rows). The two keep the same rows: a key
/// is in partition i's list only if it hashes to i. (Any CASE is at most as wide as the OR of
/// its branches, so a filter made this way never drops a row the join needs.)
fn unrouted(expr: &Arc<dyn PhysicalExpr>, schema: &Schema) -> Option<Arc<dyn PhysicalExpr>> {
    let case = expr.downcast_ref::<CaseExpr>()?;
    case.expr()?;
    let branches = case.when_then_expr().iter().map(|(_, then)| then).chain(case.else_expr());
    let mut key: Option<&Arc<dyn PhysicalExpr>> = None;
    let mut values = vec![];
    for branch in branches {
        if let Some(literal) = branch.downcast_ref::<Literal>() {
            // a partition with no rows (false); any other constant leaves the CASE as it is
            if matches!(literal.value(), ScalarValue::Boolean(Some(false))) {
                continue;
            }
            return None;
        }
        // the list, alone or beside the build side's key range
        let list = split_conjunction(branch).into_iter().find_map(|part| part.downcast_ref::<InListExpr>())?;
        if list.negated() || key.is_some_and(|k| !k.eq(list.expr())) {
            return None;
        }
        key = Some(list.expr());
        for value in list.list() {
            values.push(value.downcast_ref::<Literal>()?.value().clone());
        }
    }
    let key = Arc::clone(key?);
    let array = ScalarValue::iter_to_array(values).ok()?;
    let list = InListExpr::try_new_from_array(key, array, false, schema).ok()?;
    Some(Arc::new(list))
}

impl fmt::Display for Selective {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Selective [ {} ]", self.filter)
    }
}

impl PartialEq for Selective {
    fn eq(&self, other: &Self) -> bool {
        self.filter.eq(&other.filter)
    }
}

impl Eq for Selective {}

impl Hash for Selective {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.filter.hash(state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{parquet_context, plan_and_number, scratch_dir};
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::execution::SessionStateBuilder;

    /// A join's list of 100 integer keys is evaluated as a bitmap, keeping the list's rows.
    #[test]
    fn a_long_list_of_integer_keys_is_evaluated_as_a_bitmap() {
        use datafusion::arrow::array::AsArray;
        use datafusion::arrow::datatypes::Field;
        let schema = Arc::new(Schema::new(vec![Field::new("k", DataType::Int64, false)]));
        let key: Arc<dyn PhysicalExpr> = Arc::new(datafusion::physical_expr::expressions::Column::new("k", 0));
        let keys = Arc::new(Int64Array::from_iter_values((0..100).map(|i| i * 11)));
        let list: Arc<dyn PhysicalExpr> =
            Arc::new(InListExpr::try_new_from_array(Arc::clone(&key), keys, false, &schema).unwrap());
        let filter = Selective::with_limit(Arc::clone(&list), 1.0);
        let evaluated = filter.evaluated(&schema).unwrap();
        assert!(evaluated.is::<crate::join_key_bitmap::InListBits>(), "{evaluated}");
        let batch =
            RecordBatch::try_new(Arc::clone(&schema), vec![Arc::new(Int64Array::from_iter_values(0..2_000))]).unwrap();
        let kept = |expr: &dyn PhysicalExpr| {
            let answer = expr.evaluate(&batch).unwrap().into_array(batch.num_rows()).unwrap();
            answer.as_boolean().iter().map(|a| a == Some(true)).collect::<Vec<_>>()
        };
        let expected = kept(list.as_ref());
        assert_eq!(expected.iter().filter(|k| **k).count(), 100);
        assert_eq!(kept(&filter), expected);
    }

    fn write(path: &std::path::Path, columns: Vec<(&str, Arc<dyn datafusion::arrow::array::Array>)>) {
        crate::test_support::write_parquet(path, columns, false)
    }

    /// `big`: keys 0..1000 over and over in `k`, and `v` = the row's number, for `n` rows.
    fn write_big(dir: &std::path::Path, n: i64) {
        write(
            &dir.join("big.parquet"),
            vec![
                ("k", Arc::new(Int64Array::from_iter_values((0..n).map(|i| i % 1000)))),
                ("v", Arc::new(Int64Array::from_iter_values(0..n))),
            ],
        );
    }

    /// `big` (see [`write_big`]) and `small`: keys 0..1000, `tag` 'x' for key 7 alone, `half`
    /// 'even' for the even keys.
    fn write_big_and_small(dir: &std::path::Path, n: i64) {
        write_big(dir, n);
        write(
            &dir.join("small.parquet"),
            vec![
                ("k", Arc::new(Int64Array::from_iter_values(0..1000))),
                ("tag", Arc::new(StringArray::from_iter_values((0..1000).map(|i| if i == 7 { "x" } else { "y" })))),
                (
                    "half",
                    Arc::new(StringArray::from_iter_values((0..1000).map(|i| if i % 2 == 0 { "even" } else { "odd" }))),
                ),
            ],
        );
    }

    /// The plan of `sql` after it ran (its metrics filled in), and the number in its first cell.
    async fn run_plan(ctx: &datafusion::prelude::SessionContext, sql: &str) -> (Arc<dyn ExecutionPlan>, i64) {
        let plan = ctx.sql(sql).await.unwrap().create_physical_plan().await.unwrap();
        let batches = datafusion::physical_plan::collect(Arc::clone(&plan), ctx.task_ctx()).await.unwrap();
        (plan, batches[0].column(0).as_any().downcast_ref::<Int64Array>().unwrap().value(0))
    }

    /// Whether each Parquet scan of `plan` filters rows as it decodes.
    fn pushdown(plan: &Arc<dyn ExecutionPlan>) -> Vec<bool> {
        crate::test_support::each_node::<DataSourceExec, _>(plan, |exec| {
            exec.downcast_to_file_source::<ParquetSource>()
                .map(|(_, parquet)| parquet.table_parquet_options().global.pushdown_filters)
        })
    }

    /// The Selective filters of each Parquet scan of `plan`, and whether each has stepped aside.
    fn watched(plan: &Arc<dyn ExecutionPlan>) -> Vec<Vec<bool>> {
        crate::test_support::each_node::<DataSourceExec, _>(plan, |exec| {
            let (_, parquet) = exec.downcast_to_file_source::<ParquetSource>()?;
            let predicate = parquet.filter()?;
            Some(
                split_conjunction(&predicate)
                    .into_iter()
                    .filter_map(|part| part.downcast_ref::<Selective>().map(Selective::stepped_aside))
                    .collect(),
            )
        })
    }

    fn rule_state() -> datafusion::execution::SessionState {
        SessionStateBuilder::new()
            .with_default_features()
            .with_physical_optimizer_rule(Arc::new(JoinFiltersInScans::default()))
            .build()
    }

    /// The join's filter over `big` keeps 0.1% of its 1.2 million rows in one query and half in
    /// the other: the first keeps filtering to the end, the second steps aside after the rows it
    /// watches. Both answer what the data says.
    #[tokio::test]
    async fn a_join_filter_that_keeps_most_rows_steps_aside() {
        let dir = scratch_dir("join-filters-aside");
        let n = 1_200_000i64;
        write_big_and_small(&dir, n);
        let ctx = parquet_context(rule_state(), &dir, &["big", "small"]).await;
        let run = async |filter: &str| {
            let sql = format!("SELECT sum(b.v) AS s FROM big b JOIN small s ON b.k = s.k WHERE {filter}");
            let (plan, sum) = run_plan(&ctx, &sql).await;
            (watched(&plan).concat(), sum)
        };
        // v = k + 1000 j for j in 0..1200
        let (few, sum) = run("s.tag = 'x'").await;
        assert_eq!(few, vec![false], "the filter keeping 0.1% of rows stepped aside");
        assert_eq!(sum, (0..1200).map(|j| 7 + 1000 * j).sum::<i64>());
        let (most, sum) = run("s.half = 'even'").await;
        assert_eq!(most, vec![true], "the filter keeping half the rows kept filtering");
        assert_eq!(sum, (0..n).filter(|v| v % 2 == 0).sum::<i64>());
        let _ = std::fs::remove_dir_all(dir);
    }

    /// A partitioned join with a small build side routes each probe row to its partition's list
    /// of keys; the watched filter evaluates one list of all the keys instead, which keeps
    /// exactly the same rows, and the answer is the data's. 640 keys over four partitions are
    /// lists under glaux's settings (over DataFusion's 150 a partition, one would be a table).
    #[tokio::test]
    async fn a_partitioned_joins_lists_of_keys_are_looked_up_as_one() {
        let dir = scratch_dir("join-filters-unrouted");
        let n = 1_200_000i64;
        write_big(&dir, n);
        write(
            &dir.join("small.parquet"),
            vec![
                ("k", Arc::new(Int64Array::from_iter_values(0..1000))),
                ("tag", Arc::new(StringArray::from_iter_values((0..1000).map(|i| if i < 640 { "x" } else { "y" })))),
            ],
        );
        let mut state = rule_state();
        crate::session::tune(state.config_mut(), None);
        let options = state.config_mut().options_mut();
        options.execution.target_partitions = 4;
        options.optimizer.hash_join_single_partition_threshold = 0;
        options.optimizer.hash_join_single_partition_threshold_rows = 0;
        let ctx = parquet_context(state, &dir, &["big", "small"]).await;
        let sql = "SELECT sum(b.v) AS s FROM big b JOIN small s ON b.k = s.k WHERE s.tag = 'x'";
        let (plan, sum) = run_plan(&ctx, sql).await;
        assert_eq!(sum, (0..n).filter(|v| v % 1000 < 640).sum::<i64>());
        let modes = crate::test_support::each_node::<HashJoinExec, _>(&plan, |j| Some(*j.partition_mode()));
        assert_eq!(modes, vec![datafusion::physical_plan::joins::PartitionMode::Partitioned]);
        let filters = crate::test_support::each_node::<DataSourceExec, _>(&plan, |exec| {
            let (_, parquet) = exec.downcast_to_file_source::<ParquetSource>()?;
            split_conjunction(&parquet.filter()?)
                .into_iter()
                .find_map(|p| p.downcast_ref::<Selective>().map(|s| Arc::clone(&s.filter)))
        });
        let [filter] = &filters[..] else { panic!("one watched filter: {filters:?}") };
        let routed = filter.snapshot().unwrap().unwrap();
        assert!(routed.is::<CaseExpr>(), "{routed}");
        let schema = Schema::new(vec![datafusion::arrow::datatypes::Field::new("k", DataType::Int64, false)]);
        let one = unrouted(&routed, &schema).expect("one list");
        let list = one.downcast_ref::<InListExpr>().expect("a list");
        assert_eq!(list.len(), 640);
        let keys = RecordBatch::try_new(
            Arc::new(schema),
            vec![Arc::new(Int64Array::from_iter_values((0..3000).map(|i| i % 1000)))],
        )
        .unwrap();
        let rows = |e: &Arc<dyn PhysicalExpr>| e.evaluate(&keys).unwrap().into_array(keys.num_rows()).unwrap();
        let kept = rows(&one);
        assert_eq!(&kept, &rows(&routed));
        assert_eq!(datafusion::common::cast::as_boolean_array(&kept).unwrap().true_count(), 3 * 640);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Three tables: big (m, v) holds each m of mid ten times; mid (m, k) maps m to k; small (k,
    /// tag) tags k = 7 alone "x". The scans of the plan for `sql`, as (file, decodes with its
    /// filters, watches one), the files of the scans with a join's filter applied above them, and
    /// the query's number.
    async fn scans_of_three_tables(name: &str, sql: &str) -> (Vec<(String, bool, bool)>, Vec<String>, i64) {
        let dir = scratch_dir(name);
        write(
            &dir.join("big.parquet"),
            vec![
                ("m", Arc::new(Int64Array::from_iter_values((0..100_000).map(|i| i % 10_000)))),
                ("v", Arc::new(Int64Array::from_iter_values(0..100_000))),
            ],
        );
        write(
            &dir.join("mid.parquet"),
            vec![
                ("m", Arc::new(Int64Array::from_iter_values(0..10_000))),
                ("k", Arc::new(Int64Array::from_iter_values((0..10_000).map(|i| i % 1000)))),
            ],
        );
        write(
            &dir.join("small.parquet"),
            vec![
                ("k", Arc::new(Int64Array::from_iter_values(0..1000))),
                ("tag", Arc::new(StringArray::from_iter_values((0..1000).map(|i| if i == 7 { "x" } else { "y" })))),
            ],
        );
        let ctx = parquet_context(rule_state(), &dir, &["big", "mid", "small"]).await;
        let (plan, number) = plan_and_number(&ctx, sql).await;
        let scans = crate::test_support::each_node::<DataSourceExec, _>(&plan, |exec| {
            let (config, parquet) = exec.downcast_to_file_source::<ParquetSource>()?;
            let table =
                config.file_groups.iter().flat_map(|g| g.files()).next()?.object_meta.location.filename()?.to_string();
            let on = parquet.table_parquet_options().global.pushdown_filters;
            let selective = parquet.filter().is_some_and(|p| split_conjunction(&p).iter().any(|e| e.is::<Selective>()));
            Some((table, on, selective))
        });
        let filtered_above = crate::test_support::each_node::<FilterExec, _>(&plan, |filter| {
            let exec = filter.input().downcast_ref::<DataSourceExec>()?;
            let (config, _) = exec.downcast_to_file_source::<ParquetSource>()?;
            split_conjunction(filter.predicate()).iter().any(|p| p.is::<Selective>()).then_some(())?;
            Some(config.file_groups.iter().flat_map(|g| g.files()).next()?.object_meta.location.filename()?.to_string())
        });
        let _ = std::fs::remove_dir_all(dir);
        (scans, filtered_above, number)
    }

    /// big's v summed over the m that map to k = 7 (m = 7 + 1000 i, i < 10; v = m + 10000 j).
    fn sum_of_tagged() -> i64 {
        (0..10).flat_map(|i| (0..10).map(move |j| 7 + 1000 * i + 10_000 * j)).sum()
    }

    fn scan<'a>(scans: &'a [(String, bool, bool)], name: &str) -> &'a (String, bool, bool) {
        scans.iter().find(|(t, ..)| t == name).unwrap_or_else(|| panic!("no scan of {name}: {scans:?}"))
    }

    /// A scan on a join's build side has its join filter applied above it (every row it drops
    /// stays out of a hash table), and watched in the scan, as the probe side's scan watches its
    /// own.
    #[tokio::test]
    async fn a_build_side_scan_has_its_join_filter_applied_above_it() {
        let sql = "SELECT sum(b.v) AS s FROM big b JOIN mid m ON b.m = m.m JOIN small s ON m.k = s.k WHERE s.tag = 'x'";
        let (scans, filtered_above, sum) = scans_of_three_tables("join-filters-sides", sql).await;
        // big's scan probes the join with mid; mid's scan builds it, filtered by small's keys,
        // watched in the scan and applied above it
        assert_eq!(scan(&scans, "mid.parquet"), &("mid.parquet".to_string(), true, true), "{scans:?}");
        assert_eq!(filtered_above, vec!["mid.parquet".to_string()]);
        assert_eq!(scan(&scans, "big.parquet"), &("big.parquet".to_string(), true, true), "{scans:?}");
        assert_eq!(sum, sum_of_tagged());
    }

    /// A join on a build side probes with a scan that watches the filter of that join: the
    /// rows it drops are rows the join drops next, not rows the build side's table holds (TPC-H
    /// q21's EXISTS, whose lineitem scan is a semi join's probe side under an anti join's build
    /// side, kept 5.8% of the rows at twice the cost of decoding whole pages).
    #[tokio::test]
    async fn a_probe_side_under_a_build_side_watches_its_join_filter() {
        let sql = "SELECT sum(b.v) AS s FROM big b \
                   WHERE b.m IN (SELECT m.m FROM mid m JOIN small s ON m.k = s.k WHERE s.tag = 'x')";
        let (scans, filtered_above, sum) = scans_of_three_tables("join-filters-nested", sql).await;
        // the semi join builds on mid ⋈ small, whose probe side is mid's scan
        assert_eq!(scan(&scans, "mid.parquet"), &("mid.parquet".to_string(), true, true), "{scans:?}");
        assert!(filtered_above.is_empty(), "{filtered_above:?}");
        assert_eq!(scan(&scans, "big.parquet"), &("big.parquet".to_string(), true, true), "{scans:?}");
        assert_eq!(sum, sum_of_tagged());
    }

    /// q17's shape: the large side's scan, filtered only by the join's keys, decodes with the
    /// filter; with a predicate of its own it does not; and the answers are the same.
    #[tokio::test]
    async fn only_scans_filtered_by_join_keys_alone_decode_with_the_filter() {
        let dir = scratch_dir("join-filters");
        let n = 10_000;
        write_big(&dir, n);
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
        let ctx = parquet_context(rule_state(), &dir, &["big", "small"]).await;
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

    /// A join on an integer key leaves its filter to the bitmap of its build keys: the probe
    /// side's scan decodes whole pages and the bitmap's test drops rows above it. A join on a
    /// text key, which has no bitmap, still has its scan decode with the filter. Both answer
    /// what the data says.
    #[tokio::test]
    async fn a_join_with_a_bitmap_of_its_keys_leaves_its_filter_to_the_bitmap() {
        let dir = scratch_dir("join-filters-bitmapped");
        let n = 10_000;
        write(
            &dir.join("big.parquet"),
            vec![
                ("k", Arc::new(Int64Array::from_iter_values((0..n).map(|i| i % 1000)))),
                ("ks", Arc::new(StringArray::from_iter_values((0..n).map(|i| format!("k{}", i % 1000))))),
                ("v", Arc::new(Int64Array::from_iter_values(0..n))),
            ],
        );
        write(
            &dir.join("small.parquet"),
            vec![
                ("k", Arc::new(Int64Array::from_iter_values(0..1000))),
                ("ks", Arc::new(StringArray::from_iter_values((0..1000).map(|i| format!("k{i}"))))),
                (
                    "tag",
                    Arc::new(StringArray::from_iter_values((0..1000).map(|i| if i % 100 == 7 { "x" } else { "y" }))),
                ),
            ],
        );
        // in the session's order: the bitmaps first
        let state = SessionStateBuilder::new()
            .with_default_features()
            .with_physical_optimizer_rule(Arc::new(crate::join_key_bitmap::JoinKeyBitmaps))
            .with_physical_optimizer_rule(Arc::new(JoinFiltersInScans::default()))
            .build();
        let ctx = parquet_context(state, &dir, &["big", "small"]).await;
        let joined =
            |key: &str| format!("SELECT sum(b.v) AS s FROM big b JOIN small s ON b.{key} = s.{key} WHERE s.tag = 'x'");
        let bitmaps = |plan: &Arc<dyn ExecutionPlan>| {
            crate::test_support::each_node::<CollectBuildKeys, _>(plan, |_| Some(())).len()
        };
        // keys 7, 107, …, 907 ten times each: v = k + 1000 j
        let expected: i64 = (0..10).flat_map(|j| (0..10).map(move |m| 7 + 100 * m + 1000 * j)).sum();
        let (on_integers, sum) = plan_and_number(&ctx, &joined("k")).await;
        assert_eq!(bitmaps(&on_integers), 1);
        assert_eq!(pushdown(&on_integers), vec![false, false], "a scan decodes with a filter its bitmap serves");
        assert_eq!(sum, expected);
        // with a TopK's filter beside the join's in the scan (TPC-H q18's orders)
        let top = "SELECT b.v FROM big b JOIN small s ON b.k = s.k WHERE s.tag = 'x' ORDER BY b.v DESC LIMIT 3";
        let plan = ctx.sql(top).await.unwrap().create_physical_plan().await.unwrap();
        let batches = datafusion::physical_plan::collect(Arc::clone(&plan), ctx.task_ctx()).await.unwrap();
        let dynamic = crate::test_support::each_node::<DataSourceExec, _>(&plan, |exec| {
            let (_, parquet) = exec.downcast_to_file_source::<ParquetSource>()?;
            Some(
                split_conjunction(&parquet.filter()?)
                    .iter()
                    .filter(|p| p.to_string().contains("DynamicFilter"))
                    .count(),
            )
        });
        assert_eq!(dynamic.iter().max(), Some(&2), "the join's and the TopK's filters in big's scan");
        assert_eq!(pushdown(&plan), vec![false, false]);
        let values =
            batches.iter().flat_map(|b| b.column(0).as_any().downcast_ref::<Int64Array>().unwrap().values().to_vec());
        assert_eq!(values.collect::<Vec<_>>(), vec![9907, 9807, 9707]);
        let (on_text, sum) = plan_and_number(&ctx, &joined("ks")).await;
        assert_eq!(bitmaps(&on_text), 0);
        assert!(pushdown(&on_text).contains(&true), "the probe side's scan decodes every row");
        assert_eq!(sum, expected);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// q20's shape: a scan with a predicate of its own, grouped, then joined with the few keys
    /// that matter. The filter above the scan applies the join's filter after its own predicate,
    /// so the aggregate groups only the joined key's rows; a filter that keeps half the rows
    /// steps aside. Both answer what the data says.
    #[tokio::test]
    async fn rows_an_aggregate_would_group_for_a_join_that_drops_them_are_dropped_first() {
        let dir = scratch_dir("join-filters-aggregate");
        let n = 1_200_000i64;
        write_big_and_small(&dir, n);
        let ctx = parquet_context(rule_state(), &dir, &["big", "small"]).await;
        let run = async |filter: &str| {
            let sql = format!(
                "SELECT sum(t.total) FROM small s JOIN (SELECT k, sum(v) AS total FROM big WHERE v < 1100000 GROUP BY k) t \
                 ON s.k = t.k WHERE {filter}"
            );
            let (plan, sum) = run_plan(&ctx, &sql).await;
            // the filter over big's scan: whether its join filter stepped aside, and the rows it passed
            let filters = crate::test_support::each_node::<FilterExec, _>(&plan, |filter| {
                filter.input().downcast_ref::<DataSourceExec>()?;
                let aside: Vec<bool> = split_conjunction(filter.predicate())
                    .into_iter()
                    .filter_map(|part| part.downcast_ref::<Selective>().map(Selective::stepped_aside))
                    .collect();
                Some((aside, filter.metrics()?.output_rows()?))
            });
            (filters, sum)
        };
        // v = k + 1000 j for j in 0..1200; v < 1.1 M keeps j < 1100
        let (few, sum) = run("s.tag = 'x'").await;
        assert_eq!(few, vec![(vec![false], 1100)], "the aggregate saw rows of other keys");
        assert_eq!(sum, (0..1100).map(|j| 7 + 1000 * j).sum::<i64>());
        // the same join on the side another join builds from: its route still finds the aggregate
        let sql = "SELECT count(*) FROM big b WHERE b.k IN (SELECT s.k FROM small s JOIN \
                   (SELECT k, sum(v) AS total FROM big WHERE v < 1100000 GROUP BY k) t ON s.k = t.k WHERE s.tag = 'x')";
        let (plan, count) = run_plan(&ctx, sql).await;
        assert_eq!(count, 1200);
        let passed = crate::test_support::each_node::<FilterExec, _>(&plan, |filter| {
            filter.input().downcast_ref::<DataSourceExec>()?;
            filter.metrics()?.output_rows()
        });
        assert_eq!(passed, vec![1100], "{}", datafusion::physical_plan::displayable(plan.as_ref()).indent(false));
        let (most, sum) = run("s.half = 'even'").await;
        assert_eq!(most.len(), 1);
        assert_eq!(most[0].0, vec![true], "the filter keeping half the rows kept filtering");
        assert_eq!(sum, (0..1_100_000i64).filter(|v| v % 2 == 0).sum::<i64>());
        let _ = std::fs::remove_dir_all(dir);
    }
}
