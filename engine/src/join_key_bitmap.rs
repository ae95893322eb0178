//! A hash join on an integer key drops, right above the probe side's scan, the rows whose key is
//! not among the build side's keys, looked up in a bitmap over the keys' range.
//!
//! The join's own lookup costs 10–15 ns a row through its hash table, and before it a partitioned
//! join sends every probe row through a repartition. TPC-H's joins of lineitem with a few weeks of
//! orders (q04, q10; a year in q05) or with a market segment's orders (q03) probe 15–60 M rows at
//! SF10 of which 4–15% match. DataFusion's own filter for the probe side is the join's hash table
//! again (41 ns a row in a scan, see `join_filters`), so glaux uses it only where it keeps under
//! 1% of the rows. A bitmap with one bit per value between the smallest and the largest build key
//! is tested in a nanosecond or two a row and costs an eighth of a byte per value: 7.5 MB for the
//! 60 M order keys of SF10. At SF10 (whole `glaux query` processes, medians of 3 alternating
//! runs with and without): q07 0.76×, q12 0.81×, q19 0.83×, q21 0.84×, q10 0.85×, q04 0.88×,
//! q03 0.90×, the 22 queries 41.3 → 38.1 s.
//!
//! [`CollectBuildKeys`] sits on the join's build side and sets each key's bit as the batches go by
//! into the hash table; once every build partition has ended, the bitmap is complete and
//! [`InBuildKeys`], a condition of the filter on the probe side, starts dropping rows. Until then
//! (a partitioned join whose other partitions are still building) it keeps every row, as does a
//! key range wider than [`MAX_BITS`] or one the memory pool cannot hold: the join drops what it
//! must in any case. A bitmap that drops under 5% of a window of 64 K rows is tested on one batch
//! in 16 only, until a window of those drops more (see [`Sieve`]). The filter goes where the
//! probe key comes from a scan, through filters, projections, repartitions, the sides of inner
//! joins (a row whose key the outer join's build side lacks is dropped by that join whichever
//! inner join it came through) and aggregates grouping by the key (TPC-H q02's semi join with the
//! cheapest offer of each of its 460 parts then groups those parts' offers alone, not all 117 k
//! European parts' at SF1). Of a join on several
//! keys, the first integer key whose probe column comes from a scan is tested: a row without a
//! match on one key has none on all (q05's lineitem rows meet the year's orders on order key and
//! nation; tested on order key, 12 M of them are cut to 1.8 M before the supplier join).
//!
//! Only joins that drop probe rows without a match qualify (inner, left, left semi, left anti,
//! right semi; not a mark join, whose mark may depend on a NULL probe key), and only where NULL
//! keys match nothing (not a NOT IN's null-aware anti join). A plan spread over workers
//! does without it (the codec does not know the nodes), as does a recursive query, whose build
//! sides change from one round to the next. `GLAUX_NO_JOIN_KEY_BITMAPS=1` turns it off, to measure.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray};
use datafusion::arrow::buffer::BooleanBuffer;
use datafusion::arrow::datatypes::{DataType, Int32Type, Int64Type, Schema};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::tree_node::{Transformed, TreeNode, TreeNodeRecursion};
use datafusion::common::{DataFusionError, JoinType, NullEquality, Result, ScalarValue};
use datafusion::config::ConfigOptions;
use datafusion::datasource::source::DataSourceExec;
use datafusion::execution::memory_pool::{MemoryConsumer, MemoryReservation};
use datafusion::execution::{SendableRecordBatchStream, TaskContext};
use datafusion::logical_expr::ColumnarValue;
use datafusion::physical_expr::expressions::{Column, InListExpr, Literal};
use datafusion::physical_expr::{PhysicalExpr, conjunction, split_conjunction};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::aggregates::AggregateExec;
use datafusion::physical_plan::coalesce_partitions::CoalescePartitionsExec;
use datafusion::physical_plan::execution_plan::replace_children_if_necessary;
use datafusion::physical_plan::filter::{FilterExec, FilterExecBuilder};
use datafusion::physical_plan::joins::HashJoinExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::recursive_query::RecursiveQueryExec;
use datafusion::physical_plan::repartition::RepartitionExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use datafusion::physical_plan::{DisplayAs, DisplayFormatType, ExecutionPlan, PlanProperties};
use futures::StreamExt;

/// The widest key range a bitmap covers: 2^28 values, 32 MiB (TPC-H's order keys reach that at
/// SF45). Wider build sides keep every probe row.
pub const MAX_BITS: u64 = 1 << 28;

/// The rule. It runs after the rule that orders filters (`cheap_conjuncts`), so that the
/// bitmap's test comes first in the filter it joins, and before `join_filters`, which leaves the
/// filters of the joins given a bitmap here to it.
#[derive(Debug, Default)]
pub struct JoinKeyBitmaps;

impl PhysicalOptimizerRule for JoinKeyBitmaps {
    fn optimize(&self, plan: Arc<dyn ExecutionPlan>, options: &ConfigOptions) -> Result<Arc<dyn ExecutionPlan>> {
        if !options.optimizer.enable_join_dynamic_filter_pushdown
            || std::env::var_os("GLAUX_NO_JOIN_KEY_BITMAPS").is_some()
            || recursive(&plan)?
        {
            return Ok(plan);
        }
        plan.transform_up(|node| {
            let Some(join) = node.downcast_ref::<HashJoinExec>() else { return Ok(Transformed::no(node)) };
            // of several keys, the first whose probe column comes from a scan: a probe row
            // without a match on one key has none on all
            for (key, probe_key) in bitmap_keys(join) {
                let keys = Arc::new(BuildKeys::default());
                let Some(probe) = filtered(join.right(), probe_key, &keys)? else { continue };
                let build = Arc::new(CollectBuildKeys::new(Arc::clone(join.left()), key, keys));
                return Ok(Transformed::yes(replace_children_if_necessary(node, vec![build, probe])?));
            }
            Ok(Transformed::no(node))
        })
        .map(|t| t.data)
    }

