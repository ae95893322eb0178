//! ORC output for CTAS, INSERT and UNLOAD: DataFusion has no ORC writer, so the rows are split
//! by their partition values here and written with orc-rust's writer, one file per partition,
//! into the staging folder (`key=value/…`, as DataFusion's own writers lay it out). Column
//! types orc-rust cannot write are refused before anything is written.

use std::collections::BTreeMap;
use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, RecordBatch, StringArray, UInt32Array};
use datafusion::arrow::compute::{cast, take};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::dataframe::DataFrame;
use datafusion::execution::SessionState;
use futures::StreamExt;
use object_store::ObjectStoreExt;
use orc_rust::arrow_writer::{ArrowWriter, ArrowWriterBuilder};
use orc_rust::compression::CompressionType;

use crate::catalog::split_location;
use crate::error::{Error, Result};
use crate::write::WriteSpec;

/// Writes the frame's rows as ORC under `staging`; returns the row count.
/// `folders` are the columns that make folders: the partition columns, and the bucket column.
pub async fn stage(
    state: &SessionState,
    frame: DataFrame,
    spec: &WriteSpec,
    folders: &[String],
    staging: &str,
) -> Result<u64> {
    let compression = match spec.compression.as_deref().map(str::to_ascii_uppercase).as_deref() {
        // Athena's default for ORC
        None | Some("ZLIB") | Some("GZIP") => Some(CompressionType::Zlib),
        Some("SNAPPY") => Some(CompressionType::Snappy),
        Some("ZSTD") => Some(CompressionType::Zstd),
        Some("LZ4") => Some(CompressionType::Lz4),
        Some("NONE") => None,
        Some(other) => {
            return Err(Error::InvalidInput(format!(
                "write_compression '{other}' is not one of ZLIB, SNAPPY, ZSTD, LZ4, NONE for ORC"
            )));
        }
    };
    let mut stream = frame.execute_stream().await?;
    let schema = stream.schema();
    let keys: Vec<usize> = folders
        .iter()
        .map(|k| schema.index_of(k).map_err(|_| Error::Internal(format!("no partition column {k} in the rows"))))
        .collect::<Result<_>>()?;
    let data: Vec<usize> = (0..schema.fields().len()).filter(|i| !keys.contains(i)).collect();
    let file_schema =
        Arc::new(Schema::new(data.iter().map(|&i| orc_field(schema.field(i))).collect::<Result<Vec<Field>>>()?));
    let folder = TempDir::new()?;
    // orc-rust's writers are not Send: they live on a blocking thread, fed batches by channel
    let (tx, mut rx) = tokio::sync::mpsc::channel::<RecordBatch>(4);
    let (dir, names) = (folder.0.clone(), folders.to_vec());
    let worker = tokio::task::spawn_blocking(move || -> Result<Vec<(Vec<String>, std::path::PathBuf)>> {
        let mut writers: BTreeMap<Vec<String>, (std::path::PathBuf, ArrowWriter<std::fs::File>)> = BTreeMap::new();
        while let Some(batch) = rx.blocking_recv() {
            for (path, indices) in split(&batch, &keys, &names)? {
                let columns = data
                    .iter()
                    .zip(file_schema.fields())
                    .map(|(&i, field)| {
                        let column = take(batch.column(i), &indices, None).map_err(arrow)?;
                        cast(&column, field.data_type()).map_err(arrow)
                    })
                    .collect::<Result<Vec<ArrayRef>>>()?;
                let part = RecordBatch::try_new(Arc::clone(&file_schema), columns).map_err(arrow)?;
                if !writers.contains_key(&path) {
                    let local = dir.join(format!("{}.orc", writers.len()));
                    let file =
                        std::fs::File::create(&local).map_err(|e| Error::Internal(format!("ORC output: {e}")))?;
                    // small stripes: a thousand partitions' writers are open at once
                    let mut builder =
                        ArrowWriterBuilder::new(file, Arc::clone(&file_schema)).with_stripe_byte_size(8 << 20);
                    if let Some(c) = compression {
                        builder = builder.with_compression(c);
                    }
                    writers.insert(path.clone(), (local, builder.try_build().map_err(orc)?));
                }
                if let Some((_, writer)) = writers.get_mut(&path) {
                    writer.write(&part).map_err(orc)?;
                }
            }
        }
        let mut files = vec![];
        for (path, (local, writer)) in writers {
            writer.close().map_err(orc)?;
            files.push((path, local));
        }
        Ok(files)
    });
    let mut rows = 0u64;
    let mut failed = None;
    while let Some(batch) = stream.next().await {
        match batch {
            Ok(batch) => {
                rows += batch.num_rows() as u64;
                if tx.send(batch).await.is_err() {
                    break; // the writer stopped: its error says why
                }
            }
            Err(e) => {
                failed = Some(Error::from(e));
                break;
            }
        }
    }
    drop(tx);
    let files = worker.await.map_err(|e| Error::Internal(format!("ORC output: {e}")))??;
    if let Some(e) = failed {
        return Err(e);
    }
    let (store_url, prefix) = split_location(staging)?;
    let store = state.runtime_env().object_store(&store_url)?;
    for (folders, local) in files {
        let bytes = std::fs::read(&local).map_err(|e| Error::Internal(format!("ORC output: {e}")))?;
        // each `key=value` one path segment: the store encodes what a value needs (a `/`, say)
        let path = folders.iter().fold(prefix.clone(), |p, f| p.join(f.as_str())).join("part-0.orc");
        store.put(&path, bytes.into()).await.map_err(Error::Storage)?;
    }
    Ok(rows)
}

