//! Parquet footers and page indexes read while planning a catalog table's scan: a footer in one
//! request, the page index only for a scan whose predicate can use it, and no byte that the
//! footer's read already brought fetched a second time.
//!
//! The page index lets a scan read only the pages a predicate may match, but it costs a request
//! and tens of KiB per file. It pays where the data is ordered on the predicate's columns, and
//! then the row groups' own statistics show it: the filters rule out some row groups (or whole
//! files) and keep others. Where they keep every row group of every file (`l_discount > 0.05`
//! over unordered data), pages are no more ordered than row groups, and the scan reads whole
//! column chunks without it. A page index that lies inside the footer's read costs nothing and
//! is always kept. A join's filter reaches a scan only as it starts, and DataFusion then reads the
//! page index planning left unread; the scan's reader keeps what it read here too
//! (`formats::parquet_chunks`), or every later query would fetch and decode it again.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::{Arc, OnceLock};

use bytes::{Bytes, BytesMut};
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::Statistics;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::parquet::ParquetFormat;
// (the metadata module's CachedParquetMetaData is the one DataFusion's reads look for; the
// crate root exports another of the same name)
use datafusion::common::TableReference;
use datafusion::datasource::physical_plan::parquet::metadata::{CachedParquetMetaData, DFParquetMetadata};
use datafusion::datasource::physical_plan::parquet::{ParquetAccessPlan, ParquetFileMetrics, RowGroupAccessPlanFilter};
use datafusion::error::{DataFusionError, Result};
use datafusion::execution::cache::cache_manager::{CachedFileMetadata, CachedFileMetadataEntry, FileMetadataCache};
use datafusion::execution::cache::{SchemaFingerprint, TableScopedPath};
use datafusion::parquet::DecodeResult;
use datafusion::parquet::arrow::async_reader::MetadataFetch;
use datafusion::parquet::errors::ParquetError;
use datafusion::parquet::file::metadata::{
    PageIndexPolicy, ParquetMetaData, ParquetMetaDataPushDecoder, ParquetMetaDataReader,
};
use datafusion::physical_optimizer::pruning::PruningPredicate;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use futures::FutureExt;
use futures::future::BoxFuture;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};

/// Bytes of a file from `start` on, as the footer's first read (or a scan's read of the page
/// index) brought them.
struct Suffix {
    start: u64,
    bytes: Bytes,
}

impl Suffix {
    fn covers(&self, range: &Range<u64>) -> bool {
        range.start >= self.start && range.end <= self.end()
    }

    fn end(&self) -> u64 {
        self.start + self.bytes.len() as u64
    }

    /// Its part inside `range`, copied, when that part runs to `range`'s end (the page index
    /// lies just before the footer): a scan keeps it for each file until every footer is read,
    /// and the whole read would hold the footer's 64 KiB a file.
    fn within(&self, range: &Range<u64>) -> Option<Suffix> {
        let start = range.start.max(self.start);
        if start >= range.end || range.end > self.end() {
            return None;
        }
        let bytes =
            Bytes::copy_from_slice(&self.bytes[(start - self.start) as usize..(range.end - self.start) as usize]);
        Some(Suffix { start, bytes })
    }
}

/// A page index a scan may want: the file has one, not yet read, and the filters keep some of
/// its row groups.
pub(super) struct PageIndex {
    meta: ObjectMeta,
    metadata: Arc<ParquetMetaData>,
    suffix: Option<Suffix>,
    /// It lies inside what the footer's read brought.
    free: bool,
}

/// What a scan's filters tell of one file's row groups, and the file's page index.
pub(super) enum RowGroups {
    /// Nothing to test (no filters on the file's columns, or page indexes are off).
    Untested,
    /// The filters rule out some of its row groups, or all of them.
    SomeRuledOut(Option<PageIndex>),
    /// The filters keep every row group.
    AllKept(Option<PageIndex>),
    /// The file's page index is in the cache already (an earlier scan read it): what the filters
    /// keep is worked out only if another file's index is to be read ([`worth_reading`]).
    IndexHeld { meta: ObjectMeta, metadata: Arc<ParquetMetaData> },
}