    fn name(&self) -> &str {
        "glaux_join_key_bitmaps"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// Whether `plan` holds a recursive query.
fn recursive(plan: &Arc<dyn ExecutionPlan>) -> Result<bool> {
    let mut found = false;
    plan.apply(|node| {
        found |= node.is::<RecursiveQueryExec>();
        Ok(if found { TreeNodeRecursion::Stop } else { TreeNodeRecursion::Continue })
    })?;
    Ok(found)
}

/// The build side's key expression and the probe side's key column (its index in the probe
/// side's output) of each integer key of a join that qualifies (see the module's comment).
fn bitmap_keys(join: &HashJoinExec) -> Vec<(Arc<dyn PhysicalExpr>, usize)> {
    let drops_unmatched_probe_rows = matches!(
        join.join_type(),
        JoinType::Inner | JoinType::Left | JoinType::LeftSemi | JoinType::LeftAnti | JoinType::RightSemi
    );
    if !drops_unmatched_probe_rows
        || join.null_equality() != NullEquality::NullEqualsNothing
        || join.null_aware
        || join.left().is::<CollectBuildKeys>()
    {
        return vec![];
    }
    let integer_key = |(build, probe): &(Arc<dyn PhysicalExpr>, Arc<dyn PhysicalExpr>)| {
        let probe = probe.downcast_ref::<Column>()?;
        let build_type = build.data_type(&join.left().schema()).ok()?;
        let probe_type = probe.data_type(&join.right().schema()).ok()?;
        (build_type == probe_type && matches!(probe_type, DataType::Int32 | DataType::Int64))
            .then(|| (Arc::clone(build), probe.index()))
    };
    join.on().iter().filter_map(integer_key).collect()
}

/// `node` with the bitmap's test applied above the scan its column `key` comes from, if it
/// comes from one through nodes that keep each row as it is (see the module's comment).
fn filtered(
    node: &Arc<dyn ExecutionPlan>,
    key: usize,
    keys: &Arc<BuildKeys>,
) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let test = |schema: &Schema, index: usize| -> Arc<dyn PhysicalExpr> {
        let column = Column::new(schema.field(index).name(), index);
        Arc::new(InBuildKeys { key: Arc::new(column), keys: Arc::clone(keys) })
    };
    if node.is::<DataSourceExec>() {
        let filter = FilterExec::try_new(test(&node.schema(), key), Arc::clone(node))?;
        return Ok(Some(Arc::new(filter)));
    }
    if let Some(filter) = node.downcast_ref::<FilterExec>() {
        let key = filter.projection().as_ref().map_or(key, |p| p[key]);
        let input = filter.input();
        if input.is::<DataSourceExec>() {
            // the cheapest condition of all, first
            let conditions = std::iter::once(test(&input.schema(), key))
                .chain(split_conjunction(filter.predicate()).into_iter().cloned());
            let filter = FilterExecBuilder::from(filter).with_predicate(conjunction(conditions)).build()?;
            return Ok(Some(Arc::new(filter)));
        }
        return below(node, 0, input, key, keys);
    }
    if let Some(projection) = node.downcast_ref::<ProjectionExec>() {
        let Some(column) = projection.expr()[key].expr.downcast_ref::<Column>() else { return Ok(None) };
        return below(node, 0, projection.input(), column.index(), keys);
    }
    if node.is::<RepartitionExec>() || node.is::<CoalescePartitionsExec>() || node.is::<CollectBuildKeys>() {
        let child = Arc::clone(node.children()[0]);
        return below(node, 0, &child, key, keys);
    }
    // a group's rows all share its key: dropping the rows of keys the join lacks drops exactly
    // those groups, the others unchanged (not with grouping sets, whose rolled-up groups take
    // every row, nor with a limit on the groups)
    if let Some(aggregate) = node.downcast_ref::<AggregateExec>()
        && aggregate.group_expr().is_single()
        && aggregate.limit_options().is_none()
        && let Some((group, _)) = aggregate.group_expr().expr().get(key)
    {
        let Some(column) = group.downcast_ref::<Column>() else { return Ok(None) };
        return below(node, 0, aggregate.input(), column.index(), keys);
    }
    if let Some(join) = node.downcast_ref::<HashJoinExec>()
        && *join.join_type() == JoinType::Inner
    {
        let key = join.projection.as_ref().map_or(key, |p| p[key]);
        let left = join.left().schema().fields().len();
        return match key < left {
            true => below(node, 0, join.left(), key, keys),
            false => below(node, 1, join.right(), key - left, keys),
        };
    }
    Ok(None)
}

/// `node` with its child `i` (`child`) filtered as [`filtered`] does, if it can be.
fn below(
    node: &Arc<dyn ExecutionPlan>,
    i: usize,
    child: &Arc<dyn ExecutionPlan>,
    key: usize,
    keys: &Arc<BuildKeys>,
) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let Some(child) = filtered(child, key, keys)? else { return Ok(None) };
    let mut children: Vec<_> = node.children().into_iter().cloned().collect();
    children[i] = child;
    Ok(Some(replace_children_if_necessary(Arc::clone(node), children)?))
}

/// A set of integer keys as one bit per value, over a range that grows as keys arrive. It covers
/// `base .. base + 64 * words.len()`; `base` is a multiple of 64.
#[derive(Debug, Default, PartialEq, Eq, Hash)]
struct KeyBits {
    base: i64,
    words: Vec<u64>,
}

/// A key range wider than [`MAX_BITS`], or more than the memory pool would give.
struct TooWide;

