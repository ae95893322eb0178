//! Parquet reads that fill small gaps inside the column chunks a row group reads anyway.
//!
//! Where a page index lets a scan skip pages, the Parquet reader asks for the pages it keeps
//! (and each column's dictionary) as separate byte ranges. Fetched as asked, a point lookup
//! costs a request for every stretch of pages in every column; a reader without a page index
//! fetches each column chunk whole, in one request. Between the two: a gap that lies inside the
//! column chunks this read wants merges while it is no larger than what the request wants, so a
//! read never fetches more than the whole chunks would, nor more than twice the pages it keeps.
//! Gaps over columns the query does not read are left to the store's own merge rule
//! (`storage::RangeMerge`).
//!
//! The same readers keep a page index the scan reads (for a join's filter, which arrives after
//! planning chose not to read it) in the session's metadata cache beside the file's footer.
//! DataFusion keeps it only for that scan: TPC-H's 22 queries at SF1, three times each in one
//! `glaux query`, fetched and decoded their join columns' page indexes at every query.

use std::fmt;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::parquet::ParquetFileReaderFactory;
use datafusion::datasource::physical_plan::{FileScanConfig, ParquetSource};
use datafusion::datasource::source::DataSourceExec;
use datafusion::error::Result;
use datafusion::execution::cache::cache_manager::FileMetadataCache;
use datafusion::parquet::arrow::arrow_reader::ArrowReaderOptions;
use datafusion::parquet::arrow::async_reader::AsyncFileReader;
use datafusion::parquet::file::metadata::ParquetMetaData;
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use futures::FutureExt;
use futures::future::BoxFuture;
use object_store::ObjectMeta;

use crate::catalog::footers::{cached, footer_without_page_index, keep_page_index};
use crate::storage::ranges::{merge_ranges, slice_requests};

/// No gap larger than this merges, however much is read around it (as the store's rule).
const MAX_FILL: u64 = 1024 * 1024;

/// `plan` with its Parquet reads filling gaps inside wanted column chunks, when it is a Parquet
/// file scan; any other plan as it is (and every plan with `GLAUX_NO_CHUNK_FILL` set, to measure
/// what the rule does).
pub(crate) fn fill_chunk_gaps(plan: Arc<dyn ExecutionPlan>, cache: Arc<FileMetadataCache>) -> Arc<dyn ExecutionPlan> {
    if std::env::var_os("GLAUX_NO_CHUNK_FILL").is_some() {
        return plan;
    }
    let Some(exec) = plan.downcast_ref::<DataSourceExec>() else { return plan };
    let Some((config, parquet)) = exec.downcast_to_file_source::<ParquetSource>() else { return plan };
    let Some(inner) = parquet.parquet_file_reader_factory() else { return plan };
    let source =
        parquet.clone().with_parquet_file_reader_factory(Arc::new(ChunkReads { inner: Arc::clone(inner), cache }));
    let mut config: FileScanConfig = config.clone();
    config.file_source = Arc::new(source);
    DataSourceExec::from_data_source(config)
}

/// Readers that fill gaps inside wanted column chunks, over another factory's readers.
struct ChunkReads {
    inner: Arc<dyn ParquetFileReaderFactory>,
    /// Where the files' footers are (planning read them).
    cache: Arc<FileMetadataCache>,
}

impl fmt::Debug for ChunkReads {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChunkReads({:?})", self.inner)
    }
}

impl ParquetFileReaderFactory for ChunkReads {
    fn create_reader(
        &self,
        partition_index: usize,
        file: PartitionedFile,
        metadata_size_hint: Option<usize>,
        metrics: &ExecutionPlanMetricsSet,
    ) -> Result<Box<dyn AsyncFileReader + Send>> {
        let meta = file.object_meta.clone();
        let inner = self.inner.create_reader(partition_index, file, metadata_size_hint, metrics)?;
        Ok(Box::new(ChunkReader { inner, cache: Arc::clone(&self.cache), meta, chunks: None }))
    }
}

/// One file's reader; it learns the file's column chunks from the metadata the scan loads, or
/// (a reader made for the data alone, after another read the metadata) from the cache.
struct ChunkReader {
    inner: Box<dyn AsyncFileReader + Send>,
    cache: Arc<FileMetadataCache>,
    meta: ObjectMeta,
    /// Every column chunk of every row group, by position in the file.
    chunks: Option<Vec<Range<u64>>>,
}