impl RowGroups {
    pub(super) fn into_page_index(self) -> Option<PageIndex> {
        match self {
            Self::Untested | Self::IndexHeld { .. } => None,
            Self::SomeRuledOut(index) | Self::AllKept(index) => index,
        }
    }
}

/// Whether a scan reads its files' page indexes: some file's is still to be read, and its filters
/// (`pruning`, on the files' columns in `schema`) rule out some row group of some file (the data
/// is ordered on their columns, and so are its pages), or a page index is free. With none to
/// read there is nothing to decide, and the filters are not tested against files whose indexes
/// the cache holds (a repeated query's scans: DataFusion's opener tests them again in any case).
pub(super) fn worth_reading(
    files: &[RowGroups],
    store: &dyn ObjectStore,
    schema: &SchemaRef,
    pruning: &LazyPruning,
) -> bool {
    let to_read = |f: &RowGroups| matches!(f, RowGroups::SomeRuledOut(Some(_)) | RowGroups::AllKept(Some(_)));
    if !files.iter().any(to_read) {
        return false;
    }
    files.iter().any(|f| match f {
        RowGroups::Untested => false,
        RowGroups::SomeRuledOut(_) => true,
        RowGroups::AllKept(index) => index.as_ref().is_some_and(|i| i.free),
        RowGroups::IndexHeld { meta, metadata } => {
            pruning.kept(store, metadata, schema, meta).is_some_and(|(kept, total)| kept < total)
        }
    })
}

/// One file's statistics from its own metadata, and the page index its scan may want. A Parquet
/// footer is read once into the session's metadata cache (the scan finds it there); formats
/// that carry no statistics say so.
pub(super) async fn read(
    state: &dyn Session,
    scope: &StatisticsScope,
    format: &dyn FileFormat,
    store: &Arc<dyn ObjectStore>,
    schema: SchemaRef,
    meta: &ObjectMeta,
    pruning: &LazyPruning<'_>,
) -> Result<(Arc<Statistics>, RowGroups)> {
    let Some(parquet) = format.downcast_ref::<ParquetFormat>() else {
        return Ok((Arc::new(format.infer_stats(state, store, schema, meta).await?), RowGroups::Untested));
    };
    // one footer read at a time per object: a statement that scans a table twice (a self-join,
    // a view used twice) plans both scans at once, and the second waits for the cache
    let _one_at_a_time = footer_lock(store.as_ref(), meta).lock_owned().await;
    let cache = state.runtime_env().cache_manager.get_file_metadata_cache();
    let (metadata, suffix) = match cached(cache.as_ref(), meta) {
        Some(metadata) => (metadata, None),
        None => {
            let hint = parquet.metadata_size_hint().unwrap_or(FOOTER_TAIL);
            let (metadata, suffix) = fetch_footer(store.as_ref(), meta, hint).await?;
            let metadata = Arc::new(metadata);
            put(cache.as_ref(), meta, Arc::clone(&metadata));
            (metadata, Some(suffix))
        }
    };
    let stats = statistics(state, scope, &metadata, &schema, meta)?;
    if !parquet.options().global.enable_page_index {
        return Ok((stats, RowGroups::Untested));
    }
    if has_page_index(&metadata) {
        return Ok((stats, RowGroups::IndexHeld { meta: meta.clone(), metadata }));
    }
    let Some((kept, total)) = pruning.kept(store.as_ref(), &metadata, &schema, meta) else {
        return Ok((stats, RowGroups::Untested));
    };
    let index = match page_index_range(&metadata) {
        Some(range) if kept > 0 => {
            let suffix = suffix.and_then(|s| s.within(&range));
            let free = suffix.as_ref().is_some_and(|s| s.covers(&range));
            Some(PageIndex { meta: meta.clone(), metadata, suffix, free })
        }
        _ => None,
    };
    let row_groups = if kept < total { RowGroups::SomeRuledOut(index) } else { RowGroups::AllKept(index) };
    Ok((stats, row_groups))
}

/// A scan's filters as a test of row group statistics, built when a file first needs it. The
/// files of a repeated query have their page indexes in the cache and never do; building the
/// test (the filters as a physical expression, rewritten over statistics) was a third of what
/// planning such a scan cost beyond DataFusion's own tables (TPC-H q22 at SF1, 0.07 of 0.2 ms).
pub(super) struct LazyPruning<'a> {
    /// The filters as text: what a file's outcome is remembered under (`None`: no filters).
    text: Option<String>,
    build: Box<dyn Fn() -> Option<Arc<PruningPredicate>> + Send + Sync + 'a>,
    built: OnceLock<Option<Arc<PruningPredicate>>>,
}