/// The rows of `batch` by partition folders (`key=value` each; none unpartitioned).
fn split(batch: &RecordBatch, keys: &[usize], names: &[String]) -> Result<Vec<(Vec<String>, UInt32Array)>> {
    if keys.is_empty() {
        return Ok(vec![(vec![], (0..batch.num_rows() as u32).collect())]);
    }
    let values: Vec<StringArray> = keys
        .iter()
        .map(|&k| {
            let text = cast(batch.column(k), &DataType::Utf8).map_err(arrow)?;
            Ok(text.as_any().downcast_ref::<StringArray>().cloned().unwrap_or_else(|| StringArray::new_null(0)))
        })
        .collect::<Result<_>>()?;
    let mut groups: BTreeMap<Vec<String>, Vec<u32>> = BTreeMap::new();
    for row in 0..batch.num_rows() {
        let folders: Vec<String> = names
            .iter()
            .zip(&values)
            // the writer has made NULL partition values Hive's name for NULL already
            .map(|(name, v)| format!("{name}={}", v.value(row)))
            .collect();
        groups.entry(folders).or_default().push(row as u32);
    }
    Ok(groups.into_iter().map(|(path, rows)| (path, UInt32Array::from(rows))).collect())
}

/// The column as orc-rust writes it: views as plain strings and bytes; what it cannot write
/// (decimals, unsigned and nested types, zoned timestamps) is refused, naming the column.
fn orc_field(field: &Field) -> Result<Field> {
    let t = match field.data_type() {
        DataType::Utf8View => DataType::Utf8,
        DataType::BinaryView => DataType::Binary,
        DataType::Timestamp(unit, Some(tz)) if tz.as_ref() == "UTC" || tz.as_ref() == "+00:00" => {
            DataType::Timestamp(*unit, None)
        }
        t @ (DataType::Boolean
        | DataType::Int8
        | DataType::Int16
        | DataType::Int32
        | DataType::Int64
        | DataType::Float32
        | DataType::Float64
        | DataType::Date32
        | DataType::Utf8
        | DataType::LargeUtf8
        | DataType::Binary
        | DataType::LargeBinary
        | DataType::Timestamp(
            TimeUnit::Second | TimeUnit::Millisecond | TimeUnit::Microsecond | TimeUnit::Nanosecond,
            None,
        )) => t.clone(),
        other => {
            return Err(Error::InvalidInput(format!(
                "column {}: glaux cannot write {other} to ORC yet; cast it (to double or varchar, say) or write PARQUET",
                field.name()
            )));
        }
    };
    Ok(Field::new(field.name(), t, true))
}

/// A local folder for the files being written, removed however the statement ends.
struct TempDir(std::path::PathBuf);

impl TempDir {
    fn new() -> Result<Self> {
        let dir = std::env::temp_dir().join(format!("glaux-orc-{}", uuid::Uuid::new_v4()));
        std::fs::create_dir_all(&dir)
            .map_err(|e| Error::Internal(format!("ORC output folder {}: {e}", dir.display())))?;
        Ok(Self(dir))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn orc(e: orc_rust::error::OrcError) -> Error {
    Error::Internal(format!("ORC output: {e}"))
}

fn arrow(e: datafusion::arrow::error::ArrowError) -> Error {
    Error::from(datafusion::error::DataFusionError::from(e))
}
