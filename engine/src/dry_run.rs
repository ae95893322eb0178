//! Dry run: what a query would read, planned but not run. Files come from the plan (catalog
//! tables are pruned and listed as for a real run); for Parquet and ORC the bytes of the column
//! chunks (streams) the query needs are summed from the files' footers, whose reads are the dry
//! run's own cost.

use std::collections::HashSet;
use std::ops::Range;
use std::sync::Arc;

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::datasource::physical_plan::FileScanConfig;
use datafusion::execution::context::SessionState;
use datafusion::parquet::file::metadata::{ParquetMetaData, ParquetMetaDataReader};
use datafusion::physical_expr::utils::collect_columns;
use datafusion::physical_plan::ExecutionPlan;
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use serde::Serialize;

use datafusion::arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema};

use crate::billing::Pricing;
use crate::error::{Error, Result};
use crate::formats::orc::{RangeReader, StripePlan};
use crate::storage::RangeMerge;

/// The query of `EXPLAIN (TYPE IO) <query>`, Athena's (and Trino's) way to ask for a dry run.
pub fn explain_io(sql: &str) -> Option<&str> {
    static PREFIX: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
        regex::Regex::new(r"(?is)^\s*EXPLAIN\s*\(\s*TYPE\s+IO\s*\)\s*").expect("a valid regex")
    });
    PREFIX.find(sql).map(|m| &sql[m.end()..])
}

/// The dry run as rows: one per scan, then a total with the billed bytes and cost it bounds.
pub fn rows(scans: &[ScanEstimate], pricing: &Pricing) -> Result<RecordBatch> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("location", DataType::Utf8, false),
        Field::new("format", DataType::Utf8, true),
        Field::new("files", DataType::UInt64, false),
        Field::new("file_bytes", DataType::UInt64, false),
        Field::new("bytes_upper_bound", DataType::UInt64, false),
        Field::new("billed_bytes_upper_bound", DataType::UInt64, true),
        Field::new("cost_usd_upper_bound", DataType::Float64, true),
    ]));
    let bound: u64 = scans.iter().map(|s| s.bytes_upper_bound).sum();
    let billed = pricing.billed_bytes(bound);
    let n = scans.len();
    let mut location: Vec<String> = scans.iter().map(|s| s.location.clone()).collect();
    location.push("total".into());
    let mut format: Vec<Option<String>> = scans.iter().map(|s| Some(s.format.clone())).collect();
    format.push(None);
    let sum = |f: &dyn Fn(&ScanEstimate) -> u64| -> Vec<u64> {
        let mut v: Vec<u64> = scans.iter().map(f).collect();
        v.push(v.iter().sum());
        v
    };
    let mut billed_col: Vec<Option<u64>> = vec![None; n];
    billed_col.push(Some(billed));
    let mut cost: Vec<Option<f64>> = vec![None; n];
    cost.push(Some(pricing.cost_usd(billed)));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(location)),
        Arc::new(StringArray::from(format)),
        Arc::new(UInt64Array::from(sum(&|s| s.files as u64))),
        Arc::new(UInt64Array::from(sum(&|s| s.file_bytes))),
        Arc::new(UInt64Array::from(sum(&|s| s.bytes_upper_bound))),
        Arc::new(UInt64Array::from(billed_col)),
        Arc::new(Float64Array::from(cost)),
    ];
    RecordBatch::try_new(schema, columns).map_err(|e| Error::from(datafusion::error::DataFusionError::from(e)))
}

/// A Parquet file's footer: the last 8 bytes give the metadata's length, then the metadata.
async fn footer(store: &dyn ObjectStore, location: &Path, size: u64) -> Result<(ParquetMetaData, u64)> {
    let fail = |reason: String| Error::Location { location: location.to_string(), reason };
    if size < 12 {
        return Err(fail(format!("{size} bytes is too small for a Parquet file")));
    }
    let tail = store.get_range(location, size - 8..size).await?;
    if &tail[4..8] != b"PAR1" {
        return Err(fail("not a Parquet file (no PAR1 at its end)".into()));
    }
    let length = u64::from(u32::from_le_bytes([tail[0], tail[1], tail[2], tail[3]]));
    if length + 8 > size {
        return Err(fail(format!("footer length {length} exceeds the file")));
    }
    let bytes = store.get_range(location, size - 8 - length..size - 8).await?;
    let meta = ParquetMetaDataReader::decode_metadata(&bytes).map_err(|e| fail(e.to_string()))?;
    Ok((meta, length + 8))
}

/// What reading `columns` of an ORC file fetches, as glaux's ORC reader fetches it: the file's
/// tail (read here the same way, so its size is what this read fetched), then per stripe its
/// footer and the streams of the projected columns, less what the kept tail already holds.
/// Each stripe footer is read to learn the streams. Returns (tail bytes, the rest).
async fn orc_bound(
    store: &Arc<dyn ObjectStore>,
    meta: &ObjectMeta,
    columns: &HashSet<String>,
    merge: &RangeMerge,
) -> Result<(u64, u64)> {
    use orc_rust::projection::ProjectionMask;
    use orc_rust::reader::AsyncChunkReader;

    let fail = |reason: String| Error::Location { location: meta.location.to_string(), reason };
    let mut reader = RangeReader::new(Arc::clone(store), meta.clone());
    let file = orc_rust::reader::metadata::read_metadata_async(&mut reader).await.map_err(|e| fail(e.to_string()))?;
    let tail_start = reader.tail_start().unwrap_or(meta.size);
    let root = file.root_data_type();
    let names: Vec<&String> = columns.iter().collect();
    let plan = StripePlan::new(&file, &ProjectionMask::named_roots(root, &names));
    // per stripe, as the reader fetches it: its footer, then the wanted streams together, merged
    // by the store's rule; what lies inside the kept tail costs nothing
    let mut data = 0;
    for stripe in file.stripe_metadatas() {
        let (offset, length) = (stripe.footer_offset(), stripe.footer_length());
        let bytes = reader.get_bytes(offset, length).await.map_err(|e| fail(format!("stripe footer: {e}")))?;
        if offset < tail_start {
            data += length;
        }
        let streams: Vec<_> = plan
            .streams(stripe.offset(), bytes)
            .map_err(|e| fail(format!("stripe footer: {e}")))?
            .into_iter()
            .filter(|r| r.start < tail_start)
            .collect();
        data += merge.fetched(&streams);
    }
    Ok((meta.size - tail_start, data))
}

