//! A partial aggregate over few groups, each row's group found by comparing its keys' raw bits
//! with each group's, and accumulated in one of four slots per group.
//!
//! TPC-H's q01 groups lineitem's 6 M rows a scale factor by two one-letter flags into four
//! groups. DataFusion's partial aggregate hashes both string columns of every row, probes its
//! table and compares the candidates' views column by column: about 9 ns a row, a sixth of the
//! query's CPU, to find one of four groups. Here a key column of integers, dates, booleans or
//! short strings (a string view of 12 bytes or fewer holds the string itself) gives each row a
//! 128-bit code (64 bits when a batch's codes all fit, so a comparison takes four rows). Each
//! group known so far then marks its rows in one pass over the batch, without branches, and the
//! first row left unmarked starts a new group, which marks the rest of its rows the same way;
//! with four groups that is four passes of a few instructions a row where DataFusion hashes and
//! probes each row. Each group then has four accumulator slots, a row
//! going to the slot of its position modulo four: rows of one group one after the other
//! otherwise add into the same slot, each waiting for the last (a sum of decimals is a load,
//! an add and a store of 16 bytes); the slots are merged when the groups are emitted, as the
//! final aggregate merges partitions.
//!
//! A partial aggregate may emit a key more than once (the final aggregate merges them), so when
//! a batch brings more than [`MAX_GROUPS`] groups, or a key that gives no code (a longer string),
//! the groups so far are emitted and that batch and the rest of the input go to DataFusion's
//! aggregate. Two codes for one key (a string view with stray bytes after the string) make two
//! groups of it, merged the same way.

use std::borrow::Cow;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, AsArray, BooleanArray, RecordBatch};
use datafusion::arrow::datatypes::{
    ArrowPrimitiveType, DataType, Date32Type, Date64Type, Int8Type, Int16Type, Int32Type, Int64Type, UInt8Type,
    UInt16Type, UInt32Type, UInt64Type,
};
use datafusion::common::{Result, ScalarValue};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::logical_expr::utils::AggregateOrderSensitivity;
use datafusion::logical_expr::{EmitTo, GroupsAccumulator};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_expr_common::utils::evaluate_expressions_to_arrays;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::aggregates::AggregateExec;
use datafusion::physical_plan::stream::RecordBatchStreamAdapter;
use futures::StreamExt;

/// Groups a partition may gather before the rest of its input goes to DataFusion's aggregate.
pub const MAX_GROUPS: usize = 32;

/// Accumulator slots per group (a power of two).
const LANES: usize = 4;

/// A key column's code for NULL: no value of an integer, a date or a boolean (64 bits at most,
/// zero-extended), nor a string view of 12 bytes or fewer (whose low 32 bits are its length).
const NULL_CODE: u128 = u128::MAX;

/// Whether the aggregate can run here: one or two key columns of types that give codes, and
/// aggregates that accumulate by group without ordering or DISTINCT.
pub fn eligible(aggregate: &AggregateExec) -> bool {
    let keys = aggregate.group_expr().expr();
    let schema = aggregate.input().schema();
    (1..=2).contains(&keys.len())
        && keys.iter().all(|(key, _)| key.data_type(&schema).is_ok_and(|t| coded(&t)))
        && aggregate.aggr_expr().iter().all(|a| {
            a.groups_accumulator_supported()
                    && !a.is_distinct()
                    && a.order_bys().is_empty()
                    // the slots merge rows out of their order: nothing whose result shows it
                    && a.order_sensitivity() == AggregateOrderSensitivity::Insensitive
        })
}

fn coded(data_type: &DataType) -> bool {
    use DataType::*;
    matches!(
        data_type,
        Boolean | Int8 | Int16 | Int32 | Int64 | UInt8 | UInt16 | UInt32 | UInt64 | Date32 | Date64 | Utf8View
    )
}

