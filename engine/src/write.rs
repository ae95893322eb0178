//! Writing a query's rows as a table's files — CTAS, INSERT INTO, UNLOAD. Files are written
//! under a staging prefix first (`<location>/_glaux_staging/<query id>/`, which readers skip as
//! Hive skips `_temporary/`), then moved to their final keys, named after the query so that two
//! writers never collide. The caller changes the catalog and then commits; a failure, a cancel
//! or a timeout before that deletes everything the statement wrote.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::arrow::datatypes::DataType;
use datafusion::common::Column;
use datafusion::common::config::{CsvOptions, JsonOptions, TableParquetOptions};
use datafusion::common::parsers::CompressionTypeVariant;
use datafusion::dataframe::{DataFrame, DataFrameWriteOptions};
use datafusion::execution::SessionState;
use datafusion::functions::expr_fn::coalesce;
use datafusion::logical_expr::{Expr, LogicalPlan, cast, col, lit};
use futures::TryStreamExt;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};

use crate::catalog::{NULL_PARTITION, split_location};
use crate::error::{Error, Result};

/// The folder, under a written location, where a statement's files wait to be moved.
pub const STAGING: &str = "_glaux_staging";

/// The file formats glaux writes, as CTAS and UNLOAD name them.
#[derive(Debug, Clone, PartialEq)]
pub enum WriteFormat {
    Parquet,
    Orc,
    Json,
    /// Delimited text without a header, as Hive's LazySimpleSerDe reads it.
    Text {
        delimiter: u8,
    },
}

impl WriteFormat {
    /// `format = '…'` of a CTAS or UNLOAD; `delimiter` is its `field_delimiter`.
    pub fn named(format: &str, delimiter: Option<&str>) -> Result<Self> {
        let delimiter = match delimiter {
            None => None,
            Some(d) if d.len() == 1 => Some(d.as_bytes()[0]),
            Some(d) => {
                return Err(Error::InvalidInput(format!("field_delimiter must be one character, not '{d}'")));
            }
        };
        match format.to_ascii_uppercase().as_str() {
            "PARQUET" => Ok(Self::Parquet),
            "ORC" => Ok(Self::Orc),
            "JSON" => Ok(Self::Json),
            // Athena's TEXTFILE default is Hive's \001
            "TEXTFILE" => Ok(Self::Text { delimiter: delimiter.unwrap_or(1) }),
            "AVRO" | "ION" => Err(Error::InvalidInput(format!(
                "format '{format}' cannot be written by glaux yet; use PARQUET, ORC, JSON or TEXTFILE"
            ))),
            other => Err(Error::InvalidInput(format!(
                "unknown format '{other}'; glaux writes PARQUET, ORC, JSON or TEXTFILE"
            ))),
        }
    }

    /// The `STORED AS` name of the format (for the catalog entry).
    pub fn stored_as(&self) -> &'static str {
        match self {
            Self::Parquet => "PARQUET",
            Self::Orc => "ORC",
            Self::Json => "JSON",
            Self::Text { .. } => "TEXTFILE",
        }
    }

    fn extension(&self) -> &'static str {
        match self {
            Self::Parquet => "parquet",
            Self::Orc => "orc",
            Self::Json => "json",
            Self::Text { .. } => "txt",
        }
    }
}

/// Where and how a statement writes.
#[derive(Debug, Clone)]
pub struct WriteSpec {
    /// The folder the files end up in (`s3://bucket/prefix/` or a local folder), with a `/`.
    pub location: String,
    pub format: WriteFormat,
    /// `write_compression` / `compression`: SNAPPY, GZIP, ZSTD, … or NONE.
    pub compression: Option<String>,
    /// Hive partition columns, the last columns of the rows, in this order.
    pub partitioned_by: Vec<String>,
    /// Hive bucketing: the columns and the number of buckets (one file each per partition).
    pub buckets: Option<(Vec<String>, i32)>,
    /// Files added to a live table (INSERT): named `ins-<id>_…`, and read only once a commit
    /// marker for the query sits in their folder.
    pub insert: bool,
}

/// The folder, in each folder an INSERT wrote to, holding one empty object per committed INSERT.
pub const COMMITS: &str = "_glaux_commits";

/// The query of an INSERT's file (`ins-<id>_00000.parquet`), if the name is one.
pub fn inserted_by(file_name: &str) -> Option<&str> {
    file_name.strip_prefix("ins-").and_then(|rest| rest.rsplit_once('_')).map(|(id, _)| id)
}

