//! Join order: a tree of inner hash joins rebuilt so that the joins keeping the fewest rows run
//! first, by the files' row counts and key ranges.
//!
//! DataFusion joins tables in the order the query names them and only swaps the two sides of
//! each join. TPC-H q21 names `supplier, lineitem, orders, nation`: lineitem met the 100 k
//! suppliers and then the 7 M open orders (38 M rows through that join, 3.5 s at SF10), and
//! only then `nation`, which keeps one supplier in 25. Joined first, nation and supplier make a
//! build side of 4 k suppliers whose join filter leaves lineitem's scan 1.5 M rows, and the
//! orders join probes with those. q05's region joins last the same way.
//!
//! The rule takes each cluster of inner equi-joins (through the column-only projections between
//! them), and joins greedily: of the pairs of parts a join condition connects, the pair whose
//! join is estimated to pass on the fewest bytes goes first (of two alike, the one with the
//! smaller side). Bytes, not rows: a join's output is hashed, repartitioned or probed by the joins
//! above it, and a wide table's columns joined early ride through every join after. In TPC-H
//! q10, customer (name, address, comment…) met the 0.6 M orders of the quarter first, and their
//! 0.6 M wide rows made a build side too large to share, so the 15 M lineitem rows were
//! repartitioned to meet them; joined last, customer meets 1.1 M narrow rows. A join's bytes are
//! its rows times the widths of the columns it passes on (each column's bytes over its table's
//! rows), plus what probing costs once the smaller side's hash table outgrows the caches (a few
//! bytes a probing row, see [`probe_cost`]): q05's lineitem met the 2.3 M orders of the year
//! (1.2 s of lookups at SF10) before the 20 k suppliers of the region, which cost half as much
//! a row and leave a fifth of the rows. A join's rows are estimated as `|A| · |B| / domain of
//! the key`, the domain being the values both sides' key columns can hold: with both columns'
//! distinct counts known (ANALYZE), the larger; else the smaller of their integer ranges, each
//! never more than the rows of its table (a primary key's table bounds the foreign key's domain:
//! lineitem's order keys span 60 M values, orders holds 15 M). After each join only the columns
//! still needed are kept. The plan is only changed when the order differs
//! from the query's, and left alone where a part has no row estimate or two parts would be
//! joined without a condition. JoinSelection, after this, still picks each join's build side
//! and mode.

use std::sync::Arc;

use datafusion::common::config::ConfigOptions;
use datafusion::common::{JoinType, NullEquality, Result};
use datafusion::datasource::source::DataSourceExec;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr::expressions::Column;
use datafusion::physical_expr::projection::ProjectionExprs;
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::execution_plan::replace_children_if_necessary;
use datafusion::physical_plan::filter::FilterExec;
use datafusion::physical_plan::joins::{HashJoinExec, PartitionMode};
use datafusion::physical_plan::operator_statistics::StatisticsRegistry;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::repartition::RepartitionExec;

/// The rule; it runs before JoinSelection (see `session::physical_rules`).
#[derive(Debug, Default)]
pub struct JoinOrder;

