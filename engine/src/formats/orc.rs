//! ORC through orc-rust, reading only the stripes and columns a query needs.
//!
//! The object's size comes from the listing (`ObjectMeta`), never from a GET: learning the length
//! by fetching the object would stream — and bill — every byte of the file.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use bytes::Bytes;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::catalog::Session;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{GetExt, Statistics};
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::datasource::file_format::{FileFormat, FileFormatFactory};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{CsvSource, FileOpenFuture, FileOpener, FileScanConfig, FileSource};
use datafusion::datasource::projection::{ProjectionOpener, SplitProjection};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::error::{DataFusionError, Result};
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use datafusion::physical_plan::projection::ProjectionExprs;
use datafusion::physical_plan::{ExecutionPlan, PhysicalExpr};
use futures::future::BoxFuture;
use futures::{FutureExt, StreamExt, TryStreamExt};
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use orc_rust::ArrowReaderBuilder;
use orc_rust::projection::ProjectionMask;
use orc_rust::reader::AsyncChunkReader;
use orc_rust::reader::metadata::read_metadata_async;

/// Reads byte ranges of one object; its length is the listed size. The first read that reaches
/// the end of the file (the ORC tail, 16 KiB or the whole of a small file) is kept, and later
/// reads inside it are served from memory, so a small file is not fetched twice.
///
/// Once the reader knows which columns the scan wants ([`RangeReader::plan`]), reading a
/// stripe's footer also fetches that stripe's streams of those columns in one `get_ranges`
/// call — merged by the store's rule and fetched side by side — rather than one request after
/// another as the ORC reader asks for them; the reader's own reads are then served from memory.
pub(crate) struct RangeReader {
    store: Arc<dyn ObjectStore>,
    meta: ObjectMeta,
    tail: Option<(u64, Bytes)>,
    plan: Arc<Mutex<Option<StripePlan>>>,
    /// Streams fetched ahead, by (offset, length), each handed out once.
    fetched: HashMap<(u64, u64), Bytes>,
}

/// The stripes of a file and the columns a scan reads from them.
pub(crate) struct StripePlan {
    compression: Option<orc_rust::compression::Compression>,
    projected: orc_rust::schema::RootDataType,
    /// Each stripe's start, by the offset of its footer.
    stripes: HashMap<u64, u64>,
}

impl StripePlan {
    pub(crate) fn new(file: &orc_rust::reader::metadata::FileMetadata, mask: &ProjectionMask) -> Self {
        Self {
            compression: file.compression(),
            projected: file.root_data_type().project(mask),
            stripes: file.stripe_metadatas().iter().map(|s| (s.footer_offset(), s.offset())).collect(),
        }
    }

    /// The byte ranges of the projected columns' streams in the stripe starting at `start`,
    /// whose footer is `footer`.
    pub(crate) fn streams(&self, start: u64, footer: Bytes) -> std::io::Result<Vec<std::ops::Range<u64>>> {
        use prost::Message;
        use std::io::Read;
        let mut decoded = vec![];
        orc_rust::compression::Decompressor::new(footer, self.compression, vec![]).read_to_end(&mut decoded)?;
        let footer = orc_rust::proto::StripeFooter::decode(decoded.as_slice()).map_err(std::io::Error::other)?;
        // streams lie one after another from the stripe's start, in the footer's order
        let mut offset = start;
        let mut out = vec![];
        for s in &footer.streams {
            if self.projected.contains_column_index(s.column() as usize) && s.length() > 0 {
                out.push(offset..offset + s.length());
            }
            offset += s.length();
        }
        Ok(out)
    }
}

impl RangeReader {
    pub(crate) fn new(store: Arc<dyn ObjectStore>, meta: ObjectMeta) -> Self {
        Self { store, meta, tail: None, plan: Arc::default(), fetched: HashMap::new() }
    }

    /// Where the kept tail starts, once it has been read.
    pub(crate) fn tail_start(&self) -> Option<u64> {
        self.tail.as_ref().map(|(start, _)| *start)
    }