impl KeyBits {
    /// Makes room for every key in `low ..= high`, growing by at least what it holds (so that
    /// keys arriving in order cost few copies) but never past [`MAX_BITS`]; `reserve` is asked
    /// for the bytes it adds and may refuse them.
    fn cover(&mut self, low: i64, high: i64, reserve: &mut impl FnMut(usize) -> bool) -> Result<(), TooWide> {
        // in words of 64 keys, the high end exclusive
        let (mut low, mut high) = (i128::from(low).div_euclid(64), i128::from(high).div_euclid(64) + 1);
        let held = self.words.len() as i128;
        let held_low = i128::from(self.base) / 64;
        if held > 0 {
            if low >= held_low && high <= held_low + held {
                return Ok(());
            }
            // the keys' words and the held ones, then as much again on the side that grows
            let (need_low, need_high) = (low.min(held_low), high.max(held_low + held));
            let max_words = (MAX_BITS / 64) as i128;
            low = if need_low < held_low { need_low - held } else { need_low };
            high = if need_high > held_low + held { need_high + held } else { need_high };
            if high - low > max_words {
                (low, high) = (need_low, need_high);
            }
        }
        // the words of i64's own range
        let (low, high) = (low.max(i128::from(i64::MIN) / 64), high.min(i128::from(i64::MAX) / 64 + 1));
        if (high - low) as u128 > u128::from(MAX_BITS / 64) {
            return Err(TooWide);
        }
        let len = (high - low) as usize;
        if !reserve((len - self.words.len()) * 8) {
            return Err(TooWide);
        }
        let mut words = vec![0u64; len];
        if held > 0 {
            let at = (held_low - low) as usize;
            words[at..at + self.words.len()].copy_from_slice(&self.words);
        }
        self.words = words;
        self.base = (low * 64) as i64;
        Ok(())
    }

    fn insert(&mut self, key: i64) {
        let offset = key.wrapping_sub(self.base) as u64;
        self.words[(offset >> 6) as usize] |= 1 << (offset & 63);
    }

    fn contains(&self, key: i64) -> bool {
        let offset = key.wrapping_sub(self.base) as u64;
        self.words.get((offset >> 6) as usize).is_some_and(|word| word >> (offset & 63) & 1 == 1)
    }

    /// Whether each value of `keys` (Int64 or Int32) is held, whatever the value under a NULL.
    fn test(&self, keys: &ArrayRef) -> Result<BooleanBuffer> {
        match keys.data_type() {
            DataType::Int64 => {
                let values = keys.as_primitive::<Int64Type>().values();
                Ok(BooleanBuffer::collect_bool(values.len(), |i| self.contains(values[i])))
            }
            DataType::Int32 => {
                let values = keys.as_primitive::<Int32Type>().values();
                Ok(BooleanBuffer::collect_bool(values.len(), |i| self.contains(i64::from(values[i]))))
            }
            other => Err(DataFusionError::Internal(format!("a key bitmap tested a key of type {other}"))),
        }
    }

    /// Adds `keys`' values that are not null.
    fn add(&mut self, keys: &ArrayRef, reserve: &mut impl FnMut(usize) -> bool) -> Result<(), TooWide> {
        match keys.data_type() {
            DataType::Int64 => self.add_values(keys.as_primitive::<Int64Type>().iter().flatten(), reserve),
            DataType::Int32 => {
                self.add_values(keys.as_primitive::<Int32Type>().iter().flatten().map(i64::from), reserve)
            }
            _ => Err(TooWide),
        }
    }

    fn add_values(
        &mut self,
        values: impl Iterator<Item = i64> + Clone,
        reserve: &mut impl FnMut(usize) -> bool,
    ) -> Result<(), TooWide> {
        let Some((low, high)) = values.clone().fold(None, |range: Option<(i64, i64)>, v| {
            Some(range.map_or((v, v), |(low, high)| (low.min(v), high.max(v))))
        }) else {
            return Ok(());
        };
        self.cover(low, high, reserve)?;
        values.for_each(|v| self.insert(v));
        Ok(())
    }

    /// Adds every key of `other`.
    fn union(&mut self, other: &KeyBits, reserve: &mut impl FnMut(usize) -> bool) -> Result<(), TooWide> {
        if other.words.is_empty() {
            return Ok(());
        }
        let high = other.base + 64 * (other.words.len() as i64 - 1) + 63;
        self.cover(other.base, high, reserve)?;
        let at = ((other.base - self.base) / 64) as usize;
        for (word, theirs) in self.words[at..].iter_mut().zip(&other.words) {
            *word |= theirs;
        }
        Ok(())
    }
}

/// The build side's keys, shared by the join's build partitions (which fill it) and the filter
/// on its probe side (which reads it once it is complete).
#[derive(Debug, Default)]
pub struct BuildKeys {
    /// The complete bitmap, once every build partition has ended.
    ready: RwLock<Option<Arc<Sieve>>>,
    round: Mutex<Round>,
}

/// One execution of the join's build side.
#[derive(Debug, Default)]
struct Round {
    /// Which execution of the plan this is.
    generation: u64,
    /// The partitions started, and ended, in this round.
    started: Vec<bool>,
    ended: usize,
    /// The partitions' keys as far as they have ended, with the memory they hold.
    merged: Option<(KeyBits, MemoryReservation)>,
    /// A partition's keys did not fit: the filter keeps every row this round.
    too_wide: bool,
    /// The memory of the complete bitmap.
    held: Option<MemoryReservation>,
}