impl PhysicalOptimizerRule for JoinOrder {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, config: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        if !config.optimizer.join_reordering {
            return Ok(plan);
        }
        rewrite(plan)
    }

    fn name(&self) -> &str {
        "glaux_join_order"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// A column of the cluster: (part, column of that part's output).
type Col = (usize, usize);

/// The domains of a part's key columns (see `estimate`).
type Domains = Vec<(Col, Domain)>;

/// How many values a key column can hold, and whether that is its distinct count (ANALYZE) or
/// only a bound (its integer range, its table's rows).
#[derive(Debug, Clone, Copy)]
struct Domain {
    values: f64,
    counted: bool,
}

/// The join tree over the parts, for comparing orders.
enum Shape {
    Part(usize),
    Join(Box<Shape>, Box<Shape>),
}

impl Shape {
    /// The same string for the same pairs of joins, whichever side each part is on.
    fn canonical(&self) -> String {
        match self {
            Shape::Part(p) => p.to_string(),
            Shape::Join(a, b) => {
                let (a, b) = (a.canonical(), b.canonical());
                if a < b { format!("({a},{b})") } else { format!("({b},{a})") }
            }
        }
    }
}

/// A cluster of inner equi-joins: the plans it joins and its join conditions.
#[derive(Default)]
struct Cluster {
    parts: Vec<Arc<dyn ExecutionPlan>>,
    edges: Vec<(Col, Col)>,
}

/// An inner hash join whose only condition is column equalities (a join with a residual filter,
/// a projection of its own, null-equal or null-aware keys stays one part).
fn plain_inner_join(node: &Arc<dyn ExecutionPlan>) -> Option<&HashJoinExec> {
    let join = node.downcast_ref::<HashJoinExec>()?;
    let plain = *join.join_type() == JoinType::Inner
        && join.filter().is_none()
        && !join.contains_projection()
        && join.null_equality() == NullEquality::NullEqualsNothing
        && !join.null_aware
        && join.on().iter().all(|(l, r)| l.is::<Column>() && r.is::<Column>());
    plain.then_some(join)
}

/// The input columns of a projection that only picks columns.
fn picked_columns(node: &Arc<dyn ExecutionPlan>) -> Option<(Vec<usize>, &Arc<dyn ExecutionPlan>)> {
    let projection = node.downcast_ref::<ProjectionExec>()?;
    let picked: Option<Vec<usize>> =
        projection.expr().iter().map(|e| e.expr.downcast_ref::<Column>().map(Column::index)).collect();
    Some((picked?, projection.input()))
}

/// Whether `node` belongs to a join cluster: a plain inner join, or column picks above one.
fn in_cluster(node: &Arc<dyn ExecutionPlan>) -> bool {
    match picked_columns(node) {
        Some((_, input)) => in_cluster(input),
        None => plain_inner_join(node).is_some(),
    }
}

fn column_index(expr: &Arc<dyn PhysicalExpr>) -> usize {
    expr.downcast_ref::<Column>().map_or(0, Column::index)
}

impl Cluster {
    /// Adds the cluster below `node` (which `in_cluster`): its output as the parts' columns, and
    /// its tree.
    fn add(&mut self, node: &Arc<dyn ExecutionPlan>) -> (Vec<Col>, Shape) {
        if let Some(join) = plain_inner_join(node) {
            let (mut left, left_shape) = self.add_or_part(join.left());
            let (right, right_shape) = self.add_or_part(join.right());
            for (l, r) in join.on() {
                self.edges.push((left[column_index(l)], right[column_index(r)]));
            }
            left.extend(right);
            return (left, Shape::Join(Box::new(left_shape), Box::new(right_shape)));
        }
        let (picked, input) = picked_columns(node).expect("in_cluster");
        let (columns, shape) = self.add(input);
        (picked.into_iter().map(|i| columns[i]).collect(), shape)
    }

    fn add_or_part(&mut self, node: &Arc<dyn ExecutionPlan>) -> (Vec<Col>, Shape) {
        if in_cluster(node) {
            return self.add(node);
        }
        let part = self.parts.len();
        self.parts.push(Arc::clone(node));
        ((0..node.schema().fields().len()).map(|c| (part, c)).collect(), Shape::Part(part))
    }
}

/// `plan` with every join cluster in it reordered where that pays.
fn rewrite(plan: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    if in_cluster(&plan) {
        let mut cluster = Cluster::default();
        let (output, shape) = cluster.add(&plan);
        cluster.parts = cluster.parts.into_iter().map(rewrite).collect::<Result<_>>()?;
        if cluster.parts.len() >= 3
            && let Some(reordered) = reorder(&cluster, &output, &shape, &plan)?
        {
            return Ok(reordered);
        }
        return in_own_order(plan, &mut cluster.parts.into_iter());
    }
    let children = plan.children().into_iter().cloned().map(rewrite).collect::<Result<Vec<_>>>()?;
    replace_children_if_necessary(plan, children)
}

/// A cluster in the query's own order with its parts replaced by `parts` (rewritten), which come
/// in the order `Cluster::add` met them: left to right.
fn in_own_order(
    node: Arc<dyn ExecutionPlan>,
    parts: &mut std::vec::IntoIter<Arc<dyn ExecutionPlan>>,
) -> Result<Arc<dyn ExecutionPlan>> {
    if !in_cluster(&node) {
        return Ok(parts.next().unwrap_or(node));
    }
    let children =
        node.children().into_iter().cloned().map(|child| in_own_order(child, parts)).collect::<Result<Vec<_>>>()?;
    replace_children_if_necessary(node, children)
}

/// A part of the plan being built: its plan, its columns and their widths, estimated rows and its
/// keys' domains.
struct Piece {
    plan: Arc<dyn ExecutionPlan>,
    columns: Vec<Col>,
    /// Bytes per row of each of `columns`.
    widths: Vec<f64>,
    rows: f64,
    domains: Domains,
    shape: Shape,
}

impl Piece {
    fn domain(&self, col: Col) -> Domain {
        let found = self.domains.iter().find(|(c, _)| *c == col).map(|(_, d)| *d);
        let mut domain = found.unwrap_or(Domain { values: self.rows, counted: false });
        if domain.counted {
            // a part holds no more distinct values than rows
            domain.values = domain.values.min(self.rows);
        }
        domain.values = domain.values.max(1.0);
        domain
    }
}

/// The estimated rows of a part and the domain of each of its columns in `keys`: how many values
/// the column can hold — its distinct count when known (ANALYZE), else its integer range, and
/// then never more than the rows of the table under the part's filters (a key is unique in its
/// own table, so a foreign key's domain is bounded by the smaller table).
fn estimate(plan: &Arc<dyn ExecutionPlan>, part: usize, keys: &[Col]) -> Result<Option<(f64, Domains, Vec<f64>)>> {
    // the session's estimates, which size a filter by its columns' distinct counts when known
    let registry = crate::join_statistics::registry();
    let stats = registry.compute_base(plan.as_ref())?;
    let Some(&rows) = stats.num_rows.get_value() else { return Ok(None) };
    let schema = plan.schema();
    let widths =
        (0..schema.fields().len()).map(|c| crate::join_statistics::column_width(&stats, &schema, c) as f64).collect();
    let table = table_rows(plan, &registry)?.unwrap_or(rows) as f64;
    let domains = keys
        .iter()
        .filter(|(p, _)| *p == part)
        .map(|&(p, c)| {
            let column = stats.column_statistics.get(c);
            let counted = column.and_then(|s| s.distinct_count.get_value()).map(|&d| d as f64);
            let ranged = column.and_then(|s| {
                let (min, max) = (s.min_value.get_value()?, s.max_value.get_value()?);
                min.distance(max).map(|d| d as f64 + 1.0)
            });
            let domain = match counted {
                Some(values) => Domain { values, counted: true },
                None => Domain { values: ranged.unwrap_or(table).min(table).max(1.0), counted: false },
            };
            ((p, c), domain)
        })
        .collect();
    Ok(Some((rows as f64, domains, widths)))
}

/// The rows of the table a part reads, below its filters and projections.
fn table_rows(plan: &Arc<dyn ExecutionPlan>, registry: &StatisticsRegistry) -> Result<Option<usize>> {
    let mut node = Arc::clone(plan);
    loop {
        let passes = node.is::<FilterExec>()
            || node.is::<ProjectionExec>()
            || node.is::<RepartitionExec>()
            || node.is::<CoalescePartitionsExec>();
        if !passes {
            break;
        }
        let Some(child) = node.children().first().map(|c| Arc::clone(*c)) else { break };
        node = child;
    }
    if !node.is::<DataSourceExec>() {
        return Ok(None);
    }
    Ok(registry.compute_base(node.as_ref())?.num_rows.get_value().copied())
}

/// The cluster joined greedily, or None when that is the query's own order or cannot be
/// estimated.
fn reorder(
    cluster: &Cluster,
    output: &[Col],
    shape: &Shape,
    root: &Arc<dyn ExecutionPlan>,
) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let keys: Vec<Col> = cluster.edges.iter().flat_map(|(a, b)| [*a, *b]).collect();
    let mut pieces = vec![];
    for (part, plan) in cluster.parts.iter().enumerate() {
        let Some((rows, domains, widths)) = estimate(plan, part, &keys)? else { return Ok(None) };
        let columns = (0..plan.schema().fields().len()).map(|c| (part, c)).collect();
        pieces.push(Piece { plan: Arc::clone(plan), columns, widths, rows, domains, shape: Shape::Part(part) });
    }
    let mode = root_mode(root);
    while pieces.len() > 1 {
        // the connected pair whose join passes on the fewest bytes
        let mut best: Option<(f64, f64, f64, usize, usize)> = None;
        for i in 0..pieces.len() {
            for j in i + 1..pieces.len() {
                let (a, b) = (&pieces[i], &pieces[j]);
                let Some(rows) = joined_rows(a, b, &cluster.edges) else { continue };
                let bytes = rows * passed_width(a, b, output, &cluster.edges) + probe_cost(a.rows, b.rows);
                // of two joins estimated alike, the one with the smaller side: its hash table
                // is cheaper and its join filter sharper
                let smaller = a.rows.min(b.rows);
                if best.is_none_or(|(y, _, s, ..)| bytes < y * 0.99 || (bytes <= y * 1.01 && smaller < s)) {
                    best = Some((bytes, rows, smaller, i, j));
                }
            }
        }
        let Some((_, rows, _, i, j)) = best else { return Ok(None) };
        let b = pieces.remove(j);
        let a = pieces.remove(i);
        // the smaller side first; JoinSelection decides the build side again from its statistics
        let (a, b) = if a.rows <= b.rows { (a, b) } else { (b, a) };
        let joined = join(a, b, rows, &cluster.edges, mode)?;
        pieces.push(narrow(joined, output, &cluster.edges)?);
    }
    let piece = pieces.pop().expect("one piece");
    if piece.shape.canonical() == shape.canonical() {
        return Ok(None);
    }
    // the cluster's own columns, in its order and with its names
    let schema = root.schema();
    let mut picks = vec![];
    for (field, col) in schema.fields().iter().zip(output) {
        let Some(index) = piece.columns.iter().position(|c| c == col) else { return Ok(None) };
        picks.push((Arc::new(Column::new(field.name(), index)) as Arc<dyn PhysicalExpr>, field.name().clone()));
    }
    let plan: Arc<dyn ExecutionPlan> = Arc::new(ProjectionExec::try_new(picks, piece.plan)?);
    let same_types = plan.schema().fields().iter().zip(schema.fields()).all(|(a, b)| a.data_type() == b.data_type());
    if !same_types {
        return Ok(None);
    }
    Ok(Some(plan))
}