/// Each row's code for one key column, or `None` when a value has none (a string longer than a
/// view holds).
fn codes(column: &ArrayRef) -> Option<Cow<'_, [u128]>> {
    use DataType::*;
    fn widened<T: ArrowPrimitiveType>(column: &ArrayRef, to: impl Fn(T::Native) -> u128) -> Cow<'_, [u128]> {
        Cow::Owned(column.as_primitive::<T>().values().iter().map(|v| to(*v)).collect())
    }
    let mut codes = match column.data_type() {
        Boolean => Cow::Owned(column.as_boolean().values().iter().map(u128::from).collect()),
        Int8 => widened::<Int8Type>(column, |v| v as u8 as u128),
        Int16 => widened::<Int16Type>(column, |v| v as u16 as u128),
        Int32 => widened::<Int32Type>(column, |v| v as u32 as u128),
        Int64 => widened::<Int64Type>(column, |v| v as u64 as u128),
        Date32 => widened::<Date32Type>(column, |v| v as u32 as u128),
        Date64 => widened::<Date64Type>(column, |v| v as u64 as u128),
        UInt8 => widened::<UInt8Type>(column, u128::from),
        UInt16 => widened::<UInt16Type>(column, u128::from),
        UInt32 => widened::<UInt32Type>(column, u128::from),
        UInt64 => widened::<UInt64Type>(column, u128::from),
        Utf8View => {
            let views = column.as_string_view().views();
            // a NULL's view is one too (Arrow's builders leave it zero): any that is not inline
            // sends the batch on, which is always correct
            if !views.iter().fold(true, |inline, v| inline & ((*v as u32) <= 12)) {
                return None;
            }
            Cow::Borrowed(&views[..])
        }
        _ => return None,
    };
    if let Some(nulls) = column.nulls().filter(|n| n.null_count() > 0) {
        let codes = codes.to_mut();
        for i in nulls.iter().enumerate().filter(|(_, valid)| !valid).map(|(i, _)| i) {
            codes[i] = NULL_CODE;
        }
    }
    Some(codes)
}

/// One key column's codes over a batch, in 64 bits when every one fits (a batch without NULLs
/// of integers, dates, booleans or strings of up to 4 bytes): a pass then compares four rows an
/// instruction.
enum Column<'a> {
    Wide(Cow<'a, [u128]>),
    Narrow(Vec<u64>),
}

impl<'a> Column<'a> {
    fn of(codes: Cow<'a, [u128]>) -> Self {
        if codes.iter().fold(0, |high, c| high | (c >> 64)) == 0 {
            Self::Narrow(codes.iter().map(|c| *c as u64).collect())
        } else {
            Self::Wide(codes)
        }
    }

    fn get(&self, row: usize) -> u128 {
        match self {
            Self::Wide(codes) => codes[row],
            Self::Narrow(codes) => u128::from(codes[row]),
        }
    }
}

/// A batch's key codes: one or two columns of them.
struct Codes<'a> {
    first: Column<'a>,
    second: Option<Column<'a>>,
}

impl<'a> Codes<'a> {
    /// None when a key column's value has no code.
    fn of(columns: &'a [ArrayRef]) -> Option<Self> {
        let first = Column::of(codes(&columns[0])?);
        let second = match columns.get(1) {
            Some(column) => Some(Column::of(codes(column)?)),
            None => None,
        };
        Some(Self { first, second })
    }

    fn row(&self, row: usize) -> (u128, u128) {
        (self.first.get(row), self.second.as_ref().map_or(0, |s| s.get(row)))
    }