impl<'a> LazyPruning<'a> {
    /// The test of filters `text` (`None` when there are none), built by `build`.
    pub(super) fn new(
        text: Option<String>,
        build: impl Fn() -> Option<Arc<PruningPredicate>> + Send + Sync + 'a,
    ) -> Self {
        Self { text, build: Box::new(build), built: OnceLock::new() }
    }

    /// The test, built at the first call (`None`: no filter on the files' columns).
    pub(super) fn get(&self) -> Option<&PruningPredicate> {
        self.built.get_or_init(|| (self.build)()).as_deref()
    }

    /// How many of `meta`'s row groups the filters keep, of how many (`None`: no test). Worked
    /// out once for each version of a file and each filter: a file whose page index the scan
    /// leaves unread (its filters keep every row group) would otherwise be tested at every
    /// statement and the test built each time: a third of what planning a catalog scan cost
    /// (a join of three tables whose filters keep no row group, planned 400 times). What it
    /// decides is only whether to read the page index: the scan tests the row groups itself.
    pub(super) fn kept(
        &self,
        store: &dyn ObjectStore,
        metadata: &ParquetMetaData,
        schema: &SchemaRef,
        meta: &ObjectMeta,
    ) -> Option<(usize, usize)> {
        let text = self.text.as_ref()?;
        let key = format!(
            "{store} {} {} {:?} {:?} {text}",
            meta.location,
            meta.size,
            meta.last_modified.timestamp_nanos_opt(),
            meta.e_tag
        );
        let memo = || KEPT.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(&outcome) = memo().get(&key) {
            return outcome;
        }
        let outcome = self.get().map(|pruning| row_groups_kept(metadata, schema, pruning, meta));
        let mut memo = memo();
        if memo.len() >= MAX_KEPT {
            // rare (that many files and filters): start afresh rather than track what is old
            memo.clear();
        }
        memo.insert(key, outcome);
        outcome
    }
}

/// Files and filters whose outcome [`LazyPruning::kept`] remembers at most.
const MAX_KEPT: usize = 16_384;

/// Row groups kept of how many (`None`: no test), by store, file version and filters.
type KeptByFile = HashMap<String, Option<(usize, usize)>>;

/// What filters kept of files' row groups.
static KEPT: std::sync::LazyLock<std::sync::Mutex<KeptByFile>> = std::sync::LazyLock::new(Default::default);

/// Whose files' statistics are computed: the table (each file's entry in the session's file
/// statistics cache is scoped to it) and the schema they are computed for.
pub(super) struct StatisticsScope {
    table: TableReference,
    schema: Arc<SchemaFingerprint>,
}

impl StatisticsScope {
    pub(super) fn new(table: &str, schema: &Schema) -> Self {
        Self { table: TableReference::bare(table), schema: Arc::new(SchemaFingerprint::from_schema(schema)) }
    }
}

/// A file's statistics for `schema`, computed from its footer once while the file is unchanged
/// (same size and modification time) and kept in the session's file statistics cache, as
/// DataFusion's own tables keep theirs: they turn the footer's row group statistics into each
/// column's bounds and counts, a third of planning a query over files already read (TPC-H's q02
/// scans nine tables of four files each).
fn statistics(
    state: &dyn Session,
    scope: &StatisticsScope,
    metadata: &ParquetMetaData,
    schema: &SchemaRef,
    meta: &ObjectMeta,
) -> Result<Arc<Statistics>> {
    let cache = state.runtime_env().cache_manager.get_file_statistic_cache();
    let key = TableScopedPath { table: Some(scope.table.clone()), path: meta.location.clone() };
    if let Some(entry) = cache.as_ref().and_then(|c| c.get(&key)).filter(|e| e.is_valid_for(meta, &scope.schema)) {
        return Ok(entry.statistics);
    }
    let stats = Arc::new(DFParquetMetadata::statistics_from_parquet_metadata(metadata, schema)?);
    if let Some(cache) = cache {
        let entry = CachedFileMetadata::new(meta.clone(), Arc::clone(&scope.schema), Arc::clone(&stats), None);
        cache.put(&key, entry);
    }
    Ok(stats)
}