/// What probing a join's larger side costs beyond the bytes it passes on, counted in bytes:
/// nothing while the smaller side's hash table is small enough to stay in the caches, else
/// [`PROBE_BYTES`] for every probing row, each of which then waits on memory.
fn probe_cost(a: f64, b: f64) -> f64 {
    let (build, probe) = if a <= b { (a, b) } else { (b, a) };
    if build <= CACHED_BUILD_ROWS { 0.0 } else { probe * PROBE_BYTES }
}

/// The build rows up to which probing costs about the same whatever the build side's size: at
/// TPC-H SF10, 11 ns a lineitem row against 20 k suppliers, 20 ns against 2.3 M orders.
const CACHED_BUILD_ROWS: f64 = 1_000_000.0;

/// A probing row's cost against a table past the caches, as bytes passed on: about a key and
/// its hash moved once more.
const PROBE_BYTES: f64 = 8.0;

/// The mode the query's joins were planned with (JoinSelection settles it later).
fn root_mode(root: &Arc<dyn ExecutionPlan>) -> PartitionMode {
    match picked_columns(root) {
        Some((_, input)) => root_mode(input),
        None => plain_inner_join(root).map_or(PartitionMode::Auto, |j| *j.partition_mode()),
    }
}

/// The conditions joining `a` and `b`, each as (column of a, column of b).
fn conditions(a: &Piece, b: &Piece, edges: &[(Col, Col)]) -> Vec<(Col, Col)> {
    edges
        .iter()
        .filter_map(|&(x, y)| {
            if a.columns.contains(&x) && b.columns.contains(&y) {
                Some((x, y))
            } else if a.columns.contains(&y) && b.columns.contains(&x) {
                Some((y, x))
            } else {
                None
            }
        })
        .collect()
}

