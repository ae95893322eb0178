//! DataFusion's CSV and JSON scans, made to keep two promises:
//! - errors name their object: the readers say "line 4" but not which file, so the object's
//!   location is added to every error a file's reader raises;
//! - a CSV null marker (`format.null_regex`, e.g. Hive's `\N`) makes NULLs: DataFusion 55 uses it
//!   only to infer schemas, so string columns would otherwise hold the marker as text.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{AsArray, RecordBatch, RecordBatchOptions, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{GetExt, Statistics};
use datafusion::config::ConfigOptions;
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::datasource::file_format::{FileFormat, FileFormatFactory};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{
    FileOpenFuture, FileOpener, FileScanConfig, FileScanConfigBuilder, FileSinkConfig, FileSource,
};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::error::{DataFusionError, Result};
use datafusion::physical_expr::LexRequirement;
use datafusion::physical_plan::filter_pushdown::FilterPushdownPropagation;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use datafusion::physical_plan::projection::ProjectionExprs;
use datafusion::physical_plan::{DisplayFormatType, ExecutionPlan, PhysicalExpr};
use futures::{FutureExt, StreamExt, TryStreamExt};
use object_store::{ObjectMeta, ObjectStore};
use regex::Regex;

/// Wraps a format factory (e.g. DataFusion's CSV) so its tables name objects in errors.
#[derive(Debug)]
pub struct WrappedFactory(pub Arc<dyn FileFormatFactory>);

impl GetExt for WrappedFactory {
    fn get_ext(&self) -> String {
        self.0.get_ext()
    }
}

impl FileFormatFactory for WrappedFactory {
    fn create(
        &self,
        state: &dyn Session,
        options: &std::collections::HashMap<String, String>,
    ) -> Result<Arc<dyn FileFormat>> {
        Ok(Arc::new(WrappedFormat(self.0.create(state, options)?)))
    }

    fn default(&self) -> Arc<dyn FileFormat> {
        Arc::new(WrappedFormat(self.0.default()))
    }
}

/// A format whose scans name the object in every error; all else is the inner format's.
#[derive(Debug)]
pub struct WrappedFormat(pub Arc<dyn FileFormat>);

#[async_trait]
impl FileFormat for WrappedFormat {
    fn get_ext(&self) -> String {
        self.0.get_ext()
    }

    fn get_ext_with_compression(&self, c: &FileCompressionType) -> Result<String> {
        self.0.get_ext_with_compression(c)
    }

    fn compression_type(&self) -> Option<FileCompressionType> {
        self.0.compression_type()
    }

    async fn infer_schema(
        &self,
        state: &dyn Session,
        store: &Arc<dyn ObjectStore>,
        objects: &[ObjectMeta],
    ) -> Result<SchemaRef> {
        self.0.infer_schema(state, store, objects).await
    }

    async fn infer_stats(
        &self,
        state: &dyn Session,
        store: &Arc<dyn ObjectStore>,
        table_schema: SchemaRef,
        object: &ObjectMeta,
    ) -> Result<Statistics> {
        self.0.infer_stats(state, store, table_schema, object).await
    }

    async fn create_physical_plan(&self, state: &dyn Session, conf: FileScanConfig) -> Result<Arc<dyn ExecutionPlan>> {
        // The inner format sees its own source (it may downcast it); the wrapper goes on after.
        let plan = self.0.create_physical_plan(state, conf).await?;
        let Some(exec) = plan.downcast_ref::<DataSourceExec>() else { return Ok(plan) };
        let Some(config) = exec.data_source().downcast_ref::<FileScanConfig>() else { return Ok(plan) };
        let null_marker = match self.0.downcast_ref::<CsvFormat>().and_then(|f| f.options().null_regex.clone()) {
            Some(pattern) => Some(Regex::new(&pattern).map_err(|e| {
                DataFusionError::Plan(format!("invalid CSV null marker 'format.null_regex' = '{pattern}': {e}"))
            })?),
            None => None,
        };
        let source = Arc::new(WrappedSource {
            inner: Arc::clone(&config.file_source),
            null_marker,
            store_url: config.object_store_url.as_str().trim_end_matches('/').to_string(),
        });
        Ok(DataSourceExec::from_data_source(FileScanConfigBuilder::from(config.clone()).with_source(source).build()))
    }

    async fn create_writer_physical_plan(
        &self,
        input: Arc<dyn ExecutionPlan>,
        state: &dyn Session,
        conf: FileSinkConfig,
        order_requirements: Option<LexRequirement>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        self.0.create_writer_physical_plan(input, state, conf, order_requirements).await
    }

    fn file_source(&self, table_schema: TableSchema) -> Arc<dyn FileSource> {
        self.0.file_source(table_schema)
    }
}

/// A file source whose openers name the object in errors and apply the null marker.
struct WrappedSource {
    inner: Arc<dyn FileSource>,
    null_marker: Option<Regex>,
    /// `s3://bucket`, so errors give the whole object URL.
    store_url: String,
}

impl WrappedSource {
    fn wrap(&self, inner: Arc<dyn FileSource>) -> Arc<dyn FileSource> {
        Arc::new(Self { inner, null_marker: self.null_marker.clone(), store_url: self.store_url.clone() })
    }
}

impl FileSource for WrappedSource {
    fn create_file_opener(
        &self,
        store: Arc<dyn ObjectStore>,
        config: &FileScanConfig,
        partition: usize,
    ) -> Result<Arc<dyn FileOpener>> {
        let inner = self.inner.create_file_opener(store, config, partition)?;
        Ok(Arc::new(WrappedOpener { inner, null_marker: self.null_marker.clone(), store_url: self.store_url.clone() }))
    }