impl PageIndex {
    /// Reads the page index into the session's metadata cache, fetching only the part of it the
    /// footer's read did not bring (nothing, when another scan of the statement read it first).
    pub(super) async fn load(self, state: &dyn Session, store: &Arc<dyn ObjectStore>) -> Result<()> {
        let _one_at_a_time = footer_lock(store.as_ref(), &self.meta).lock_owned().await;
        let cache = state.runtime_env().cache_manager.get_file_metadata_cache();
        if cached(cache.as_ref(), &self.meta).is_some_and(|m| has_page_index(&m)) {
            return Ok(());
        }
        let metadata = Arc::unwrap_or_clone(self.metadata);
        let mut reader =
            ParquetMetaDataReader::new_with_metadata(metadata).with_page_index_policy(PageIndexPolicy::Optional);
        let fetch = SuffixFetch { store: store.as_ref(), meta: &self.meta, suffix: self.suffix.as_ref() };
        reader.load_page_index(fetch).await?;
        put(cache.as_ref(), &self.meta, Arc::new(reader.finish()?));
        Ok(())
    }
}

/// The least a footer read asks for: the footer's length and magic.
const FOOTER_TAIL: usize = 8;

/// The footer of `meta`, first guessing it lies in the last `hint` bytes (a second request
/// when it is larger), and those bytes.
async fn fetch_footer(store: &dyn ObjectStore, meta: &ObjectMeta, hint: usize) -> Result<(ParquetMetaData, Suffix)> {
    let start = meta.size.saturating_sub(hint.max(FOOTER_TAIL) as u64);
    let bytes = store.get_range(&meta.location, start..meta.size).await?;
    let mut decoder = ParquetMetaDataPushDecoder::try_new(meta.size)?.with_page_index_policy(PageIndexPolicy::Skip);
    decoder.push_range(start..meta.size, bytes.clone())?;
    loop {
        match decoder.try_decode()? {
            DecodeResult::Data(metadata) => return Ok((metadata, Suffix { start, bytes })),
            DecodeResult::NeedsData(ranges) => {
                let more = store.get_ranges(&meta.location, &ranges).await?;
                decoder.push_ranges(ranges, more)?;
            }
            DecodeResult::Finished => {
                return Err(DataFusionError::Execution(format!(
                    "{}: the Parquet footer ended without metadata",
                    meta.location
                )));
            }
        }
    }
}

/// Fetches for the page index reader, cutting what it can from the footer's read.
struct SuffixFetch<'a> {
    store: &'a dyn ObjectStore,
    meta: &'a ObjectMeta,
    suffix: Option<&'a Suffix>,
}

impl MetadataFetch for SuffixFetch<'_> {
    fn fetch(&mut self, range: Range<u64>) -> BoxFuture<'_, datafusion::parquet::errors::Result<Bytes>> {
        async move {
            let external = |e: object_store::Error| ParquetError::External(Box::new(e));
            let Some(suffix) =
                self.suffix.filter(|s| range.start <= range.end && range.end > s.start && range.end <= s.end())
            else {
                return self.store.get_range(&self.meta.location, range).await.map_err(external);
            };
            let tail = suffix
                .bytes
                .slice((range.start.max(suffix.start) - suffix.start) as usize..(range.end - suffix.start) as usize);
            if range.start >= suffix.start {
                return Ok(tail);
            }
            let head = self.store.get_range(&self.meta.location, range.start..suffix.start).await.map_err(external)?;
            let mut joined = BytesMut::with_capacity(head.len() + tail.len());
            joined.extend_from_slice(&head);
            joined.extend_from_slice(&tail);
            Ok(joined.freeze())
        }
        .boxed()
    }
}

/// The footer alone of `meta` in the cache, when `range` is exactly where its page index lies:
/// a scan is reading the index that planning left unread (the scan had no filter of its own, or
/// its filters kept every row group; a join's filter arrived as the scan started).
pub(crate) fn footer_without_page_index(
    cache: &FileMetadataCache,
    meta: &ObjectMeta,
    range: &Range<u64>,
) -> Option<Arc<ParquetMetaData>> {
    cached(cache, meta).filter(|m| !has_page_index(m) && page_index_range(m).as_ref() == Some(range))
}