    /// Sets `groups[row]` to `group` where the row's codes are `code`, from row `from` on; a pass
    /// without branches over the batch, as a few groups make cheaper than finding each row's
    /// group apart.
    fn mark(&self, code: (u128, u128), group: u32, groups: &mut [u32], from: usize) {
        use Column::*;
        let groups = &mut groups[from..];
        // a code over 64 bits is no row of a narrow column
        let narrow = |c: u128| u64::try_from(c).ok();
        match (&self.first, &self.second) {
            (Wide(a), None) => mark_one(&a[from..], code.0, group, groups),
            (Narrow(a), None) => {
                if let Some(k) = narrow(code.0) {
                    mark_one(&a[from..], k, group, groups)
                }
            }
            (Wide(a), Some(Wide(b))) => mark_two(&a[from..], &b[from..], code, group, groups),
            (Narrow(a), Some(Narrow(b))) => {
                if let (Some(k), Some(l)) = (narrow(code.0), narrow(code.1)) {
                    mark_two(&a[from..], &b[from..], (k, l), group, groups)
                }
            }
            (Wide(a), Some(Narrow(b))) => {
                if let Some(l) = narrow(code.1) {
                    mark_two(&a[from..], &b[from..], (code.0, l), group, groups)
                }
            }
            (Narrow(a), Some(Wide(b))) => {
                if let Some(k) = narrow(code.0) {
                    mark_two(&a[from..], &b[from..], (k, code.1), group, groups)
                }
            }
        }
    }
}

fn mark_one<A: Copy + PartialEq>(a: &[A], key: A, group: u32, groups: &mut [u32]) {
    for (g, c) in groups.iter_mut().zip(a) {
        *g = if *c == key { group } else { *g };
    }
}

fn mark_two<A: Copy + PartialEq, B: Copy + PartialEq>(a: &[A], b: &[B], key: (A, B), group: u32, groups: &mut [u32]) {
    for ((g, c), d) in groups.iter_mut().zip(a).zip(b) {
        *g = if (*c == key.0) & (*d == key.1) { group } else { *g };
    }
}

/// A row not yet in a group.
const NO_GROUP: u32 = u32::MAX;

/// The groups of one partition so far and their accumulators.
struct FewGroups {
    aggregate: Arc<AggregateExec>,
    keys: Vec<Arc<dyn PhysicalExpr>>,
    /// Each group's codes (the second 0 with one key column).
    codes: Vec<(u128, u128)>,
    /// Each group's key values, as its first row had them.
    values: Vec<Vec<ScalarValue>>,
    accumulators: Vec<Box<dyn GroupsAccumulator>>,
    /// The group slot of each row of the batch at hand, reused.
    slots: Vec<usize>,
}

/// What became of a batch.
enum Taken {
    Aggregated,
    /// Not aggregated: its keys make too many groups or give no code.
    Refused,
}

impl FewGroups {
    fn new(aggregate: Arc<AggregateExec>) -> Result<Self> {
        let keys = aggregate.group_expr().input_exprs();
        let accumulators =
            aggregate.aggr_expr().iter().map(|a| a.create_groups_accumulator()).collect::<Result<_>>()?;
        Ok(Self { aggregate, keys, codes: vec![], values: vec![], accumulators, slots: vec![] })
    }

    fn take(&mut self, batch: &RecordBatch) -> Result<Taken> {
        let rows = batch.num_rows();
        if rows == 0 {
            return Ok(Taken::Aggregated);
        }
        let columns = evaluate_expressions_to_arrays(&self.keys, batch)?;
        let Some(codes) = Codes::of(&columns) else { return Ok(Taken::Refused) };
        let before = self.codes.len();
        let mut groups = vec![NO_GROUP; rows];
        for (group, code) in self.codes.iter().enumerate() {
            codes.mark(*code, group as u32, &mut groups, 0);
        }
        // rows of keys not seen before: a new group each, marked from its first row on
        let mut from = 0;
        while let Some(row) = groups[from..].iter().position(|g| *g == NO_GROUP).map(|r| r + from) {
            if self.codes.len() == MAX_GROUPS {
                self.codes.truncate(before);
                self.values.truncate(before);
                return Ok(Taken::Refused);
            }
            let code = codes.row(row);
            self.codes.push(code);
            self.values.push(columns.iter().map(|c| ScalarValue::try_from_array(c, row)).collect::<Result<_>>()?);
            codes.mark(code, (self.codes.len() - 1) as u32, &mut groups, row);
            from = row + 1;
        }
        self.slots.clear();
        self.slots.extend(groups.iter().enumerate().map(|(row, g)| *g as usize * LANES + (row & (LANES - 1))));
        let slots = self.codes.len() * LANES;
        for ((accumulator, expr), filter) in
            self.accumulators.iter_mut().zip(self.aggregate.aggr_expr()).zip(self.aggregate.filter_expr())
        {
            let values = evaluate_expressions_to_arrays(&expr.expressions(), batch)?;
            let filter = match filter {
                Some(filter) => Some(filter.evaluate(batch)?.into_array(rows)?),
                None => None,
            };
            let filter: Option<&BooleanArray> = filter.as_ref().map(|f| f.as_boolean());
            accumulator.update_batch(&values, &self.slots, filter, slots)?;
        }
        Ok(Taken::Aggregated)
    }