/// Commits an INSERT for readers: a marker in every folder it wrote to. Until then glaux's
/// scans leave its files out, so an insert is seen whole or not at all.
pub async fn mark_committed(state: &SessionState, written: &Written, query_id: &str) -> Result<()> {
    let folders: BTreeSet<&str> = written.files.iter().map(|f| f.folder.as_str()).collect();
    for folder in folders {
        let (store_url, path) = split_location(&format!("{folder}{COMMITS}/{query_id}"))?;
        let store = state.runtime_env().object_store(&store_url)?;
        store.put(&path, Vec::<u8>::new().into()).await.map_err(Error::Storage)?;
    }
    Ok(())
}

/// The folder-making column that carries a row's bucket while it is written.
const BUCKET: &str = "__glaux_bucket";

/// One file a statement wrote.
#[derive(Debug, Clone)]
pub struct WrittenFile {
    /// Its final location (`s3://bucket/key`).
    pub location: String,
    pub size: u64,
    /// The folder it is in (a partition's location), with a `/`.
    pub folder: String,
    /// Its partition's values, in `partitioned_by` order (empty when unpartitioned).
    pub values: Vec<String>,
}

/// What a statement wrote.
#[derive(Debug, Clone, Default)]
pub struct Written {
    pub files: Vec<WrittenFile>,
    pub rows: u64,
}

impl Written {
    pub fn bytes(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// The distinct partitions written, with their folders, in order.
    pub fn partitions(&self) -> Vec<(Vec<String>, String)> {
        self.files.iter().map(|f| (f.values.clone(), f.folder.clone())).collect::<BTreeSet<_>>().into_iter().collect()
    }

    /// Athena's data manifest: one written file per line.
    pub fn manifest(&self) -> String {
        self.files.iter().map(|f| format!("{}\n", f.location)).collect()
    }
}

/// The location as a folder: with one trailing `/`.
pub fn folder(location: &str) -> String {
    format!("{}/", location.trim_end_matches('/'))
}

/// What a statement has written and not yet committed: removed unless [`Uncommitted::commit`]
/// is called — when the statement fails, and when its future is dropped (a cancel, a timeout),
/// in a task of its own then. The caller commits once the catalog knows the files.
pub struct Uncommitted {
    pub written: Written,
    undo: Undo,
}

impl Uncommitted {
    /// The files stay; the staging folder goes.
    pub async fn commit(mut self) {
        self.undo.moved.clear();
        self.undo.clean().await;
    }
}

struct Undo {
    store: Arc<dyn ObjectStore>,
    staging: Path,
    /// The staging folder on local disk, whose empty directories stay behind otherwise.
    local: Option<std::path::PathBuf>,
    moved: Vec<Path>,
    done: bool,
}

/// How many times, a second apart, a cancelled statement's staging folder is looked at again.
const LATE_FILE_CHECKS: usize = 30;

impl Undo {
    async fn staging_is_empty(&self) -> bool {
        matches!(self.store.list(Some(&self.staging)).try_next().await, Ok(None))
    }

    async fn clean(&mut self) {
        let _ = delete_under(&self.store, &self.staging).await;
        for file in std::mem::take(&mut self.moved) {
            let _ = self.store.delete(&file).await;
        }
        if let Some(dir) = &self.local {
            let _ = std::fs::remove_dir_all(dir);
            let _ = dir.parent().map(std::fs::remove_dir);
        }
        self.done = true;
    }
}

impl Drop for Undo {
    fn drop(&mut self) {
        if self.done {
            return;
        }
        let mut rest = Undo {
            store: Arc::clone(&self.store),
            staging: self.staging.clone(),
            local: self.local.take(),
            moved: std::mem::take(&mut self.moved),
            done: false,
        };
        self.done = true;
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                rest.clean().await;
                // the writer's own tasks, aborted with the statement, may still finish a file
                // whose upload was already sent (many at once when a statement writes to many
                // partitions): look again each second until the folder has been empty twice
                let mut empty = 0;
                for _ in 0..LATE_FILE_CHECKS {
                    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
                    if rest.staging_is_empty().await {
                        empty += 1;
                        if empty == 2 {
                            break;
                        }
                    } else {
                        empty = 0;
                        rest.clean().await;
                    }
                }
            });
        } else {
            rest.done = true;
        }
    }
}

/// Writes the rows of `plan` as `spec` says, staged and moved into place; the caller commits.
pub async fn write(state: &SessionState, plan: LogicalPlan, spec: &WriteSpec, query_id: &str) -> Result<Uncommitted> {
    let location = folder(&spec.location);
    let (store_url, base) = split_location(&location)?;
    let store = state.runtime_env().object_store(&store_url)?;
    let staging = format!("{location}{STAGING}/{query_id}/");
    let (_, staging_prefix) = split_location(&staging)?;
    let local =
        store_url.as_str().starts_with("file://").then(|| std::path::Path::new("/").join(staging_prefix.as_ref()));
    // S3 locations are URLs (`s3://bucket/…`); local ones plain paths
    let root = local.is_none().then(|| store_url.as_str().trim_end_matches('/').to_string());
    let mut undo =
        Undo { store: Arc::clone(&store), staging: staging_prefix.clone(), local, moved: vec![], done: false };
    match stage_and_move(state, plan, spec, &staging, &staging_prefix, &base, root.as_deref(), &mut undo, query_id)
        .await
    {
        Ok(written) => Ok(Uncommitted { written, undo }),
        Err(error) => {
            undo.clean().await;
            Err(error)
        }
    }
}