/// Keeps the page index a scan read (`bytes`, from `start`, where the footer says it lies) with
/// `footer` in the cache, as planning keeps those it reads, so the next scan of the file does not
/// fetch it again. An index that does not parse is not kept: the scan's own read reports it.
pub(crate) async fn keep_page_index(
    cache: &FileMetadataCache,
    meta: &ObjectMeta,
    footer: Arc<ParquetMetaData>,
    start: u64,
    bytes: Bytes,
) {
    let mut reader = ParquetMetaDataReader::new_with_metadata(Arc::unwrap_or_clone(footer))
        .with_page_index_policy(PageIndexPolicy::Optional);
    if reader.load_page_index(Suffix { start, bytes }).await.is_err() {
        return;
    }
    if let Ok(metadata) = reader.finish()
        && has_page_index(&metadata)
    {
        put(cache, meta, Arc::new(metadata));
    }
}

/// The bytes a scan already read, for the page index reader: it asks for no byte outside them.
impl MetadataFetch for Suffix {
    fn fetch(&mut self, range: Range<u64>) -> BoxFuture<'_, datafusion::parquet::errors::Result<Bytes>> {
        let held = (range.start <= range.end && self.covers(&range))
            .then(|| self.bytes.slice((range.start - self.start) as usize..(range.end - self.start) as usize));
        async move { held.ok_or_else(|| ParquetError::General(format!("bytes {range:?} were not read"))) }.boxed()
    }
}

/// Whether `metadata` carries the file's page index (as DataFusion's reads test it).
fn has_page_index(metadata: &ParquetMetaData) -> bool {
    metadata.column_index().is_some() && metadata.offset_index().is_some()
}

/// The bytes of the file's column and offset indexes, when it has any.
fn page_index_range(metadata: &ParquetMetaData) -> Option<Range<u64>> {
    let mut range: Option<Range<u64>> = None;
    for column in metadata.row_groups().iter().flat_map(|g| g.columns()) {
        let parts = [
            (column.column_index_offset(), column.column_index_length()),
            (column.offset_index_offset(), column.offset_index_length()),
        ];
        for (offset, length) in parts {
            let (Some(offset), Some(length)) = (offset, length) else { continue };
            let (Ok(start), Ok(length)) = (u64::try_from(offset), u64::try_from(length)) else { continue };
            let part = start..start.saturating_add(length);
            range = Some(match range {
                Some(r) => r.start.min(part.start)..r.end.max(part.end),
                None => part,
            });
        }
    }
    range
}

/// How many of the file's row groups `pruning` keeps, of how many.
fn row_groups_kept(
    metadata: &ParquetMetaData,
    schema: &SchemaRef,
    pruning: &PruningPredicate,
    meta: &ObjectMeta,
) -> (usize, usize) {
    let groups = metadata.row_groups();
    let mut filter = RowGroupAccessPlanFilter::new(ParquetAccessPlan::new_all(groups.len()));
    let metrics = ParquetFileMetrics::new(0, meta.location.as_ref(), &ExecutionPlanMetricsSet::new());
    filter.prune_by_statistics(schema, metadata.file_metadata().schema_descr(), groups, pruning, &metrics);
    (filter.remaining_row_group_count(), groups.len())
}

/// The Parquet metadata the session has cached for `meta`, if it is of this version of it.
pub(crate) fn cached(cache: &FileMetadataCache, meta: &ObjectMeta) -> Option<Arc<ParquetMetaData>> {
    let entry = cache.get(&meta.location).filter(|e| e.is_valid_for(meta))?;
    let parquet = entry.file_metadata.as_any().downcast_ref::<CachedParquetMetaData>()?;
    Some(Arc::clone(parquet.parquet_metadata()))
}

fn put(cache: &FileMetadataCache, meta: &ObjectMeta, metadata: Arc<ParquetMetaData>) {
    cache.put(
        &meta.location,
        CachedFileMetadataEntry::new(meta.clone(), Arc::new(CachedParquetMetaData::new(metadata))),
    );
}