    /// A handle through which the scan tells the reader what it will read, once it knows.
    pub(crate) fn plan(&self) -> Arc<Mutex<Option<StripePlan>>> {
        Arc::clone(&self.plan)
    }

    fn kept(&self, offset: u64, length: u64) -> Option<Bytes> {
        let (start, bytes) = self.tail.as_ref()?;
        (offset >= *start && offset + length <= start + bytes.len() as u64).then(|| {
            let from = (offset - start) as usize;
            bytes.slice(from..from + length as usize)
        })
    }
}

impl AsyncChunkReader for RangeReader {
    fn len(&mut self) -> BoxFuture<'_, std::io::Result<u64>> {
        let size = self.meta.size;
        async move { Ok(size) }.boxed()
    }

    fn get_bytes(&mut self, offset: u64, length: u64) -> BoxFuture<'_, std::io::Result<Bytes>> {
        if let Some(fetched) = self.fetched.remove(&(offset, length)) {
            return async move { Ok(fetched) }.boxed();
        }
        let location = self.meta.location.clone();
        let size = self.meta.size;
        async move {
            let bytes = match self.kept(offset, length) {
                Some(kept) => kept,
                None => {
                    let bytes = self
                        .store
                        .get_range(&location, offset..offset + length)
                        .await
                        .map_err(std::io::Error::other)?;
                    if self.tail.is_none() && offset + length == size {
                        self.tail = Some((offset, bytes.clone()));
                    }
                    bytes
                }
            };
            // a stripe footer: fetch the stripe's wanted streams together now
            let ranges = {
                let plan = self.plan.lock().map_err(|_| std::io::Error::other("stripe plan poisoned"))?;
                match plan.as_ref().and_then(|p| Some((p, *p.stripes.get(&offset)?))) {
                    Some((plan, start)) => plan.streams(start, bytes.clone())?,
                    None => vec![],
                }
            };
            let ranges: Vec<_> = ranges.into_iter().filter(|r| self.kept(r.start, r.end - r.start).is_none()).collect();
            if !ranges.is_empty() {
                let got = self.store.get_ranges(&location, &ranges).await.map_err(std::io::Error::other)?;
                self.fetched = ranges.into_iter().map(|r| (r.start, r.end - r.start)).zip(got).collect();
            }
            Ok(bytes)
        }
        .boxed()
    }
}

fn orc_error(meta: &ObjectMeta, e: impl fmt::Display) -> DataFusionError {
    DataFusionError::Execution(format!("ORC object '{}': {e}", meta.location))
}

/// Registers `STORED AS ORC` and the `.orc` extension.
#[derive(Debug, Default)]
pub struct OrcFormatFactory;

impl GetExt for OrcFormatFactory {
    fn get_ext(&self) -> String {
        "orc".into()
    }
}

impl FileFormatFactory for OrcFormatFactory {
    fn create(&self, _state: &dyn Session, _options: &HashMap<String, String>) -> Result<Arc<dyn FileFormat>> {
        Ok(Arc::new(OrcFormat))
    }

    fn default(&self) -> Arc<dyn FileFormat> {
        Arc::new(OrcFormat)
    }
}

/// The ORC [`FileFormat`].
#[derive(Debug, Default, Clone, Copy)]
pub struct OrcFormat;

#[async_trait]
impl FileFormat for OrcFormat {
    fn get_ext(&self) -> String {
        "orc".into()
    }

    fn get_ext_with_compression(&self, _c: &FileCompressionType) -> Result<String> {
        Ok("orc".into())
    }

    fn compression_type(&self) -> Option<FileCompressionType> {
        None
    }