    /// The groups as the partial aggregate's output: keys, then each aggregate's state, its
    /// slots merged. None when there are no groups.
    fn emit(self) -> Result<Option<RecordBatch>> {
        let groups = self.codes.len();
        if groups == 0 {
            return Ok(None);
        }
        let mut columns: Vec<ArrayRef> = (0..self.keys.len())
            .map(|k| ScalarValue::iter_to_array(self.values.iter().map(|v| v[k].clone())))
            .collect::<Result<_>>()?;
        let of_slot: Vec<usize> = (0..groups * LANES).map(|slot| slot / LANES).collect();
        for (mut accumulator, expr) in self.accumulators.into_iter().zip(self.aggregate.aggr_expr()) {
            let state = accumulator.state(EmitTo::All)?;
            let mut merged = expr.create_groups_accumulator()?;
            merged.merge_batch(&state, &of_slot, groups)?;
            columns.extend(merged.state(EmitTo::All)?);
        }
        Ok(Some(RecordBatch::try_new(self.aggregate.schema(), columns)?))
    }
}

/// Whether a batch's keys give codes and make at most `limit` groups.
pub fn has_few_keys(batch: &RecordBatch, keys: &[Arc<dyn PhysicalExpr>], limit: usize) -> Result<bool> {
    let columns = evaluate_expressions_to_arrays(keys, batch)?;
    let Some(codes) = Codes::of(&columns) else { return Ok(false) };
    let mut distinct: Vec<(u128, u128)> = vec![];
    for row in 0..batch.num_rows() {
        let code = codes.row(row);
        if !distinct.contains(&code) {
            if distinct.len() == limit {
                return Ok(false);
            }
            distinct.push(code);
        }
    }
    Ok(true)
}

/// Runs the partial aggregate over `first` and the rest of `input`. When a batch is refused, the
/// groups so far are emitted and `handoff` gets that batch and the rest (DataFusion's aggregate).
pub async fn run(
    aggregate: Arc<AggregateExec>,
    first: RecordBatch,
    mut input: SendableRecordBatchStream,
    handoff: impl FnOnce(SendableRecordBatchStream) -> Result<SendableRecordBatchStream>,
) -> Result<SendableRecordBatchStream> {
    let schema = aggregate.schema();
    let input_schema = input.schema();
    let mut groups = FewGroups::new(aggregate)?;
    let mut next = Some(first);
    while let Some(batch) = next {
        if let Taken::Refused = groups.take(&batch)? {
            let emitted = groups.emit()?;
            let rest = futures::stream::iter([Ok(batch)]).chain(input);
            let rest = handoff(Box::pin(RecordBatchStreamAdapter::new(input_schema, rest)))?;
            let out = futures::stream::iter(emitted.map(Ok)).chain(rest);
            return Ok(Box::pin(RecordBatchStreamAdapter::new(schema, out)));
        }
        next = input.next().await.transpose()?;
    }
    let out = futures::stream::iter(groups.emit()?.map(Ok));
    Ok(Box::pin(RecordBatchStreamAdapter::new(schema, out)))
}