/// The lock for reading one object's footer. Locks no one holds are dropped as others are made.
fn footer_lock(store: &dyn ObjectStore, meta: &ObjectMeta) -> Arc<tokio::sync::Mutex<()>> {
    static LOCKS: std::sync::LazyLock<std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>> =
        std::sync::LazyLock::new(Default::default);
    let key = format!("{store} {} {}", meta.location, meta.size);
    let mut locks = LOCKS.lock().unwrap_or_else(|p| p.into_inner());
    locks.retain(|_, lock| Arc::strong_count(lock) > 1);
    Arc::clone(locks.entry(key).or_default())
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::storage::{MeteredStore, ScanMeter};
    use datafusion::arrow::array::{Int64Array, RecordBatch};
    use datafusion::arrow::datatypes::{DataType, Field};
    use datafusion::common::ScalarValue;
    use datafusion::common::stats::Precision;
    use datafusion::parquet::arrow::ArrowWriter;
    use datafusion::parquet::file::properties::WriterProperties;
    use object_store::memory::InMemory;
    use object_store::path::Path;

    /// A Parquet file of 50,000 ids in 100-row pages (a page index of some KiB) in memory,
    /// behind a meter.
    pub(crate) async fn file() -> (Arc<dyn ObjectStore>, Arc<ScanMeter>, ObjectMeta) {
        let memory = InMemory::new();
        let location = Path::from("t/ids.parquet");
        memory.put(&location, ids(50_000).into()).await.unwrap();
        let meta = memory.head(&location).await.unwrap();
        let meter = Arc::new(ScanMeter::new());
        (Arc::new(MeteredStore::new(Arc::new(memory), Arc::clone(&meter))), meter, meta)
    }

    /// A Parquet file of the ids 0 to `n` in 100-row pages.
    fn ids(n: i64) -> Vec<u8> {
        ids_in_groups(n, 1 << 20)
    }

    /// The same, in row groups of `group` rows.
    fn ids_in_groups(n: i64, group: usize) -> Vec<u8> {
        let batch = RecordBatch::try_from_iter([("id", Arc::new(Int64Array::from_iter_values(0..n)) as _)]).unwrap();
        let props = WriterProperties::builder()
            .set_data_page_row_count_limit(100)
            .set_write_batch_size(100)
            .set_max_row_group_row_count(Some(group))
            .build();
        let mut bytes = vec![];
        let mut writer = ArrowWriter::try_new(&mut bytes, batch.schema(), Some(props)).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        bytes
    }

    #[tokio::test]
    async fn a_files_statistics_are_computed_once_while_it_and_the_schema_are_unchanged() {
        let memory = Arc::new(InMemory::new());
        let location = Path::from("t/ids.parquet");
        memory.put(&location, ids(50_000).into()).await.unwrap();
        let store: Arc<dyn ObjectStore> = Arc::clone(&memory) as _;
        let state = datafusion::prelude::SessionContext::new().state();
        let format = ParquetFormat::default();
        let nullable = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true)]));
        let not_null = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, false)]));
        let stats = |schema: &SchemaRef, meta: ObjectMeta| {
            let (state, format, store, schema) = (&state, &format, &store, Arc::clone(schema));
            async move {
                let scope = StatisticsScope::new("db.t", &schema);
                read(state, &scope, format, store, schema, &meta, &LazyPruning::new(None, || None)).await.unwrap().0
            }
        };
        let meta = memory.head(&location).await.unwrap();
        let first = stats(&nullable, meta.clone()).await;
        assert_eq!(first.num_rows, Precision::Exact(50_000));
        assert!(Arc::ptr_eq(&first, &stats(&nullable, meta.clone()).await), "computed again");
        // computed for another schema: its own
        let other = stats(&not_null, meta).await;
        assert!(!Arc::ptr_eq(&first, &other));
        assert_eq!(other.num_rows, Precision::Exact(50_000));
        // the file rewritten: its new statistics
        memory.put(&location, ids(10).into()).await.unwrap();
        let rewritten = stats(&nullable, memory.head(&location).await.unwrap()).await;
        assert_eq!(rewritten.num_rows, Precision::Exact(10));
        assert_eq!(rewritten.column_statistics[0].max_value, Precision::Exact(ScalarValue::Int64(Some(9))));
    }

    /// A file whose page index the cache holds is not tested against the scan's filters while no
    /// other file's index is to be read. With one to read, it is: a row group it rules out makes
    /// the indexes worth reading, and filters that keep all its row groups do not.
    #[tokio::test]
    async fn filters_meet_a_held_page_index_only_when_another_is_to_be_read() {
        let memory = Arc::new(InMemory::new());
        memory.put(&Path::from("held/ids.parquet"), ids_in_groups(50_000, 10_000).into()).await.unwrap();
        memory.put(&Path::from("held/low.parquet"), ids(5_000).into()).await.unwrap();
        let store: Arc<dyn ObjectStore> = Arc::clone(&memory) as _;
        let (ids_meta, low_meta) = (
            memory.head(&Path::from("held/ids.parquet")).await.unwrap(),
            memory.head(&Path::from("held/low.parquet")).await.unwrap(),
        );
        let state = datafusion::prelude::SessionContext::new().state();
        // a footer read of the footer alone: no page index comes with it for free
        let format = ParquetFormat::default().with_metadata_size_hint(Some(8));
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true)]));
        let scope = StatisticsScope::new("db.t", &schema);
        let pruning = |below: i64| {
            let id: Arc<dyn datafusion::physical_expr::PhysicalExpr> =
                Arc::new(datafusion::physical_expr::expressions::Column::new("id", 0));
            let bound = datafusion::physical_expr::expressions::lit(below);
            let test = datafusion::physical_expr::expressions::binary(
                id,
                datafusion::logical_expr::Operator::Lt,
                bound,
                &schema,
            );
            datafusion::physical_optimizer::pruning::PruningPredicateBuilder::new()
                .with_file_schema(Arc::clone(&schema))
                .build(test.unwrap())
                .unwrap()
        };
        let lazy = |pruning: &(Arc<PruningPredicate>, String)| {
            let (test, text) = pruning.clone();
            LazyPruning::new(Some(text), move || Some(Arc::clone(&test)))
        };
        let row_groups = async |meta: &ObjectMeta, pruning: &(Arc<PruningPredicate>, String)| {
            let schema = Arc::clone(&schema);
            read(&state, &scope, &format, &store, schema, meta, &lazy(pruning)).await.unwrap().1
        };
        let first_group = (pruning(5_000), "id < 5000".to_string());
        // read once, as a scan that found it worth reading does
        let RowGroups::SomeRuledOut(Some(index)) = row_groups(&ids_meta, &first_group).await else {
            panic!("id < 5000 rules out four of ids' five row groups, whose page index is unread")
        };
        index.load(&state, &store).await.unwrap();
        let held = row_groups(&ids_meta, &first_group).await;
        assert!(matches!(held, RowGroups::IndexHeld { .. }));
        assert!(!worth_reading(&[held], store.as_ref(), &schema, &lazy(&first_group)), "nothing to read");
        let low = row_groups(&low_meta, &first_group).await;
        assert!(matches!(&low, RowGroups::AllKept(Some(index)) if !index.free), "low's one row group is kept");
        let held = row_groups(&ids_meta, &first_group).await;
        assert!(
            worth_reading(&[held, low], store.as_ref(), &schema, &lazy(&first_group)),
            "ids' held index rules out row groups"
        );
        let every_group = (pruning(1_000_000), "id < 1000000".to_string());
        let (held, low) = (row_groups(&ids_meta, &every_group).await, row_groups(&low_meta, &every_group).await);
        assert!(
            !worth_reading(&[held, low], store.as_ref(), &schema, &lazy(&every_group)),
            "no file rules out a row group"
        );

        // the test is built only when a file needs it: not for files whose indexes are held,
        // and once for each file and filters
        let builds = std::sync::atomic::AtomicUsize::new(0);
        let built = || builds.load(std::sync::atomic::Ordering::Relaxed);
        let counted = |text: &str| {
            LazyPruning::new(Some(text.to_string()), || {
                builds.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                Some(Arc::clone(&first_group.0))
            })
        };
        let read_with = async |meta: &ObjectMeta, pruning: &LazyPruning<'_>| {
            read(&state, &scope, &format, &store, Arc::clone(&schema), meta, pruning).await.unwrap().1
        };
        // the same filters by another text: nothing known of them yet
        let fresh = counted("id < 5000 AND id < 6000");
        let held = read_with(&ids_meta, &fresh).await;
        assert!(!worth_reading(&[held], store.as_ref(), &schema, &fresh));
        assert_eq!(built(), 0, "a held index needs no test");
        let held = read_with(&ids_meta, &fresh).await;
        let low = read_with(&low_meta, &fresh).await;
        assert!(worth_reading(&[held, low], store.as_ref(), &schema, &fresh));
        assert_eq!(built(), 1, "built once, for the file with an unread index");
        // the next statement with these filters: both files' outcomes are known, nothing is built
        let again = counted("id < 5000 AND id < 6000");
        let held = read_with(&ids_meta, &again).await;
        let low = read_with(&low_meta, &again).await;
        assert!(matches!(&low, RowGroups::AllKept(Some(_))), "the outcome remembered is the one worked out");
        assert!(worth_reading(&[held, low], store.as_ref(), &schema, &again));
        assert_eq!(built(), 1, "remembered for each file and filters");
        // the file rewritten: worked out again
        memory.put(&Path::from("held/low.parquet"), ids(5_000).into()).await.unwrap();
        let low_meta = memory.head(&Path::from("held/low.parquet")).await.unwrap();
        let low = read_with(&low_meta, &counted("id < 5000 AND id < 6000")).await;
        assert!(matches!(&low, RowGroups::AllKept(Some(_))));
        assert_eq!(built(), 2, "a new version of a file is tested afresh");
    }

    #[tokio::test]
    async fn the_page_index_reads_only_what_the_footer_read_did_not_bring() {
        let (store, meter, meta) = file().await;
        // a footer read of the last 2 KiB: the footer and the end of the page index
        let (metadata, suffix) = fetch_footer(store.as_ref(), &meta, 2048).await.unwrap();
        assert_eq!(meter.bytes(), 2048);
        let range = page_index_range(&metadata).expect("the file has a page index");
        assert!(range.start < suffix.start && range.end > suffix.start, "{range:?} vs {}", suffix.start);
        // what a scan keeps of the footer's read until it loads the index
        let suffix = suffix.within(&range).expect("the read ends inside the page index's range or after it");
        let mut reader = ParquetMetaDataReader::new_with_metadata(metadata.clone())
            .with_page_index_policy(PageIndexPolicy::Optional);
        let fetch = SuffixFetch { store: store.as_ref(), meta: &meta, suffix: Some(&suffix) };
        reader.load_page_index(fetch).await.unwrap();
        let loaded = reader.finish().unwrap();
        // only the part before the footer's read was fetched
        assert_eq!(meter.bytes(), 2048 + (suffix.start - range.start));
        // and the index is the file's own: what a reader that fetched it all finds
        let mut whole =
            ParquetMetaDataReader::new_with_metadata(metadata).with_page_index_policy(PageIndexPolicy::Optional);
        whole.load_page_index(SuffixFetch { store: store.as_ref(), meta: &meta, suffix: None }).await.unwrap();
        let whole = whole.finish().unwrap();
        assert_eq!(loaded.offset_index(), whole.offset_index());
        assert_eq!(loaded.column_index().map(|c| c.len()), whole.column_index().map(|c| c.len()));
        assert!(loaded.offset_index().is_some_and(|o| o[0][0].page_locations().len() == 500));
    }

    #[tokio::test]
    async fn a_page_index_inside_the_footer_read_costs_nothing() {
        let (store, meter, meta) = file().await;
        let (metadata, suffix) = fetch_footer(store.as_ref(), &meta, 64 * 1024).await.unwrap();
        let range = page_index_range(&metadata).unwrap();
        let read = suffix.bytes.len() as u64;
        let suffix = suffix.within(&range).unwrap();
        assert!(suffix.covers(&range));
        let mut reader =
            ParquetMetaDataReader::new_with_metadata(metadata).with_page_index_policy(PageIndexPolicy::Optional);
        reader
            .load_page_index(SuffixFetch { store: store.as_ref(), meta: &meta, suffix: Some(&suffix) })
            .await
            .unwrap();
        assert!(reader.finish().unwrap().column_index().is_some());
        assert_eq!(meter.bytes(), read);
    }
}