/// What one scan in the plan would read.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct ScanEstimate {
    /// The store and the folder the scan's files share, e.g. `s3://bucket/sales/year=2024/month=1`.
    pub location: String,
    pub format: String,
    pub files: usize,
    pub file_bytes: u64,
    /// At most this many bytes would be read: the needed column chunks for Parquet, whole
    /// files otherwise.
    pub bytes_upper_bound: u64,
}

/// Every file scan of `plan`, estimated. Parquet footers are read through `state`'s stores.
pub async fn estimate(plan: &Arc<dyn ExecutionPlan>, state: &SessionState) -> Result<Vec<ScanEstimate>> {
    let mut scans: Vec<(FileScanConfig, String, Option<HashSet<String>>)> = vec![];
    plan.apply(|node| {
        if let Some(config) = crate::formats::file_scan(node.as_ref()) {
            let source = config.file_source();
            // the columns the scan outputs or filters on; None = all
            let needed = source.projection().map(|p| {
                let mut names: HashSet<String> = HashSet::new();
                for e in p.iter() {
                    names.extend(collect_columns(&e.expr).into_iter().map(|c| c.name().to_string()));
                }
                if let Some(filter) = source.filter() {
                    names.extend(collect_columns(&filter).into_iter().map(|c| c.name().to_string()));
                }
                names
            });
            scans.push((config.clone(), source.file_type().to_string(), needed));
        }
        Ok(TreeNodeRecursion::Continue)
    })?;
    let mut out = vec![];
    for (config, format, needed) in scans {
        // a large file may be split into byte ranges across partitions: its data counts once,
        // its footer once per part (every part's reader reads it)
        let mut parts: std::collections::HashMap<Path, u64> = std::collections::HashMap::new();
        let files: Vec<_> = config
            .file_groups
            .iter()
            .flat_map(|g| g.files().iter())
            .filter(|f| {
                let n = parts.entry(f.object_meta.location.clone()).or_default();
                *n += 1;
                *n == 1
            })
            .collect();
        let store = state.runtime_env().object_store(&config.object_store_url)?;
        let file_bytes: u64 = files.iter().map(|f| f.object_meta.size).sum();
        let local = config.object_store_url.as_str().starts_with("file://");
        let hint = state.config_options().execution.parquet.metadata_size_hint.map(|h| h as u64).unwrap_or(0);
        // the rule remote stores merge nearby reads by (settings as the stores read them)
        let merge = RangeMerge::from_lookup(|k| std::env::var(k).ok());
        let mut bound = 0;
        for f in &files {
            let size = f.object_meta.size;
            let readers = parts.get(&f.object_meta.location).copied().unwrap_or(1);
            bound += match (format.as_str(), &needed) {
                ("parquet", Some(columns)) => {
                    let (meta, footer_len) = footer(store.as_ref(), &f.object_meta.location, size).await?;
                    let ranges: Vec<Range<u64>> = meta
                        .row_groups()
                        .iter()
                        .flat_map(|rg| rg.columns())
                        .filter(|c| c.column_path().parts().first().is_some_and(|root| columns.contains(root)))
                        .map(|c| {
                            let (start, len) = c.byte_range();
                            start..start + len
                        })
                        .collect();
                    // local disk reads exactly the chunks; remote stores merge nearby reads
                    let data =
                        if local { ranges.iter().map(|r| r.end - r.start).sum() } else { merge.fetched(&ranges) };
                    // the reader fetches the footer with a size hint, possibly more than it
                    footer_len.max(hint.min(size)) * readers + data
                }
                ("orc", Some(columns)) => {
                    let (tail, data) = orc_bound(&store, &f.object_meta, columns, &merge).await?;
                    tail * readers + data
                }
                _ => size,
            };
        }
        // the folder all the scan's files share, e.g. `s3://bucket/sales/year=2024`
        let folders: Vec<Vec<String>> = files
            .iter()
            .map(|f| {
                let parts: Vec<String> = f.object_meta.location.parts().map(|p| p.as_ref().to_string()).collect();
                parts[..parts.len().saturating_sub(1)].to_vec()
            })
            .collect();
        let shared = folders.first().map_or(0, |first| {
            (0..first.len()).take_while(|&i| folders.iter().all(|f| f.get(i) == first.get(i))).count()
        });
        let prefix = folders.first().map(|f| f[..shared].join("/")).unwrap_or_default();
        let location = format!("{}{prefix}", config.object_store_url.as_str());
        out.push(ScanEstimate { location, format, files: files.len(), file_bytes, bytes_upper_bound: bound });
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn explain_io_is_recognised() {
        assert_eq!(explain_io("explain (type io) SELECT 1"), Some("SELECT 1"));
        assert_eq!(explain_io("  EXPLAIN(TYPE  IO)\nSELECT 1"), Some("SELECT 1"));
        assert_eq!(explain_io("EXPLAIN SELECT 1"), None);
    }
}