impl AsyncFileReader for ChunkReader {
    fn get_bytes(&mut self, range: Range<u64>) -> BoxFuture<'_, datafusion::parquet::errors::Result<Bytes>> {
        // DataFusion reads a page index it needs through the scan's reader and keeps it for that
        // file's scan alone; kept in the cache, the next query's scan finds it there
        let Some(footer) = footer_without_page_index(self.cache.as_ref(), &self.meta, &range) else {
            return self.inner.get_bytes(range);
        };
        async move {
            let bytes = self.inner.get_bytes(range.clone()).await?;
            keep_page_index(self.cache.as_ref(), &self.meta, footer, range.start, bytes.clone()).await;
            Ok(bytes)
        }
        .boxed()
    }

    fn get_byte_ranges(
        &mut self,
        ranges: Vec<Range<u64>>,
    ) -> BoxFuture<'_, datafusion::parquet::errors::Result<Vec<Bytes>>> {
        if self.chunks.is_none() {
            // no I/O for this: without the footer at hand, the ranges go as they are
            self.chunks = cached(self.cache.as_ref(), &self.meta).map(|m| column_chunks(&m));
        }
        let requests = merge_within_chunks(&ranges, self.chunks.as_deref().unwrap_or_default());
        // only where a gap was filled: ranges that merely touch or overlap (whole chunks of
        // neighbouring columns) go as asked, and the store joins them as it always has
        let length = |rs: &[Range<u64>]| rs.iter().map(|r| r.end.saturating_sub(r.start)).sum::<u64>();
        if length(&requests) <= length(&ranges) {
            return self.inner.get_byte_ranges(ranges);
        }
        async move {
            let fetched = self.inner.get_byte_ranges(requests.clone()).await?;
            Ok(slice_requests(&requests, &fetched, &ranges))
        }
        .boxed()
    }

    fn get_metadata<'a>(
        &'a mut self,
        options: Option<&'a ArrowReaderOptions>,
    ) -> BoxFuture<'a, datafusion::parquet::errors::Result<Arc<ParquetMetaData>>> {
        async move {
            let metadata = self.inner.get_metadata(options).await?;
            self.chunks = Some(column_chunks(&metadata));
            Ok(metadata)
        }
        .boxed()
    }
}

/// The byte range of each column chunk in the file, sorted.
fn column_chunks(metadata: &ParquetMetaData) -> Vec<Range<u64>> {
    let mut chunks: Vec<Range<u64>> = metadata
        .row_groups()
        .iter()
        .flat_map(|g| g.columns())
        .map(|c| {
            let (start, len) = c.byte_range();
            start..start.saturating_add(len)
        })
        .collect();
    chunks.sort_unstable_by_key(|c| c.start);
    chunks
}

/// The requests for `ranges`: sorted, overlapping ones joined, and a gap merged when every byte
/// of it lies in a column chunk some range reads from and it is no larger than what the merged
/// request wants (nor than `MAX_FILL`). With no chunks known, nothing apart merges.
fn merge_within_chunks(ranges: &[Range<u64>], chunks: &[Range<u64>]) -> Vec<Range<u64>> {
    let wanted: Vec<&Range<u64>> = chunks
        .iter()
        .filter(|c| ranges.iter().any(|r| r.start < r.end && r.start < c.end && c.start < r.end))
        .collect();
    // whether `gap` is covered by wanted chunks (they are sorted and do not overlap)
    let covered = |gap: &Range<u64>| {
        let mut at = gap.start;
        for c in &wanted {
            if c.end <= at {
                continue;
            }
            if c.start > at || at >= gap.end {
                break;
            }
            at = c.end;
        }
        at >= gap.end
    };
    merge_ranges(ranges, |gap, wanted_bytes| {
        let len = gap.end - gap.start;
        len <= MAX_FILL && len <= wanted_bytes && covered(&gap)
    })
}

#[cfg(test)]
#[allow(clippy::single_range_in_vec_init)] // a plan of one merged range is what these tests expect
mod tests {
    use super::*;
    use crate::catalog::footers::tests::file;
    use datafusion::datasource::physical_plan::parquet::CachedParquetFileReaderFactory;
    use datafusion::datasource::physical_plan::parquet::metadata::{CachedParquetMetaData, DFParquetMetadata};
    use datafusion::execution::cache::cache_manager::CachedFileMetadataEntry;
    use datafusion::parquet::file::metadata::{PageIndexPolicy, ParquetMetaDataReader};