impl BuildKeys {
    fn ready(&self) -> Option<Arc<Sieve>> {
        self.ready.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    /// Whether the bitmap is complete.
    #[cfg(test)]
    pub fn is_ready(&self) -> bool {
        self.ready().is_some()
    }

    fn round(&self) -> std::sync::MutexGuard<'_, Round> {
        self.round.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Build partition `partition` of `partitions` starts; the round it belongs to. A partition
    /// started before means the plan runs again: the keys start over.
    fn start(&self, partition: usize, partitions: usize) -> u64 {
        let mut round = self.round();
        if round.started.len() != partitions || round.started[partition] {
            let generation = round.generation + 1;
            *round = Round { generation, started: vec![false; partitions], ..Round::default() };
            *self.ready.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
        }
        round.started[partition] = true;
        round.generation
    }

    /// A build partition of round `generation` ended with `keys` (None: they did not fit).
    fn end(&self, generation: u64, keys: Option<(KeyBits, MemoryReservation)>) {
        let mut round = self.round();
        if round.generation != generation {
            // a partition of an earlier run of the plan
            return;
        }
        round.ended += 1;
        match (keys, round.merged.take()) {
            (None, _) => round.too_wide = true,
            (Some(keys), None) => round.merged = Some(keys),
            (Some((keys, _)), Some((mut merged, reservation))) => {
                match merged.union(&keys, &mut |bytes| reservation.try_grow(bytes).is_ok()) {
                    Ok(()) => round.merged = Some((merged, reservation)),
                    Err(TooWide) => round.too_wide = true,
                }
            }
        }
        if round.ended == round.started.len() && !round.too_wide {
            let bits = match round.merged.take() {
                Some((bits, reservation)) => {
                    // the memory stays held as long as the bitmap can be read
                    round.held = Some(reservation);
                    bits
                }
                None => KeyBits::default(),
            };
            let sieve = Sieve { bits, ..Sieve::default() };
            *self.ready.write().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(Arc::new(sieve));
        }
    }
}

/// Rows tested before the filter decides whether its test pays (a window of 8 batches).
const WINDOW: u64 = 1 << 16;

/// A bitmap that keeps over 95% of the rows it tests costs about what it saves the join (a
/// lookup of a nanosecond or two a row against a probe of 10–15 ns for one row in twenty or
/// fewer): it is tested on a batch in 16 until a window of those drops more.
const SAMPLED: u64 = 16;

/// A complete bitmap and what testing it has dropped lately, so that a test which drops almost
/// nothing (q09's supplier key, every supplier on the build side) stops costing a lookup a row.
#[derive(Debug, Default)]
struct Sieve {
    bits: KeyBits,
    /// Rows tested and dropped in the current window, batches seen, and whether only a batch
    /// in [`SAMPLED`] is tested. Partitions update them without locking; counts a race loses
    /// only move a decision by a batch.
    tested: AtomicU64,
    dropped: AtomicU64,
    batches: AtomicU64,
    sampling: AtomicBool,
}

impl Sieve {
    /// Whether to test the next batch.
    fn tests(&self) -> bool {
        !self.sampling.load(Ordering::Relaxed) || self.batches.fetch_add(1, Ordering::Relaxed).is_multiple_of(SAMPLED)
    }

    /// Counts a tested batch of `rows` of which `kept` passed; at the end of a window, decides
    /// whether to sample from now on.
    fn record(&self, rows: usize, kept: usize) {
        self.dropped.fetch_add((rows - kept) as u64, Ordering::Relaxed);
        let tested = self.tested.fetch_add(rows as u64, Ordering::Relaxed) + rows as u64;
        if tested >= WINDOW {
            self.tested.store(0, Ordering::Relaxed);
            let dropped = self.dropped.swap(0, Ordering::Relaxed);
            self.sampling.store(dropped * 20 < tested, Ordering::Relaxed);
        }
    }
}

/// A join's build side, passed on as it is, setting the bit of each row's key (`key`) in the
/// join's [`BuildKeys`].
#[derive(Debug)]
pub struct CollectBuildKeys {
    input: Arc<dyn ExecutionPlan>,
    key: Arc<dyn PhysicalExpr>,
    keys: Arc<BuildKeys>,
}

impl CollectBuildKeys {
    pub fn new(input: Arc<dyn ExecutionPlan>, key: Arc<dyn PhysicalExpr>, keys: Arc<BuildKeys>) -> Self {
        Self { input, key, keys }
    }

    /// The keys it collects.
    #[cfg(test)]
    pub fn keys(&self) -> &Arc<BuildKeys> {
        &self.keys
    }
}

impl DisplayAs for CollectBuildKeys {
    fn fmt_as(&self, _: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        write!(f, "CollectBuildKeys: key={}", self.key)
    }
}

impl ExecutionPlan for CollectBuildKeys {
    fn name(&self) -> &str {
        "CollectBuildKeys"
    }

    fn properties(&self) -> &Arc<PlanProperties> {
        self.input.properties()
    }

    fn children(&self) -> Vec<&Arc<dyn ExecutionPlan>> {
        vec![&self.input]
    }

    fn with_new_children(self: Arc<Self>, mut children: Vec<Arc<dyn ExecutionPlan>>) -> Result<Arc<dyn ExecutionPlan>> {
        match (children.pop(), children.is_empty()) {
            (Some(input), true) => Ok(Arc::new(Self::new(input, Arc::clone(&self.key), Arc::clone(&self.keys)))),
            _ => Err(DataFusionError::Internal("CollectBuildKeys has one input".into())),
        }
    }

    fn apply_expressions(
        &self,
        visit: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        visit(&self.key)
    }

    crate::filter_output::passes_rows_on!();

    fn execute(&self, partition: usize, context: Arc<TaskContext>) -> Result<SendableRecordBatchStream> {
        let partitions = self.input.properties().output_partitioning().partition_count();
        let generation = self.keys.start(partition, partitions);
        let input = self.input.execute(partition, Arc::clone(&context))?;
        let schema = input.schema();
        let reservation = MemoryConsumer::new(format!("CollectBuildKeys[{partition}]")).register(context.memory_pool());
        let collecting = Collecting {
            generation,
            key: Arc::clone(&self.key),
            keys: Arc::clone(&self.keys),
            bits: Some((KeyBits::default(), reservation)),
        };
        let batches = futures::stream::try_unfold((input, collecting), |(mut input, mut collecting)| async move {
            match input.next().await.transpose()? {
                Some(batch) => {
                    collecting.add(&batch)?;
                    Ok(Some((batch, (input, collecting))))
                }
                None => {
                    collecting.end();
                    Ok(None)
                }
            }
        });
        Ok(Box::pin(RecordBatchStreamAdapter::new(schema, batches)))
    }
}

/// One build partition's keys as its batches go by.
struct Collecting {
    generation: u64,
    key: Arc<dyn PhysicalExpr>,
    keys: Arc<BuildKeys>,
    /// None once they no longer fit.
    bits: Option<(KeyBits, MemoryReservation)>,
}

impl Collecting {
    fn add(&mut self, batch: &RecordBatch) -> Result<()> {
        let Some((bits, reservation)) = self.bits.as_mut() else { return Ok(()) };
        let keys = self.key.evaluate(batch)?.into_array(batch.num_rows())?;
        if bits.add(&keys, &mut |bytes| reservation.try_grow(bytes).is_ok()).is_err() {
            self.bits = None;
        }
        Ok(())
    }