#[allow(clippy::too_many_arguments)]
async fn stage_and_move(
    state: &SessionState,
    plan: LogicalPlan,
    spec: &WriteSpec,
    staging: &str,
    staging_prefix: &Path,
    base: &Path,
    root: Option<&str>,
    undo: &mut Undo,
    query_id: &str,
) -> Result<Written> {
    let rows = stage(state, plan, spec, staging).await?;
    let store = Arc::clone(&undo.store);
    let staged: Vec<_> = store.list(Some(staging_prefix)).try_collect().await.map_err(Error::Storage)?;
    let mut files = vec![];
    let extension = format!("{}{}", spec.format.extension(), compression_suffix(spec));
    for (n, meta) in staged.into_iter().enumerate() {
        let relative: Vec<String> = match meta.location.prefix_match(staging_prefix) {
            Some(parts) => parts.map(|p| p.as_ref().to_string()).collect(),
            None => continue,
        };
        let Some((_, folders)) = relative.split_last() else { continue };
        // the segments as written (a `/` in a value is encoded in its segment): decoded here,
        // encoded once again by the store when joined
        let mut folders: Vec<String> =
            folders.iter().map(|f| percent_encoding::percent_decode_str(f).decode_utf8_lossy().into_owned()).collect();
        let values = partition_values(&folders, &spec.partitioned_by)?;
        // a bucket's file starts with its number, as Hive and Trino name them (000003_0_…)
        let bucket = folders.last().and_then(|f| f.strip_prefix(BUCKET)).and_then(|v| v.strip_prefix('='));
        let name = match bucket.map(str::parse::<u32>) {
            Some(Ok(b)) => format!("{b:06}_0_{query_id}_{n:05}.{extension}"),
            Some(Err(_)) => {
                return Err(Error::Internal(format!("a written file has a bad bucket folder {:?}", folders.last())));
            }
            None if spec.insert => format!("ins-{query_id}_{n:05}.{extension}"),
            None => format!("{query_id}_{n:05}.{extension}"),
        };
        if bucket.is_some() {
            folders.pop();
        }
        let target = folders.iter().fold(base.clone(), |p, f| p.join(f.as_str())).join(name.as_str());
        store.rename(&meta.location, &target).await.map_err(Error::Storage)?;
        undo.moved.push(target.clone());
        let location = match root {
            // a location URL is percent-decoded into a key when read: a `%` of the key (a `/` in
            // a partition value is `%2F` there) is written as `%25`
            Some(root) => format!("{root}/{}", target.as_ref().replace('%', "%25")),
            // a local path is taken as it is
            None => format!("/{target}"),
        };
        let folder = location.rsplit_once('/').map(|(f, _)| format!("{f}/")).unwrap_or_default();
        files.push(WrittenFile { location, folder, size: meta.size, values });
    }
    Ok(Written { files, rows })
}