/// Bytes per row of `a ⋈ b` once narrowed: the widths of the columns it passes on.
fn passed_width(a: &Piece, b: &Piece, output: &[Col], edges: &[(Col, Col)]) -> f64 {
    let inside = |c: &Col| a.columns.contains(c) || b.columns.contains(c);
    let columns = a.columns.iter().zip(&a.widths).chain(b.columns.iter().zip(&b.widths));
    columns.filter(|(c, _)| still_needed(c, &inside, output, edges)).map(|(_, w)| w).sum::<f64>().max(1.0)
}

/// Whether column `c` of a piece (whose columns `inside` tells) is needed above it: it is in the
/// cluster's output, or a condition still to join on reads it.
fn still_needed(c: &Col, inside: &dyn Fn(&Col) -> bool, output: &[Col], edges: &[(Col, Col)]) -> bool {
    output.contains(c) || edges.iter().any(|(x, y)| (x == c && !inside(y)) || (y == c && !inside(x)))
}

/// The estimated rows of `a ⋈ b`, None when no condition joins them.
fn joined_rows(a: &Piece, b: &Piece, edges: &[(Col, Col)]) -> Option<f64> {
    let on = conditions(a, b, edges);
    // Two distinct counts: the smaller side's values are taken to be among the larger's, as
    // estimators do (so a filtered side's fewer keys do not shrink the domain). A bound, on
    // either side: the values both sides can hold, the smaller bound.
    let keys = on
        .iter()
        .map(|&(x, y)| match (a.domain(x), b.domain(y)) {
            (d, e) if d.counted && e.counted => d.values.max(e.values),
            (d, e) => d.values.min(e.values),
        })
        .reduce(f64::max)?;
    Some(a.rows * b.rows / keys)
}