    fn end(&mut self) {
        self.keys.end(self.generation, self.bits.take());
    }
}

/// Whether a row's key (`key`, a column) is among the build side's keys: true for every row
/// until the bitmap is complete, false for a NULL key.
#[derive(Debug)]
pub struct InBuildKeys {
    key: Arc<dyn PhysicalExpr>,
    keys: Arc<BuildKeys>,
}

impl PhysicalExpr for InBuildKeys {
    fn data_type(&self, _: &Schema) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn nullable(&self, _: &Schema) -> Result<bool> {
        Ok(false)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        let Some(sieve) = self.keys.ready().filter(|sieve| sieve.tests()) else {
            return Ok(ColumnarValue::Scalar(ScalarValue::Boolean(Some(true))));
        };
        let keys = self.key.evaluate(batch)?.into_array(batch.num_rows())?;
        // a NULL key is in no join's build side
        let found = sieve.bits.test(&keys)?;
        let found = match keys.logical_nulls() {
            Some(valid) => &found & valid.inner(),
            None => found,
        };
        sieve.record(found.len(), found.count_set_bits());
        Ok(ColumnarValue::Array(Arc::new(BooleanArray::new(found, None))))
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.key]
    }

    fn with_new_children(self: Arc<Self>, mut children: Vec<Arc<dyn PhysicalExpr>>) -> Result<Arc<dyn PhysicalExpr>> {
        match (children.pop(), children.is_empty()) {
            (Some(key), true) => Ok(Arc::new(Self { key, keys: Arc::clone(&self.keys) })),
            _ => Err(DataFusionError::Internal("a join key bitmap tests one key".into())),
        }
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl fmt::Display for InBuildKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} IN join build keys", self.key)
    }
}

impl PartialEq for InBuildKeys {
    fn eq(&self, other: &Self) -> bool {
        self.key.eq(&other.key) && Arc::ptr_eq(&self.keys, &other.keys)
    }
}

impl Eq for InBuildKeys {}

impl Hash for InBuildKeys {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key.hash(state);
        Arc::as_ptr(&self.keys).hash(state);
    }
}

/// The widest value range a list of integers is looked up in as a bitmap: 2^20 values, 128 KiB,
/// which stays in a core's second-level cache.
const LIST_BITS: u64 = 1 << 20;

/// Lists this long or shorter are left to DataFusion, which compares each value with each of
/// them without a branch (up to 16 64-bit or 32 32-bit values).
const LIST_COMPARED: usize = 32;

/// `key IN (v, …)` over 64- or 32-bit integers, looked up in a bitmap of the values' range.
///
/// DataFusion looks a longer list's values up in a hash set: a join's list of its build keys
/// (`join_filters`) filtering a scan, such as TPC-H q11's 396 German suppliers over the 800 k rows
/// of partsupp, spent an eighth of the query's CPU hashing. A bit test over the range the keys
/// span costs a load and a shift. The answer is the list's own: NULL for a NULL key, else
/// whether the key is a value of the list.
#[derive(Debug)]
pub struct InListBits {
    key: Arc<dyn PhysicalExpr>,
    bits: Arc<KeyBits>,
    values: usize,
}

impl InListBits {
    /// `expr` as a bitmap lookup, when it is a list (not negated) of more than [`LIST_COMPARED`]
    /// 64- or 32-bit integers, none NULL, spanning at most [`LIST_BITS`] values.
    pub fn of(expr: &Arc<dyn PhysicalExpr>, schema: &Schema) -> Option<Arc<dyn PhysicalExpr>> {
        let list = expr.downcast_ref::<InListExpr>()?;
        if list.negated() || list.len() <= LIST_COMPARED {
            return None;
        }
        if !matches!(list.expr().data_type(schema).ok()?, DataType::Int64 | DataType::Int32) {
            return None;
        }
        let values = list
            .list()
            .iter()
            .map(|value| match value.downcast_ref::<Literal>()?.value() {
                ScalarValue::Int64(Some(v)) => Some(*v),
                ScalarValue::Int32(Some(v)) => Some(i64::from(*v)),
                _ => None,
            })
            .collect::<Option<Vec<i64>>>()?;
        let (low, high) = (values.iter().min()?, values.iter().max()?);
        if (i128::from(*high) - i128::from(*low)) as u128 >= u128::from(LIST_BITS) {
            return None;
        }
        let mut bits = KeyBits::default();
        bits.add_values(values.iter().copied(), &mut |_| true).ok()?;
        Some(Arc::new(Self { key: Arc::clone(list.expr()), bits: Arc::new(bits), values: values.len() }))
    }

    /// `expr` with each list in it that [`InListBits::of`] takes replaced.
    pub fn replace_lists(expr: Arc<dyn PhysicalExpr>, schema: &Schema) -> Arc<dyn PhysicalExpr> {
        let replaced = Arc::clone(&expr).transform_up(|e| {
            Ok(match Self::of(&e, schema) {
                Some(bits) => Transformed::yes(bits),
                None => Transformed::no(e),
            })
        });
        replaced.map_or(expr, |t| t.data)
    }
}

impl PhysicalExpr for InListBits {
    fn data_type(&self, _: &Schema) -> Result<DataType> {
        Ok(DataType::Boolean)
    }

    fn nullable(&self, schema: &Schema) -> Result<bool> {
        self.key.nullable(schema)
    }