/// Writes the rows to the staging folder with DataFusion's writers; returns the row count.
async fn stage(state: &SessionState, plan: LogicalPlan, spec: &WriteSpec, staging: &str) -> Result<u64> {
    let frame = DataFrame::new(state.clone(), plan);
    // DataFusion names a NULL partition `key=`; Hive, Athena and glaux's readers take
    // `key=__HIVE_DEFAULT_PARTITION__` for NULL. A bucketed write carries each row's bucket
    // as one more folder-making column, which the move turns into the file's name.
    let mut folders = spec.partitioned_by.clone();
    let frame = if spec.partitioned_by.is_empty() && spec.buckets.is_none() {
        frame
    } else {
        let mut columns: Vec<Expr> = frame
            .schema()
            .fields()
            .iter()
            .map(|f| {
                let column = col(Column::from_name(f.name()));
                if spec.partitioned_by.iter().any(|k| k.eq_ignore_ascii_case(f.name())) {
                    coalesce(vec![cast(column, DataType::Utf8), lit(NULL_PARTITION)]).alias(f.name())
                } else {
                    column
                }
            })
            .collect();
        if let Some((by, count)) = &spec.buckets {
            let mut args = vec![lit(i64::from(*count))];
            args.extend(by.iter().map(|c| col(Column::from_name(c))));
            columns.push(crate::bucketing::udf().call(args).alias(BUCKET));
            folders.push(BUCKET.to_string());
        }
        frame.select(columns)?
    };
    let options = DataFrameWriteOptions::new().with_partition_by(folders.clone());
    let compression = spec.compression.as_deref().map(str::to_ascii_uppercase);
    let batches = match &spec.format {
        WriteFormat::Parquet => {
            let mut parquet = TableParquetOptions::default();
            // Athena's default for Parquet is GZIP
            parquet.global.compression = Some(match compression.as_deref() {
                None | Some("GZIP") => "gzip(6)".into(),
                Some("NONE") => "uncompressed".into(),
                Some("SNAPPY") => "snappy".into(),
                Some("ZSTD") => "zstd(3)".into(),
                Some("LZ4") => "lz4".into(),
                Some(other) => {
                    return Err(Error::InvalidInput(format!(
                        "write_compression '{other}' is not one of SNAPPY, GZIP, ZSTD, LZ4, NONE for PARQUET"
                    )));
                }
            });
            frame.write_parquet(staging, options, Some(parquet)).await?
        }
        WriteFormat::Orc => return crate::write_orc::stage(state, frame, spec, &folders, staging).await,
        WriteFormat::Json => {
            let json = JsonOptions { compression: text_compression(compression.as_deref())?, ..Default::default() };
            frame.write_json(staging, options, Some(json)).await?
        }
        WriteFormat::Text { delimiter } => {
            let csv = CsvOptions {
                has_header: Some(false),
                delimiter: *delimiter,
                null_value: Some("\\N".into()),
                compression: text_compression(compression.as_deref())?,
                ..Default::default()
            };
            frame.write_csv(staging, options, Some(csv)).await?
        }
    };
    // DataFusion's writers answer with one `count` row
    let count = batches
        .first()
        .and_then(|b| b.column(0).as_any().downcast_ref::<datafusion::arrow::array::UInt64Array>().map(|a| a.value(0)))
        .unwrap_or_default();
    Ok(count)
}

/// Text and JSON: Athena's default is GZIP.
fn text_compression(name: Option<&str>) -> Result<CompressionTypeVariant> {
    Ok(match name {
        None | Some("GZIP") => CompressionTypeVariant::GZIP,
        Some("NONE") => CompressionTypeVariant::UNCOMPRESSED,
        Some("ZSTD") => CompressionTypeVariant::ZSTD,
        Some("BZIP2") => CompressionTypeVariant::BZIP2,
        Some(other) => {
            return Err(Error::InvalidInput(format!(
                "compression '{other}' is not one of GZIP, ZSTD, BZIP2, NONE for text and JSON"
            )));
        }
    })
}

/// The extension a text file's codec adds, so readers recognise it.
fn compression_suffix(spec: &WriteSpec) -> &'static str {
    if matches!(spec.format, WriteFormat::Parquet | WriteFormat::Orc) {
        return "";
    }
    match spec.compression.as_deref().map(str::to_ascii_uppercase).as_deref() {
        None | Some("GZIP") => ".gz",
        Some("ZSTD") => ".zst",
        Some("BZIP2") => ".bz2",
        _ => "",
    }
}

/// The partition values of a file from its `key=value/` folders, in `partitioned_by` order.
fn partition_values(folders: &[String], partitioned_by: &[String]) -> Result<Vec<String>> {
    partitioned_by
        .iter()
        .map(|key| {
            folders
                .iter()
                .find_map(|f| {
                    f.split_once('=').filter(|(k, _)| k.eq_ignore_ascii_case(key)).map(|(_, v)| v.to_string())
                })
                .ok_or_else(|| Error::Internal(format!("a written file has no folder for partition column {key}")))
        })
        .collect()
}

/// Deletes every object under `prefix`.
async fn delete_under(store: &Arc<dyn ObjectStore>, prefix: &Path) -> Result<()> {
    let objects: Vec<_> = store.list(Some(prefix)).try_collect().await.map_err(Error::Storage)?;
    for meta in objects {
        store.delete(&meta.location).await.map_err(Error::Storage)?;
    }
    Ok(())
}

/// Whether anything other than staging leftovers lies under `location` (Athena refuses to
/// write a CTAS or UNLOAD into a location that holds objects).
pub async fn holds_objects(state: &SessionState, location: &str) -> Result<bool> {
    let (store_url, prefix) = split_location(&folder(location))?;
    let store = state.runtime_env().object_store(&store_url)?;
    let mut listing = store.list(Some(&prefix));
    while let Some(meta) = listing.try_next().await.map_err(Error::Storage)? {
        let hidden = meta
            .location
            .prefix_match(&prefix)
            .is_some_and(|mut parts| parts.next().is_some_and(|p| p.as_ref() == STAGING));
        if !hidden {
            return Ok(true);
        }
    }
    Ok(false)
}