/// `a ⋈ b` on their conditions, keeping only the columns the query still needs.
fn join(a: Piece, b: Piece, rows: f64, edges: &[(Col, Col)], mode: PartitionMode) -> Result<Piece> {
    let on = conditions(&a, &b, edges)
        .into_iter()
        .map(|(x, y)| {
            let left = column_of(&a, x);
            let right = column_of(&b, y);
            (left, right)
        })
        .collect();
    let joined = HashJoinExec::try_new(
        Arc::clone(&a.plan),
        Arc::clone(&b.plan),
        on,
        None,
        &JoinType::Inner,
        None,
        mode,
        NullEquality::NullEqualsNothing,
        false,
    )?;
    let columns: Vec<Col> = a.columns.iter().chain(&b.columns).copied().collect();
    let widths = a.widths.iter().chain(&b.widths).copied().collect();
    let domains = a.domains.iter().chain(&b.domains).copied().collect();
    let shape = Shape::Join(Box::new(a.shape), Box::new(b.shape));
    Ok(Piece { plan: Arc::new(joined), columns, widths, rows, domains, shape })
}

/// `piece` with only the columns the query still needs: its output's and those of conditions
/// still to join on.
fn narrow(mut piece: Piece, output: &[Col], edges: &[(Col, Col)]) -> Result<Piece> {
    let inside = |c: &Col| piece.columns.contains(c);
    let mut keep: Vec<usize> =
        (0..piece.columns.len()).filter(|&i| still_needed(&piece.columns[i], &inside, output, edges)).collect();
    if keep.len() == piece.columns.len() {
        return Ok(piece);
    }
    if keep.is_empty() {
        // a join whose rows alone are asked for (count(*)) still passes a column up
        keep.push(0);
    }
    let picks = ProjectionExprs::from_indices(&keep, &piece.plan.schema());
    piece.plan = Arc::new(ProjectionExec::try_new(picks.iter().cloned(), piece.plan)?);
    piece.columns = keep.iter().map(|&i| piece.columns[i]).collect();
    piece.widths = keep.iter().map(|&i| piece.widths[i]).collect();
    Ok(piece)
}

