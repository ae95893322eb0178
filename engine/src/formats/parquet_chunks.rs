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

use crate::catalog::footers::cached;
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
        self.inner.get_bytes(range)
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