    async fn infer_schema(
        &self,
        _state: &dyn Session,
        store: &Arc<dyn ObjectStore>,
        objects: &[ObjectMeta],
    ) -> Result<SchemaRef> {
        let mut objects = objects.to_vec();
        // Sorted so the merged schema does not depend on listing order.
        objects.sort_by(|a, b| a.location.cmp(&b.location));
        let schemas = futures::stream::iter(objects)
            .map(|meta| async move {
                let mut reader = RangeReader::new(Arc::clone(store), meta.clone());
                let metadata = read_metadata_async(&mut reader).await.map_err(|e| orc_error(&meta, e))?;
                Ok::<_, DataFusionError>(metadata.root_data_type().create_arrow_schema(&HashMap::new()))
            })
            .buffered(8)
            .try_collect::<Vec<Schema>>()
            .await?;
        Ok(Arc::new(Schema::try_merge(schemas)?))
    }

    async fn infer_stats(
        &self,
        _state: &dyn Session,
        _store: &Arc<dyn ObjectStore>,
        table_schema: SchemaRef,
        _object: &ObjectMeta,
    ) -> Result<Statistics> {
        Ok(Statistics::new_unknown(&table_schema))
    }

    async fn create_physical_plan(&self, _state: &dyn Session, conf: FileScanConfig) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(DataSourceExec::from_data_source(conf))
    }

    fn file_source(&self, table_schema: TableSchema) -> Arc<dyn FileSource> {
        Arc::new(OrcSource::new(table_schema))
    }
}

/// Scans ORC files: plain column selection is pushed into the reader, the rest applied after.
#[derive(Debug, Clone)]
pub struct OrcSource {
    table_schema: TableSchema,
    projection: SplitProjection,
    batch_size: usize,
    metrics: ExecutionPlanMetricsSet,
}

impl OrcSource {
    pub fn new(table_schema: TableSchema) -> Self {
        Self {
            projection: SplitProjection::unprojected(&table_schema),
            table_schema,
            batch_size: 8192,
            metrics: ExecutionPlanMetricsSet::new(),
        }
    }
}

impl FileSource for OrcSource {
    fn create_file_opener(
        &self,
        object_store: Arc<dyn ObjectStore>,
        config: &FileScanConfig,
        _partition: usize,
    ) -> Result<Arc<dyn FileOpener>> {
        let file_schema = self.table_schema.file_schema();
        let opener = Arc::new(OrcOpener {
            store: object_store,
            output_schema: Arc::new(file_schema.project(&self.projection.file_indices)?),
            batch_size: config.batch_size.unwrap_or(self.batch_size),
        });
        ProjectionOpener::try_new(self.projection.clone(), opener, file_schema)
    }

    fn table_schema(&self) -> &TableSchema {
        &self.table_schema
    }

    fn with_batch_size(&self, batch_size: usize) -> Arc<dyn FileSource> {
        Arc::new(Self { batch_size, ..self.clone() })
    }

    fn projection(&self) -> Option<&ProjectionExprs> {
        Some(&self.projection.source)
    }

    fn metrics(&self) -> &ExecutionPlanMetricsSet {
        &self.metrics
    }

    fn file_type(&self) -> &str {
        "orc"
    }

    fn try_pushdown_projection(&self, projection: &ProjectionExprs) -> Result<Option<Arc<dyn FileSource>>> {
        let merged = self.projection.source.try_merge(projection)?;
        let split = SplitProjection::new(self.table_schema.file_schema(), &merged);
        Ok(Some(Arc::new(Self { projection: split, ..self.clone() })))
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        datafusion::physical_plan::apply_expression_roots(self.projection.source.iter(), f)
    }
}

/// Opens one ORC object and yields batches shaped exactly as `output_schema`.
struct OrcOpener {
    store: Arc<dyn ObjectStore>,
    output_schema: SchemaRef,
    batch_size: usize,
}