    fn table_schema(&self) -> &TableSchema {
        self.inner.table_schema()
    }

    fn with_batch_size(&self, batch_size: usize) -> Arc<dyn FileSource> {
        self.wrap(self.inner.with_batch_size(batch_size))
    }

    fn filter(&self) -> Option<Arc<dyn PhysicalExpr>> {
        self.inner.filter()
    }

    fn projection(&self) -> Option<&ProjectionExprs> {
        self.inner.projection()
    }

    fn metrics(&self) -> &ExecutionPlanMetricsSet {
        self.inner.metrics()
    }

    fn file_type(&self) -> &str {
        self.inner.file_type()
    }

    fn fmt_extra(&self, t: DisplayFormatType, f: &mut fmt::Formatter) -> fmt::Result {
        self.inner.fmt_extra(t, f)
    }

    fn supports_repartitioning(&self) -> bool {
        // Large uncompressed text is read in byte ranges side by side, as DataFusion reads it.
        // Each range's reader reads a little past its end to finish its last line and drops
        // the rest of that read; the meter counts that remainder, which the server has sent.
        self.inner.supports_repartitioning()
    }

    fn try_pushdown_filters(
        &self,
        filters: Vec<Arc<dyn PhysicalExpr>>,
        config: &ConfigOptions,
    ) -> Result<FilterPushdownPropagation<Arc<dyn FileSource>>> {
        let mut result = self.inner.try_pushdown_filters(filters, config)?;
        result.updated_node = result.updated_node.map(|n| self.wrap(n));
        Ok(result)
    }

    fn try_pushdown_projection(&self, projection: &ProjectionExprs) -> Result<Option<Arc<dyn FileSource>>> {
        Ok(self.inner.try_pushdown_projection(projection)?.map(|n| self.wrap(n)))
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        self.inner.apply_expressions(f)
    }
}

struct WrappedOpener {
    inner: Arc<dyn FileOpener>,
    null_marker: Option<Regex>,
    store_url: String,
}

/// `error reading 's3://…/key': cause` — unless the cause already names the object.
fn name_object(location: &str, e: DataFusionError) -> DataFusionError {
    let text = e.to_string();
    if text.contains(location) {
        return e;
    }
    DataFusionError::Execution(format!("error reading object '{location}': {}", e.find_root().strip_backtrace()))
}

impl FileOpener for WrappedOpener {
    fn open(&self, file: PartitionedFile) -> Result<FileOpenFuture> {
        let location = format!("{}/{}", self.store_url, file.object_meta.location);
        let opening = self.inner.open(file).map_err(|e| name_object(&location, e))?;
        let marker = self.null_marker.clone();
        Ok(async move {
            let stream = opening.await.map_err(|e| name_object(&location, e))?;
            let stream = stream.map(move |batch| match (batch, &marker) {
                (Ok(batch), Some(marker)) => apply_null_marker(batch, marker),
                (batch, _) => batch,
            });
            Ok(stream.map_err(move |e| name_object(&location, e)).boxed())
        }
        .boxed())
    }
}

/// Turns string values that match the null marker into NULLs (as the CSV reader does for
/// every other type when it is given the marker).
fn apply_null_marker(batch: RecordBatch, marker: &Regex) -> Result<RecordBatch> {
    let mut columns = Vec::with_capacity(batch.num_columns());
    for column in batch.columns() {
        let column = match column.data_type() {
            DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8 => {
                let strings = cast(column, &DataType::Utf8)?;
                let strings = strings.as_string::<i32>();
                let nulled: StringArray = strings.iter().map(|v| v.filter(|s| !marker.is_match(s))).collect();
                cast(&nulled, column.data_type())?
            }
            _ => Arc::clone(column),
        };
        columns.push(column);
    }
    // count(*) reads no columns: the batch is only its row count
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    Ok(RecordBatch::try_new_with_options(batch.schema(), columns, &options)?)
}

/// A wrapped scan as the inner format's own plan (which DataFusion can send to a worker) and its
/// null marker; `None` if `plan` is not a wrapped scan.
pub(crate) fn unwrap_scan(plan: &dyn ExecutionPlan) -> Option<(Arc<dyn ExecutionPlan>, Option<String>)> {
    let config = super::file_scan(plan)?;
    let wrapped = config.file_source.downcast_ref::<WrappedSource>()?;
    let inner = FileScanConfigBuilder::from(config.clone()).with_source(Arc::clone(&wrapped.inner)).build();
    Some((DataSourceExec::from_data_source(inner), wrapped.null_marker.as_ref().map(|r| r.as_str().to_string())))
}

/// [`unwrap_scan`] undone: the inner format's scan wrapped again.
pub(crate) fn rewrap_scan(plan: Arc<dyn ExecutionPlan>, null_marker: Option<&str>) -> Result<Arc<dyn ExecutionPlan>> {
    let Some(config) = super::file_scan(plan.as_ref()) else {
        return Err(DataFusionError::Internal(format!("a wrapped scan arrived as {}", plan.name())));
    };
    let null_marker = null_marker
        .map(Regex::new)
        .transpose()
        .map_err(|e| DataFusionError::Internal(format!("a wrapped scan's null marker: {e}")))?;
    let source = Arc::new(WrappedSource {
        inner: Arc::clone(&config.file_source),
        null_marker,
        store_url: config.object_store_url.as_str().trim_end_matches('/').to_string(),
    });
    Ok(DataSourceExec::from_data_source(FileScanConfigBuilder::from(config.clone()).with_source(source).build()))
}