fn column_of(piece: &Piece, col: Col) -> Arc<dyn PhysicalExpr> {
    let index = piece.columns.iter().position(|c| *c == col).expect("a column of the piece");
    Arc::new(Column::new(piece.plan.schema().field(index).name(), index))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{each_node, parquet_context, plan_and_number, scratch_dir, write_parquet};
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::execution::SessionStateBuilder;
    use datafusion::physical_optimizer::optimizer::PhysicalOptimizer;
    use datafusion::physical_plan::displayable;

    fn state(reorder: bool) -> datafusion::execution::SessionState {
        let mut rules = PhysicalOptimizer::new().rules;
        if reorder {
            rules.insert(0, Arc::new(JoinOrder));
        }
        SessionStateBuilder::new().with_default_features().with_physical_optimizer_rules(rules).build()
    }

    /// The files each hash join of `plan` reads below it, innermost join first.
    fn joins(plan: &Arc<dyn ExecutionPlan>) -> Vec<Vec<String>> {
        use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
        let mut found = vec![];
        plan.apply(|node| {
            if node.is::<HashJoinExec>() {
                let mut files = each_node::<DataSourceExec, _>(node, |scan| {
                    let (config, _) =
                        scan.downcast_to_file_source::<datafusion::datasource::physical_plan::ParquetSource>()?;
                    let file = config.file_groups.iter().flat_map(|g| g.files()).next()?;
                    file.object_meta.location.filename().map(String::from)
                });
                files.sort();
                found.push(files);
            }
            Ok(TreeNodeRecursion::Continue)
        })
        .unwrap();
        found.sort_by_key(Vec::len);
        found
    }

    /// `big` (2 M rows) joins `mid` (1.5 M, three quarters asked for) and `small` (1 000, nine
    /// tenths asked for). Joining mid first passes on fewer rows, but probes with all of big a
    /// hash table of over a million rows; small first probes that table with nine tenths of them.
    #[tokio::test]
    async fn a_hash_table_past_the_caches_is_probed_by_fewer_rows() {
        let dir = scratch_dir("join-order-probes");
        let write = |name: &str, columns: Vec<(&str, Arc<dyn datafusion::arrow::array::Array>)>| {
            write_parquet(&dir.join(format!("{name}.parquet")), columns, false)
        };
        let numbers = |n: i64, f: fn(i64) -> i64| Arc::new(Int64Array::from_iter_values((0..n).map(f))) as _;
        write("big", vec![("o", numbers(2_000_000, |i| i % 1_500_000)), ("s", numbers(2_000_000, |i| i % 1000))]);
        write("mid", vec![("o", numbers(1_500_000, |i| i)), ("d", numbers(1_500_000, |i| i % 100))]);
        write("small", vec![("s", numbers(1000, |i| i))]);
        let tables = ["big", "mid", "small"];
        let ctx = parquet_context(state(true), &dir, &tables).await;
        let sql = "SELECT count(*) FROM big b JOIN mid m ON b.o = m.o JOIN small s ON b.s = s.s \
                   WHERE m.d < 75 AND s.s < 900";
        let (plan, count) = plan_and_number(&ctx, sql).await;
        assert_eq!(joins(&plan)[0], ["big.parquet", "small.parquet"]);
        // big's row i is kept when i % 1 500 000 % 100 < 75 and i % 1000 < 900
        let expected = (0..2_000_000i64).filter(|i| i % 1_500_000 % 100 < 75 && i % 1000 < 900).count();
        assert_eq!(count, expected as i64);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// `fact` (200 k rows) names `mid` (10 k), which names `tiny` (100), where one tiny row is
    /// asked for. Named in that order, fact meets all of mid first; reordered, mid meets the one
    /// tiny row first and fact is probed with the 100 mid rows left. Same answer both ways; a
    /// query already in the best order keeps its plan.
    #[tokio::test]
    async fn the_join_that_keeps_fewest_rows_runs_first() {
        let dir = scratch_dir("join-order");
        let write = |name: &str, columns: Vec<(&str, Arc<dyn datafusion::arrow::array::Array>)>| {
            write_parquet(&dir.join(format!("{name}.parquet")), columns, false)
        };
        write(
            "fact",
            vec![
                ("m", Arc::new(Int64Array::from_iter_values((0..200_000).map(|i| i % 10_000)))),
                ("v", Arc::new(Int64Array::from_iter_values(0..200_000))),
            ],
        );
        write(
            "mid",
            vec![
                ("m", Arc::new(Int64Array::from_iter_values(0..10_000))),
                ("t", Arc::new(Int64Array::from_iter_values((0..10_000).map(|i| i % 100)))),
            ],
        );
        write(
            "tiny",
            vec![
                ("t", Arc::new(Int64Array::from_iter_values(0..100))),
                ("tag", Arc::new(StringArray::from_iter_values((0..100).map(|i| if i == 7 { "x" } else { "y" })))),
            ],
        );
        let tables = ["fact", "mid", "tiny"];
        let (reordered, plain) =
            (parquet_context(state(true), &dir, &tables).await, parquet_context(state(false), &dir, &tables).await);
        let named = "SELECT sum(f.v) FROM fact f JOIN mid m ON f.m = m.m JOIN tiny t ON m.t = t.t WHERE t.tag = 'x'";
        let (plan, sum) = plan_and_number(&reordered, named).await;
        let (plain_plan, plain_sum) = plan_and_number(&plain, named).await;
        assert_eq!(joins(&plain_plan)[0], ["fact.parquet", "mid.parquet"], "the query's own order");
        assert_eq!(joins(&plan)[0], ["mid.parquet", "tiny.parquet"], "{}", displayable(plan.as_ref()).indent(false));
        // m = 7 + 100 i holds t = 7; fact's v = m + 10 000 j
        let expected: i64 = (0..100).flat_map(|i| (0..20).map(move |j| 7 + 100 * i + 10_000 * j)).sum();
        assert_eq!((sum, plain_sum), (expected, expected));
        let best = "SELECT sum(f.v) FROM tiny t JOIN mid m ON m.t = t.t JOIN fact f ON f.m = m.m WHERE t.tag = 'x'";
        let (plan, sum) = plan_and_number(&reordered, best).await;
        let (plain_plan, _) = plan_and_number(&plain, best).await;
        assert_eq!(
            displayable(plan.as_ref()).indent(false).to_string(),
            displayable(plain_plan.as_ref()).indent(false).to_string()
        );
        assert_eq!(sum, expected);
        let _ = std::fs::remove_dir_all(dir);
    }

    /// `wide` (10 k rows with a 200-byte payload) is named first and `mid` (5 k) second: their
    /// join is estimated at fewer rows (10 k) than `mid`'s with `fact` (20 k), but carries the
    /// payload. By bytes, `mid` meets `fact` first and `wide` joins last, as TPC-H q10's customer
    /// now does. Same answer both ways.
    #[tokio::test]
    async fn a_wide_table_joins_after_the_narrow_ones() {
        let dir = scratch_dir("join-order-wide");
        let write = |name: &str, columns: Vec<(&str, Arc<dyn datafusion::arrow::array::Array>)>| {
            write_parquet(&dir.join(format!("{name}.parquet")), columns, false)
        };
        write(
            "wide",
            vec![
                ("k", Arc::new(Int64Array::from_iter_values(0..10_000))),
                ("payload", Arc::new(StringArray::from_iter_values((0..10_000).map(|i| format!("{i:0>200}"))))),
            ],
        );
        write(
            "mid",
            vec![
                ("id", Arc::new(Int64Array::from_iter_values(0..5_000))),
                ("wk", Arc::new(Int64Array::from_iter_values((0..5_000).map(|i| i * 2)))),
            ],
        );
        write(
            "fact",
            vec![
                ("mid_id", Arc::new(Int64Array::from_iter_values((0..20_000).map(|i| i % 5_000)))),
                ("v", Arc::new(Int64Array::from_iter_values(0..20_000))),
            ],
        );
        let tables = ["wide", "mid", "fact"];
        let (reordered, plain) =
            (parquet_context(state(true), &dir, &tables).await, parquet_context(state(false), &dir, &tables).await);
        let sql =
            "SELECT sum(f.v + length(w.payload)) FROM wide w JOIN mid m ON m.wk = w.k JOIN fact f ON f.mid_id = m.id";
        let (plan, sum) = plan_and_number(&reordered, sql).await;
        let (plain_plan, plain_sum) = plan_and_number(&plain, sql).await;
        assert_eq!(joins(&plain_plan)[0], ["mid.parquet", "wide.parquet"], "the query's own order");
        assert_eq!(joins(&plan)[0], ["fact.parquet", "mid.parquet"], "{}", displayable(plan.as_ref()).indent(false));
        // every fact row meets one mid row and one wide row, whose payload is 200 bytes
        let expected: i64 = (0..20_000).map(|v| v + 200).sum();
        assert_eq!((sum, plain_sum), (expected, expected));
        let _ = std::fs::remove_dir_all(dir);
    }
}