impl FileOpener for OrcOpener {
    fn open(&self, file: PartitionedFile) -> Result<FileOpenFuture> {
        let meta = file.object_meta.clone();
        let reader = RangeReader::new(Arc::clone(&self.store), meta.clone());
        let plan = reader.plan();
        let output = Arc::clone(&self.output_schema);
        let batch_size = self.batch_size;
        Ok(async move {
            let error = |reason: String| orc_error(&meta, reason);
            let opened = async { ArrowReaderBuilder::try_new_async(reader).await.map_err(|e| orc_error(&meta, e)) };
            let mut builder = super::contained::future(opened, error).await?;
            let root = builder.file_metadata().root_data_type();
            let mut wanted = Vec::with_capacity(output.fields().len());
            for field in output.fields() {
                let column = root
                    .children()
                    .iter()
                    .find(|c| c.name() == field.name())
                    .ok_or_else(|| orc_error(&meta, format!("column '{}' is not in the file", field.name())))?;
                wanted.push(column.data_type().column_index());
            }
            let mask = ProjectionMask::roots(root, wanted);
            if let Ok(mut plan) = plan.lock() {
                *plan = Some(StripePlan::new(builder.file_metadata(), &mask));
            }
            if let Some(range) = file.range.clone() {
                builder = builder.with_file_byte_range(range.start as usize..range.end as usize);
            }
            let stream = builder.with_batch_size(batch_size).with_projection(mask).build_async();
            let (location, named) = (meta.clone(), meta.clone());
            let stream = stream.map_err(move |e| orc_error(&location, e)).and_then(move |batch| {
                let output = Arc::clone(&output);
                async move { reshape(&batch, &output).map_err(DataFusionError::from) }
            });
            Ok(super::contained::Contained::new(stream, move |reason| orc_error(&named, reason)).boxed())
        }
        .boxed())
    }
}

/// Puts a batch's columns in the order and types of `schema`, matching by name.
fn reshape(batch: &RecordBatch, schema: &SchemaRef) -> Result<RecordBatch, ArrowError> {
    let columns = schema
        .fields()
        .iter()
        .map(|field| {
            let column = batch
                .column_by_name(field.name())
                .ok_or_else(|| ArrowError::SchemaError(format!("missing ORC column '{}'", field.name())))?;
            if column.data_type() == field.data_type() {
                Ok(Arc::clone(column))
            } else {
                cast(column, field.data_type())
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    RecordBatch::try_new_with_options(
        Arc::clone(schema),
        columns,
        &datafusion::arrow::array::RecordBatchOptions::new().with_row_count(Some(batch.num_rows())),
    )
}

/// An ORC scan as a CSV scan of the same files, columns and projection — a plan DataFusion can
/// send to a worker — or `None` if `plan` is not an ORC scan. [`orc_scan`] turns it back.
pub(crate) fn carried_scan(plan: &dyn ExecutionPlan) -> Result<Option<Arc<dyn ExecutionPlan>>> {
    let Some(config) = super::file_scan(plan) else { return Ok(None) };
    let Some(orc) = config.file_source.downcast_ref::<OrcSource>() else { return Ok(None) };
    let carrier = CsvSource::new(orc.table_schema.clone());
    let carrier: Arc<dyn FileSource> = match carrier.try_pushdown_projection(&orc.projection.source)? {
        Some(projected) => projected,
        None => return Err(DataFusionError::Internal("an ORC scan's projection cannot travel".into())),
    };
    let config =
        datafusion::datasource::physical_plan::FileScanConfigBuilder::from(config.clone()).with_source(carrier).build();
    Ok(Some(DataSourceExec::from_data_source(config)))
}

/// The ORC scan that [`carried_scan`] carried.
pub(crate) fn orc_scan(carried: Arc<dyn ExecutionPlan>) -> Result<Arc<dyn ExecutionPlan>> {
    let Some(config) = super::file_scan(carried.as_ref()) else {
        return Err(DataFusionError::Internal(format!("an ORC scan arrived as {}", carried.name())));
    };
    let mut source: Arc<dyn FileSource> = Arc::new(OrcSource::new(config.file_source.table_schema().clone()));
    if let Some(projection) = config.file_source.projection()
        && let Some(projected) = source.try_pushdown_projection(projection)?
    {
        source = projected;
    }
    let config =
        datafusion::datasource::physical_plan::FileScanConfigBuilder::from(config.clone()).with_source(source).build();
    Ok(DataSourceExec::from_data_source(config))
}