    #[tokio::test]
    async fn a_page_index_a_scan_reads_is_kept_for_the_next_scan() {
        let (store, meter, meta) = file().await;
        // what planning leaves in the cache when its filters kept every row group: the footer alone
        let footer = DFParquetMetadata::new(store.as_ref(), &meta)
            .with_page_index_policy(Some(PageIndexPolicy::Skip))
            .fetch_metadata()
            .await
            .unwrap();
        assert!(footer.column_index().is_none());
        let cache = datafusion::prelude::SessionContext::new().runtime_env().cache_manager.get_file_metadata_cache();
        cache.put(
            &meta.location,
            CachedFileMetadataEntry::new(meta.clone(), Arc::new(CachedParquetMetaData::new(Arc::clone(&footer)))),
        );
        let factory = ChunkReads {
            inner: Arc::new(CachedParquetFileReaderFactory::new(Arc::clone(&store), Arc::clone(&cache))),
            cache: Arc::clone(&cache),
        };
        let reader = || {
            let file = PartitionedFile::new_from_meta(meta.clone());
            factory.create_reader(0, file, None, &ExecutionPlanMetricsSet::new()).unwrap()
        };
        let skip = ArrowReaderOptions::new().with_page_index_policy(PageIndexPolicy::Skip);
        // the first scan: DataFusion's opener takes the footer, then reads the page index itself
        // (as DataFusion holds it)
        let mut first: Box<dyn AsyncFileReader> = reader();
        let metadata = first.get_metadata(Some(&skip)).await.unwrap();
        assert!(metadata.column_index().is_none());
        let before = meter.bytes();
        let mut loader = ParquetMetaDataReader::new_with_metadata(Arc::unwrap_or_clone(metadata))
            .with_page_index_policy(PageIndexPolicy::Optional);
        loader.load_page_index(&mut first).await.unwrap();
        let loaded = loader.finish().unwrap();
        let index_bytes = meter.bytes() - before;
        assert!(index_bytes > 1024, "the page index of 500 pages: {index_bytes} bytes");
        // the next scan finds it in the cache, the same index, and reads nothing for it
        let mut next = reader();
        let metadata = next.get_metadata(Some(&skip)).await.unwrap();
        assert_eq!(metadata.offset_index(), loaded.offset_index());
        assert!(metadata.column_index().is_some_and(|c| c[0].len() == 1));
        assert_eq!(meter.bytes(), before + index_bytes);
        // other reads of the file (its pages) are not taken for its page index
        let cached_before = cached(cache.as_ref(), &meta).unwrap();
        next.get_bytes(4..1000).await.unwrap();
        assert!(Arc::ptr_eq(&cached_before, &cached(cache.as_ref(), &meta).unwrap()));
    }

    const KIB: u64 = 1024;

    /// A row group of four 300 KiB column chunks from offset 0.
    fn chunks() -> Vec<Range<u64>> {
        (0..4).map(|c| c * 300 * KIB..(c + 1) * 300 * KIB).collect()
    }

    #[test]
    fn pages_of_wanted_chunks_merge_with_the_gaps_between_them() {
        // a dictionary and a page of column 0, then a dictionary and a page of column 1
        let ranges = [0..100 * KIB, 130 * KIB..160 * KIB, 300 * KIB..400 * KIB, 440 * KIB..480 * KIB];
        assert_eq!(merge_within_chunks(&ranges, &chunks()), [0..480 * KIB]);
    }

    #[test]
    fn gaps_over_unread_columns_and_large_gaps_stay() {
        // column 0 and column 2: the gap covers column 1, which nothing reads
        let ranges = [250 * KIB..300 * KIB, 600 * KIB..650 * KIB];
        assert_eq!(merge_within_chunks(&ranges, &chunks()), ranges);
        // two small pages far apart in one chunk: the gap is larger than what is read
        let ranges = [0..10 * KIB, 250 * KIB..260 * KIB];
        assert_eq!(merge_within_chunks(&ranges, &chunks()), ranges);
        // without the file's chunks nothing merges
        let ranges = [0..100 * KIB, 130 * KIB..160 * KIB];
        assert_eq!(merge_within_chunks(&ranges, &[]), ranges);
    }

    #[test]
    fn merged_reads_never_exceed_the_whole_chunks() {
        let ranges = [10 * KIB..20 * KIB, 25 * KIB..290 * KIB, 320 * KIB..330 * KIB];
        let merged = merge_within_chunks(&ranges, &chunks());
        let fetched: u64 = merged.iter().map(|r| r.end - r.start).sum();
        assert!(fetched <= 600 * KIB, "{merged:?}");
        assert_eq!(merged, [10 * KIB..330 * KIB]);
    }
}