    fn evaluate(&self, batch: &RecordBatch) -> Result<ColumnarValue> {
        let keys = self.key.evaluate(batch)?.into_array(batch.num_rows())?;
        let found = self.bits.test(&keys)?;
        Ok(ColumnarValue::Array(Arc::new(BooleanArray::new(found, keys.logical_nulls()))))
    }

    fn children(&self) -> Vec<&Arc<dyn PhysicalExpr>> {
        vec![&self.key]
    }

    fn with_new_children(self: Arc<Self>, mut children: Vec<Arc<dyn PhysicalExpr>>) -> Result<Arc<dyn PhysicalExpr>> {
        match (children.pop(), children.is_empty()) {
            (Some(key), true) => Ok(Arc::new(Self { key, bits: Arc::clone(&self.bits), values: self.values })),
            _ => Err(DataFusionError::Internal("a list's bitmap tests one key".into())),
        }
    }

    fn fmt_sql(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{self}")
    }
}

impl PartialEq for InListBits {
    fn eq(&self, other: &Self) -> bool {
        self.key.eq(&other.key) && self.bits == other.bits
    }
}

impl Eq for InListBits {}

impl Hash for InListBits {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.key.hash(state);
        self.bits.hash(state);
    }
}

impl fmt::Display for InListBits {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} IN ({} values, as a bitmap)", self.key, self.values)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{each_node, parquet_context, plan_and_number, scratch_dir, write_parquet};
    use datafusion::arrow::array::{Int32Array, Int64Array, StringArray};
    use datafusion::execution::SessionStateBuilder;
    use datafusion::prelude::SessionConfig;

    fn bits_of(keys: &[i64]) -> std::result::Result<KeyBits, ()> {
        let mut bits = KeyBits::default();
        // one key a batch, so that the range grows at both ends
        for key in keys {
            let array: ArrayRef = Arc::new(Int64Array::from(vec![Some(*key), None]));
            bits.add(&array, &mut |_| true).map_err(|TooWide| ())?;
        }
        Ok(bits)
    }

    /// Keys added in any order, below and above what is held, negative or near i64's ends, are
    /// found, and no other value is.
    #[test]
    fn the_bitmap_holds_exactly_the_keys_added() {
        let keys = [500, 3, 1_000_000, -70, 64, 63, -1, 0, 999_999, 128];
        let bits = bits_of(&keys).unwrap();
        for value in -200..1_000_100 {
            assert_eq!(bits.contains(value), keys.contains(&value), "{value}");
        }
        assert!(!bits.contains(i64::MIN) && !bits.contains(i64::MAX));
        for edge in [[i64::MAX, i64::MAX - 100], [i64::MIN, i64::MIN + 100]] {
            let bits = bits_of(&edge).unwrap();
            assert!(bits.contains(edge[0]) && bits.contains(edge[1]) && !bits.contains(edge[1] + 1));
            assert!(!bits.contains(0));
        }
        // two partitions' keys, merged
        let (mut merged, other) = (bits_of(&[10, 20]).unwrap(), bits_of(&[-5_000, 7]).unwrap());
        merged.union(&other, &mut |_| true).map_err(|TooWide| ()).unwrap();
        let found: Vec<i64> = (-6_000..100).filter(|v| merged.contains(*v)).collect();
        assert_eq!(found, vec![-5_000, 7, 10, 20]);
    }

    /// A bitmap that keeps nearly every row it tests is then tested on a batch in 16, and on every
    /// batch again once a window of those drops more than 5%.
    #[test]
    fn a_test_that_drops_almost_nothing_samples_until_it_drops_more() {
        let sieve = Sieve::default();
        let tested = |n: usize| (0..n).filter(|_| sieve.tests()).count();
        assert_eq!(tested(32), 32);
        // 96% kept over a window
        for _ in 0..8 {
            sieve.record(8192, 8192 * 96 / 100);
        }
        assert_eq!(tested(32), 2);
        // 90% kept over a window of the sampled batches
        for _ in 0..8 {
            sieve.record(8192, 8192 * 90 / 100);
        }
        assert_eq!(tested(32), 32);
    }

    /// A range past MAX_BITS, or memory the pool refuses, gives up rather than grow.
    #[test]
    fn keys_too_far_apart_or_short_of_memory_give_up() {
        assert!(bits_of(&[0, MAX_BITS as i64 + 64]).is_err());
        assert!(bits_of(&[i64::MIN, i64::MAX]).is_err());
        assert!(bits_of(&[0, MAX_BITS as i64 - 1]).is_ok());
        let array: ArrayRef = Arc::new(Int64Array::from(vec![1, 1 << 20]));
        assert!(KeyBits::default().add(&array, &mut |bytes| bytes < 1024).is_err());
    }

    fn list(key: &str, values: Vec<ScalarValue>, negated: bool, schema: &Schema) -> Arc<dyn PhysicalExpr> {
        let key = Arc::new(Column::new_with_schema(key, schema).unwrap());
        let values = values.into_iter().map(|v| Arc::new(Literal::new(v)) as Arc<dyn PhysicalExpr>).collect();
        Arc::new(InListExpr::try_new(key, values, negated, schema).unwrap())
    }

    /// A list of 64- or 32-bit integers as a bitmap answers every row as the list does: true,
    /// false, or NULL for a NULL key; negative values and the ends of the range included.
    #[test]
    fn a_list_of_integers_as_a_bitmap_answers_as_the_list() {
        use datafusion::arrow::datatypes::Field;
        let schema =
            Schema::new(vec![Field::new("k", DataType::Int64, true), Field::new("k32", DataType::Int32, true)]);
        let values: Vec<i64> = (0..100).map(|i| i * i * 37 % 9_973 - 500).chain([-9_000, 700_000]).collect();
        let rows: Vec<Option<i64>> =
            (-10_000..710_000).step_by(7).map(Some).chain(values.iter().map(|v| Some(*v))).chain([None]).collect();
        let batch = RecordBatch::try_new(
            Arc::new(schema.clone()),
            vec![
                Arc::new(Int64Array::from(rows.clone())),
                Arc::new(Int32Array::from(rows.iter().map(|r| r.map(|v| v as i32)).collect::<Vec<_>>())),
            ],
        )
        .unwrap();
        let answer = |expr: &Arc<dyn PhysicalExpr>| {
            let array = expr.evaluate(&batch).unwrap().into_array(batch.num_rows()).unwrap();
            array.as_boolean().iter().collect::<Vec<_>>()
        };
        for (key, scalar) in [
            ("k", (|v| ScalarValue::Int64(Some(v))) as fn(i64) -> ScalarValue),
            ("k32", |v| ScalarValue::Int32(Some(v as i32))),
        ] {
            let plain = list(key, values.iter().map(|v| scalar(*v)).collect(), false, &schema);
            let bits = InListBits::of(&plain, &schema).expect("a bitmap");
            assert!(bits.is::<InListBits>());
            let expected = answer(&plain);
            assert!(expected.iter().filter(|a| **a == Some(true)).count() > values.len());
            assert_eq!(answer(&bits), expected, "{key}");
            assert_eq!(*expected.last().unwrap(), None);
        }
    }

    /// Negated lists, short ones, lists holding a NULL, of other types, or spanning more than
    /// LIST_BITS values stay DataFusion's; inside an expression, a list that qualifies is replaced.
    #[test]
    fn only_long_lists_of_integers_close_together_become_bitmaps() {
        use datafusion::arrow::datatypes::Field;
        use datafusion::logical_expr::Operator;
        use datafusion::physical_expr::expressions::BinaryExpr;
        let schema = Schema::new(vec![Field::new("k", DataType::Int64, true), Field::new("s", DataType::Utf8, true)]);
        let ints = |n: i64, step: i64| (0..n).map(|i| ScalarValue::Int64(Some(i * step))).collect::<Vec<_>>();
        assert!(InListBits::of(&list("k", ints(40, 3), false, &schema), &schema).is_some());
        assert!(InListBits::of(&list("k", ints(40, 3), true, &schema), &schema).is_none());
        assert!(InListBits::of(&list("k", ints(LIST_COMPARED as i64, 3), false, &schema), &schema).is_none());
        let with_null = ints(40, 3).into_iter().chain([ScalarValue::Int64(None)]).collect();
        assert!(InListBits::of(&list("k", with_null, false, &schema), &schema).is_none());
        // 39 steps of `spread` reach past LIST_BITS; of one less, not
        let spread = LIST_BITS as i64 / 39 + 1;
        assert!(InListBits::of(&list("k", ints(40, spread), false, &schema), &schema).is_none());
        assert!(InListBits::of(&list("k", ints(40, spread - 1), false, &schema), &schema).is_some());
        let words = (0..40).map(|i| ScalarValue::Utf8(Some(format!("w{i}")))).collect();
        assert!(InListBits::of(&list("s", words, false, &schema), &schema).is_none());
        let both: Arc<dyn PhysicalExpr> = Arc::new(BinaryExpr::new(
            list("k", ints(40, 3), false, &schema),
            Operator::And,
            list("k", ints(4, 3), false, &schema),
        ));
        let replaced = InListBits::replace_lists(both, &schema);
        let replaced = replaced.downcast_ref::<BinaryExpr>().unwrap();
        assert!(replaced.left().is::<InListBits>() && replaced.right().is::<InListExpr>());
    }

    /// The sum of `v` over `big`'s 1,200 rows with key 7 (see [`write_tables`]).
    fn key_7_sum() -> i64 {
        (0..1200).map(|j| 7 + 1000 * j).sum()
    }

    /// `big`: 1.2 M rows, key `k` = row % 1000 (Int64) and `k32` the same as Int32, `v` = row;
    /// `small`: keys 0..1000 with `tag` 'x' for key 7 alone and `k32` the same key as Int32.
    fn write_tables(dir: &std::path::Path) {
        let n = 1_200_000i64;
        write_parquet(
            &dir.join("big.parquet"),
            vec![
                ("k", Arc::new(Int64Array::from_iter_values((0..n).map(|i| i % 1000)))),
                ("k32", Arc::new(Int32Array::from_iter_values((0..n).map(|i| (i % 1000) as i32)))),
                ("v", Arc::new(Int64Array::from_iter_values(0..n))),
            ],
            false,
        );
        write_parquet(
            &dir.join("small.parquet"),
            vec![
                ("k", Arc::new(Int64Array::from_iter_values(0..1000))),
                ("k32", Arc::new(Int32Array::from_iter_values(0..1000))),
                ("tag", Arc::new(StringArray::from_iter_values((0..1000).map(|i| if i == 7 { "x" } else { "y" })))),
            ],
            false,
        );
    }

    async fn context(dir: &std::path::Path, partitioned: bool, rule: bool) -> datafusion::prelude::SessionContext {
        let mut config = SessionConfig::new().with_target_partitions(4);
        if partitioned {
            // no build side is small enough to be shared: both sides are repartitioned by key
            config.options_mut().optimizer.hash_join_single_partition_threshold = 0;
            config.options_mut().optimizer.hash_join_single_partition_threshold_rows = 0;
        }
        let mut builder = SessionStateBuilder::new().with_config(config).with_default_features();
        if rule {
            builder = builder.with_physical_optimizer_rule(Arc::new(JoinKeyBitmaps));
        }
        parquet_context(builder.build(), dir, &["big", "small"]).await
    }

    /// The rows each bitmap filter of `plan` let through, after it ran.
    fn passed(plan: &Arc<dyn ExecutionPlan>) -> Vec<usize> {
        each_node::<FilterExec, _>(plan, |filter| {
            let tests = split_conjunction(filter.predicate()).iter().any(|c| c.is::<InBuildKeys>());
            tests.then(|| filter.metrics().and_then(|m| m.output_rows()).unwrap_or(0))
        })
    }

    /// A join with key 7 alone on its build side: the probe side's 1.2 M rows are cut to the
    /// 1,200 with that key before the join, shared or partitioned, on Int64 and Int32 keys, on two
    /// keys and on two of which only the second is a column, and the answer is the data's.
    #[tokio::test]
    async fn probe_rows_whose_key_the_build_side_lacks_are_dropped_below_the_join() {
        let dir = scratch_dir("key-bitmap");
        write_tables(&dir);
        let expected = key_7_sum();
        for partitioned in [false, true] {
            let ctx = context(&dir, partitioned, true).await;
            let on =
                ["b.k = s.k", "b.k32 = s.k32", "b.k = s.k AND b.k32 = s.k32", "b.k + 1 = s.k + 1 AND b.k32 = s.k32"];
            for condition in on {
                let sql = format!("SELECT sum(b.v) FROM big b JOIN small s ON {condition} WHERE s.tag = 'x'");
                let (plan, sum) = plan_and_number(&ctx, &sql).await;
                assert_eq!(sum, expected, "{sql}");
                // the plan that ran: plan_and_number plans it again, so run this one
                datafusion::physical_plan::collect(Arc::clone(&plan), ctx.task_ctx()).await.unwrap();
                assert_eq!(passed(&plan), vec![1200], "partitioned {partitioned}, {condition}");
                let ready = each_node::<CollectBuildKeys, _>(&plan, |c| Some(c.keys().is_ready()));
                assert_eq!(ready, vec![true]);
                // a second run of the plan, its state reset as DataFusion requires (the bitmap
                // nodes keep theirs, shared with the probe side's filter), starts its keys over
                // and answers the same
                let reset = datafusion::physical_plan::execution_plan::reset_plan_states(Arc::clone(&plan)).unwrap();
                let again = datafusion::physical_plan::collect(reset, ctx.task_ctx()).await.unwrap();
                let again = again[0].column(0).as_any().downcast_ref::<Int64Array>().unwrap().value(0);
                assert_eq!(again, expected);
            }
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Under a join whose probe side groups by the key, the bitmap drops rows before they are
    /// grouped: the other keys' groups would be dropped whole by the join. Not under grouping
    /// sets (a rolled-up group takes every row) nor a group on an expression of the key.
    #[tokio::test]
    async fn rows_of_groups_the_join_drops_are_dropped_before_they_are_grouped() {
        let dir = scratch_dir("key-bitmap-aggregate");
        write_tables(&dir);
        let expected = key_7_sum();
        for partitioned in [false, true] {
            let ctx = context(&dir, partitioned, true).await;
            for (groups, filtered) in [
                ("SELECT k, sum(v) AS total FROM big GROUP BY k", vec![1200]),
                ("SELECT k, k32, sum(v) AS total FROM big GROUP BY k32, k", vec![1200]),
                ("SELECT k, sum(v) AS total FROM big GROUP BY GROUPING SETS ((k), (k32, k))", vec![]),
                ("SELECT k - 1 AS k, sum(v) AS total FROM big GROUP BY k - 1", vec![]),
            ] {
                let sql = format!(
                    "SELECT sum(g.total) FROM ({groups}) g JOIN small s ON g.k = s.k - {shift} WHERE s.tag = 'x' AND g.k IS NOT NULL",
                    shift = if groups.contains("k - 1") { 1 } else { 0 }
                );
                let (plan, sum) = plan_and_number(&ctx, &sql).await;
                // GROUPING SETS gives key 7 two groups, (7) and (7, 7)
                let times = if groups.contains("GROUPING SETS") { 2 } else { 1 };
                assert_eq!(sum, times * expected, "{sql}");
                datafusion::physical_plan::collect(Arc::clone(&plan), ctx.task_ctx()).await.unwrap();
                assert_eq!(passed(&plan), filtered, "partitioned {partitioned}: {groups}");
            }
        }
        let _ = std::fs::remove_dir_all(dir);
    }

    /// Joins that must keep probe rows without a match (right, full, right anti) get no bitmap,
    /// and every join type answers as it does without the rule.
    #[tokio::test]
    async fn joins_that_keep_unmatched_probe_rows_are_left_alone() {
        let dir = scratch_dir("key-bitmap-types");
        write_tables(&dir);
        let queries = [
            "SELECT count(*) FROM big b RIGHT JOIN (SELECT * FROM small WHERE tag = 'x') s ON b.k = s.k",
            "SELECT count(*) FROM (SELECT * FROM small WHERE tag = 'x') s FULL JOIN big b ON b.k = s.k",
            "SELECT count(*) FROM big b WHERE NOT EXISTS (SELECT 1 FROM small s WHERE s.k = b.k AND s.tag = 'x')",
            "SELECT count(*) FROM big b WHERE EXISTS (SELECT 1 FROM small s WHERE s.k = b.k AND s.tag = 'x')",
            "SELECT count(*) FROM small s LEFT JOIN big b ON b.k = s.k WHERE s.tag = 'x'",
            "SELECT count(*) FROM big b LEFT JOIN (SELECT * FROM small WHERE tag = 'x') s ON b.k = s.k",
        ];
        for partitioned in [false, true] {
            let (with, without) = (context(&dir, partitioned, true).await, context(&dir, partitioned, false).await);
            for sql in queries {
                let (plan, count) = plan_and_number(&with, sql).await;
                assert_eq!(count, plan_and_number(&without, sql).await.1, "{sql}");
                // a bitmap on the side whose unmatched rows are kept would drop what the join keeps
                plan.apply(|node| {
                    if let Some(join) = node.downcast_ref::<HashJoinExec>()
                        && join.left().is::<CollectBuildKeys>()
                    {
                        assert!(
                            !matches!(join.join_type(), JoinType::Right | JoinType::Full | JoinType::RightAnti),
                            "{sql}: a {} join has a bitmap",
                            join.join_type()
                        );
                    }
                    Ok(TreeNodeRecursion::Continue)
                })
                .unwrap();
            }
        }
        let _ = std::fs::remove_dir_all(dir);
    }
}
