//! DataFusion's CSV and JSON scans, made to keep two promises:
//! - errors name their object: the readers say "line 4" but not which file, so the object's
//!   location is added to every error a file's reader raises;
//! - delimited text reads NULLs as Hive's SerDes do (see [`TextNulls`]): DataFusion 55 uses a
//!   CSV null marker (`format.null_regex`, e.g. Hive's `\N`) only to infer schemas, so a string
//!   column would hold the marker as text and a number column would fail on it.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, ArrayRef, AsArray, RecordBatch, RecordBatchOptions, StringArray};
use datafusion::arrow::compute::{CastOptions, cast, cast_with_options};
use datafusion::arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef};
use datafusion::catalog::Session;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{GetExt, Statistics};
use datafusion::config::{ConfigOptions, CsvOptions};
use datafusion::datasource::file_format::csv::CsvFormat;
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::datasource::file_format::{FileFormat, FileFormatFactory};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{
    CsvOpener, CsvSource, FileOpenFuture, FileOpener, FileScanConfig, FileScanConfigBuilder, FileSinkConfig, FileSource,
};
use datafusion::datasource::projection::{ProjectionOpener, SplitProjection};
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

/// How delimited text spells NULL.
#[derive(Debug, Clone, Default)]
pub(crate) struct TextNulls {
    /// A field that matches it is NULL in any column: Hive's `\N`, or `serialization.null.format`.
    marker: Option<Regex>,
    /// An empty field in a string column is `''`, as Hive's SerDes and Athena read it, not NULL as
    /// DataFusion's CSV reads it. An empty field in any other column is NULL either way.
    empty_is_text: bool,
}

impl TextNulls {
    pub(crate) fn new(marker: Option<&str>, empty_is_text: bool) -> Result<Self> {
        let marker = marker
            .map(|pattern| {
                Regex::new(pattern).map_err(|e| {
                    DataFusionError::Plan(format!("invalid CSV null marker 'format.null_regex' = '{pattern}': {e}"))
                })
            })
            .transpose()?;
        Ok(Self { marker, empty_is_text })
    }

    pub(crate) fn marker(&self) -> Option<&str> {
        self.marker.as_ref().map(Regex::as_str)
    }

    pub(crate) fn empty_is_text(&self) -> bool {
        self.empty_is_text
    }

    /// Whether DataFusion's reading differs from this: without a marker, DataFusion's rule
    /// (every empty field is NULL) is the rule.
    fn differs(&self) -> bool {
        self.marker.is_some() || self.empty_is_text
    }

    fn is_null(&self, field: &str) -> bool {
        self.marker.as_ref().is_some_and(|m| m.is_match(field))
    }
}

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
        Ok(Arc::new(WrappedFormat(self.0.create(state, options)?, EmptyFields::Null)))
    }

    fn default(&self) -> Arc<dyn FileFormat> {
        Arc::new(WrappedFormat(self.0.default(), EmptyFields::Null))
    }
}

/// A format whose scans name the object in every error; all else is the inner format's.
#[derive(Debug)]
pub struct WrappedFormat(pub Arc<dyn FileFormat>, pub EmptyFields);

/// What an empty field of a string column is in a wrapped CSV format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EmptyFields {
    /// NULL, as DataFusion's CSV tables read it.
    Null,
    /// `''`, as Hive's LazySimpleSerDe and OpenCSVSerde (and so Athena) read it.
    Text,
}

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
        let nulls = match self.0.downcast_ref::<CsvFormat>() {
            Some(csv) => TextNulls::new(csv.options().null_regex.as_deref(), self.1 == EmptyFields::Text)?,
            None => TextNulls::default(),
        };
        Ok(wrap_scan(config, nulls))
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

/// `config`'s scan with its source wrapped.
fn wrap_scan(config: &FileScanConfig, nulls: TextNulls) -> Arc<dyn ExecutionPlan> {
    let source = Arc::new(WrappedSource {
        inner: Arc::clone(&config.file_source),
        nulls,
        batch_size: None,
        store_url: config.object_store_url.as_str().trim_end_matches('/').to_string(),
    });
    DataSourceExec::from_data_source(FileScanConfigBuilder::from(config.clone()).with_source(source).build())
}

/// A file source whose openers name the object in errors and read NULLs as `nulls` says.
struct WrappedSource {
    inner: Arc<dyn FileSource>,
    nulls: TextNulls,
    /// What the scan asked for last, for the text reader built when a file is opened.
    batch_size: Option<usize>,
    /// `s3://bucket`, so errors give the whole object URL.
    store_url: String,
}

impl WrappedSource {
    /// This wrapper around another inner source.
    fn with_inner(&self, inner: Arc<dyn FileSource>) -> Self {
        Self { inner, nulls: self.nulls.clone(), batch_size: self.batch_size, store_url: self.store_url.clone() }
    }

    fn wrap(&self, inner: Arc<dyn FileSource>) -> Arc<dyn FileSource> {
        Arc::new(self.with_inner(inner))
    }
}

impl FileSource for WrappedSource {
    fn create_file_opener(
        &self,
        store: Arc<dyn ObjectStore>,
        config: &FileScanConfig,
        partition: usize,
    ) -> Result<Arc<dyn FileOpener>> {
        let inner = match self.inner.downcast_ref::<CsvSource>() {
            Some(csv) if self.nulls.differs() => text_opener(csv, &self.nulls, self.batch_size, store, config)?,
            _ => self.inner.create_file_opener(store, config, partition)?,
        };
        Ok(Arc::new(WrappedOpener { inner, store_url: self.store_url.clone() }))
    }

    fn table_schema(&self) -> &TableSchema {
        self.inner.table_schema()
    }

    fn with_batch_size(&self, batch_size: usize) -> Arc<dyn FileSource> {
        Arc::new(Self { batch_size: Some(batch_size), ..self.with_inner(self.inner.with_batch_size(batch_size)) })
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
        Ok(async move {
            let stream = opening.await.map_err(|e| name_object(&location, e))?;
            Ok(stream.map_err(move |e| name_object(&location, e)).boxed())
        }
        .boxed())
    }
}

/// Whether a column of this type is read as text and parsed here, so that its NULL marker and
/// empty fields can be told from values the type's parser would refuse.
fn parsed_here(data_type: &DataType) -> bool {
    data_type.is_numeric() || data_type.is_temporal() || *data_type == DataType::Boolean
}

fn is_string(data_type: &DataType) -> bool {
    matches!(data_type, DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8)
}

/// Opens delimited text as Hive's SerDes read it: DataFusion's CSV reader reads each number,
/// date, time or boolean column as text; [`TextOpener`] applies `nulls` and parses the rest to
/// the column's type; DataFusion's projection (partition values, file names) goes on after.
fn text_opener(
    csv: &CsvSource,
    nulls: &TextNulls,
    batch_size: Option<usize>,
    store: Arc<dyn ObjectStore>,
    config: &FileScanConfig,
) -> Result<Arc<dyn FileOpener>> {
    let typed = Arc::clone(csv.table_schema().file_schema());
    let as_text: Fields = typed
        .fields()
        .iter()
        .map(|f| match parsed_here(f.data_type()) {
            true => Arc::new(Field::new(f.name(), DataType::Utf8, true)),
            false => Arc::clone(f),
        })
        .collect();
    let text_schema = Arc::new(Schema::new_with_metadata(as_text, typed.metadata().clone()));
    let options = CsvOptions {
        has_header: Some(csv.has_header()),
        delimiter: csv.delimiter(),
        quote: csv.quote(),
        terminator: csv.terminator(),
        escape: csv.escape(),
        comment: csv.comment(),
        newlines_in_values: Some(csv.newlines_in_values()),
        truncated_rows: Some(csv.truncate_rows()),
        ..Default::default()
    };
    let partition_columns: Vec<_> = csv.table_schema().table_partition_cols().iter().cloned().collect();
    let table_schema = TableSchema::builder(text_schema).with_table_partition_cols(partition_columns).build();
    let reader: Arc<dyn FileSource> = Arc::new(CsvSource::new(table_schema).with_csv_options(options));
    let reader = reader.with_batch_size(batch_size.or(config.batch_size).unwrap_or(8192));
    let projection = match csv.projection() {
        Some(p) => p.clone(),
        None => SplitProjection::unprojected(csv.table_schema()).source,
    };
    let lost = || DataFusionError::Internal("the text reader lost its CSV source".into());
    let reader = reader.try_pushdown_projection(&projection)?.ok_or_else(lost)?;
    let reader = reader.downcast_ref::<CsvSource>().ok_or_else(lost)?.clone();
    let split = SplitProjection::new(&typed, &projection);
    let parsed = Arc::new(TextOpener {
        inner: Arc::new(CsvOpener::new(Arc::new(reader), config.file_compression_type, store)),
        schema: Arc::new(typed.project(&split.file_indices)?),
        nulls: nulls.clone(),
        header: csv.has_header(),
    });
    ProjectionOpener::try_new(split, parsed, &typed)
}

/// Applies [`TextNulls`] to a text reader's batches and parses the columns it read as text.
struct TextOpener {
    inner: Arc<dyn FileOpener>,
    /// The file columns the reader reads, with their declared types.
    schema: SchemaRef,
    nulls: TextNulls,
    header: bool,
}

impl FileOpener for TextOpener {
    fn open(&self, file: PartitionedFile) -> Result<FileOpenFuture> {
        // a line number is known only when the whole file is read from its start
        let mut line = file.range.is_none().then_some(1 + usize::from(self.header));
        let opening = self.inner.open(file)?;
        let (schema, nulls) = (Arc::clone(&self.schema), self.nulls.clone());
        Ok(async move {
            let stream = opening.await?;
            Ok(stream
                .map(move |batch| {
                    let batch = batch?;
                    let first_line = line;
                    line = line.map(|l| l + batch.num_rows());
                    read_text(&batch, &schema, &nulls, first_line)
                })
                .boxed())
        }
        .boxed())
    }
}

/// `batch` (text as the CSV reader read it) with `nulls` applied and every column of `schema`'s
/// type. `first_line` is the file line of its first row, when known, for errors.
fn read_text(
    batch: &RecordBatch,
    schema: &SchemaRef,
    nulls: &TextNulls,
    first_line: Option<usize>,
) -> Result<RecordBatch> {
    let mut columns = Vec::with_capacity(batch.num_columns());
    for (column, field) in batch.columns().iter().zip(schema.fields()) {
        let column = match (column.data_type(), field.data_type()) {
            (read, declared) if is_string(declared) && read == declared => {
                let strings = cast(column, &DataType::Utf8)?;
                // the reader reads an empty field as NULL: the marker, not emptiness, decides
                let text: StringArray = strings
                    .as_string::<i32>()
                    .iter()
                    .map(|v| match v {
                        None if nulls.empty_is_text => (!nulls.is_null("")).then_some(""),
                        None => None,
                        Some(s) => (!nulls.is_null(s)).then_some(s),
                    })
                    .collect();
                cast(&text, declared)?
            }
            (DataType::Utf8, declared) if parsed_here(declared) => {
                let text: StringArray =
                    column.as_string::<i32>().iter().map(|v| v.filter(|s| !nulls.is_null(s))).collect();
                parse(&text, field, first_line)?
            }
            _ => Arc::clone(column),
        };
        columns.push(column);
    }
    // count(*) reads no columns: the batch is only its row count
    let options = RecordBatchOptions::new().with_row_count(Some(batch.num_rows()));
    Ok(RecordBatch::try_new_with_options(Arc::clone(schema), columns, &options)?)
}

/// `text` as `field`'s type; a value that is not one names the column, the value and its line.
fn parse(text: &StringArray, field: &Field, first_line: Option<usize>) -> Result<ArrayRef> {
    let strict = CastOptions { safe: false, ..Default::default() };
    cast_with_options(text, field.data_type(), &strict).map_err(|_| {
        // find the first value that does not parse, to name it
        let bad = (0..text.len()).find(|&i| cast_with_options(&text.slice(i, 1), field.data_type(), &strict).is_err());
        let value = bad.map(|i| text.value(i)).unwrap_or_default();
        let place = match (bad, first_line) {
            (Some(i), Some(line)) => format!(" at line {}", line + i),
            _ => String::new(),
        };
        DataFusionError::Execution(format!(
            "column '{}'{place}: '{value}' is not a valid {}",
            field.name(),
            field.data_type()
        ))
    })
}

/// A wrapped scan as the inner format's own plan (which DataFusion can send to a worker) and how
/// it reads NULLs; `None` if `plan` is not a wrapped scan.
pub(crate) fn unwrap_scan(plan: &dyn ExecutionPlan) -> Option<(Arc<dyn ExecutionPlan>, TextNulls)> {
    let config = super::file_scan(plan)?;
    let wrapped = config.file_source.downcast_ref::<WrappedSource>()?;
    let inner = FileScanConfigBuilder::from(config.clone()).with_source(Arc::clone(&wrapped.inner)).build();
    Some((DataSourceExec::from_data_source(inner), wrapped.nulls.clone()))
}

/// [`unwrap_scan`] undone: the inner format's scan wrapped again.
pub(crate) fn rewrap_scan(plan: Arc<dyn ExecutionPlan>, nulls: TextNulls) -> Result<Arc<dyn ExecutionPlan>> {
    let Some(config) = super::file_scan(plan.as_ref()) else {
        return Err(DataFusionError::Internal(format!("a wrapped scan arrived as {}", plan.name())));
    };
    Ok(wrap_scan(config, nulls))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::util::display::{ArrayFormatter, FormatOptions};
    use glaux_catalog::LocalCatalog;

    use crate::test_support::scratch_dir;
    use crate::{Engine, EngineConfig, S3Settings, StartQueryExecution};

    /// Rows as `a|b|…`, NULL as `NULL` and the empty string as `''`.
    async fn rows(engine: &Engine, sql: &str) -> Result<Vec<String>, String> {
        let request = StartQueryExecution { query_string: sql.into(), ..Default::default() };
        let (batches, _) = engine.run(&request).await.map_err(|f| f.error.to_string())?;
        let options = FormatOptions::default().with_null("NULL");
        let mut out = vec![];
        for batch in &batches {
            let formatters: Vec<_> =
                batch.columns().iter().map(|c| ArrayFormatter::try_new(c.as_ref(), &options).unwrap()).collect();
            for row in 0..batch.num_rows() {
                let cells: Vec<String> = formatters
                    .iter()
                    .map(|f| f.value(row).to_string())
                    .map(|v| if v.is_empty() { "''".into() } else { v })
                    .collect();
                out.push(cells.join("|"));
            }
        }
        Ok(out)
    }

    /// Hive's text SerDes, as Athena reads them: `\N` is NULL in every column, an empty field is
    /// `''` in a string column and NULL in any other; `NULL DEFINED AS ''` makes empty strings
    /// NULL too. A value that is not its column's type names the column, the value, the line
    /// and the object.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn text_tables_read_nulls_and_empty_fields_as_hive_does() {
        let dir = scratch_dir("text-nulls");
        let lines = "a\t1\t2024-01-02\ttrue\tx\n\t\t\t\t\n\\N\t\\N\t\\N\t\\N\t\\N\n";
        for folder in ["hive/p=7", "hive_empty_null/p=7", "bad"] {
            std::fs::create_dir_all(dir.join(folder)).unwrap();
        }
        std::fs::write(dir.join("hive/p=7/part-0.tsv"), lines).unwrap();
        // with NULL DEFINED AS '', `\N` is text
        std::fs::write(
            dir.join("hive_empty_null/p=7/part-0.tsv"),
            "a\t1\t2024-01-02\ttrue\tx\n\t\t\t\t\n\\N\t2\t\t\t\n",
        )
        .unwrap();
        std::fs::write(dir.join("bad/part-0.tsv"), "a\t1\nb\t2\nc\tabc\n").unwrap();
        std::fs::create_dir_all(dir.join("open_csv")).unwrap();
        std::fs::write(dir.join("open_csv/part-0.csv"), "\"a\",\"\",1\n,\"b\",\n").unwrap();
        let engine = Engine::new(EngineConfig {
            s3: S3Settings::from_lookup(|_| None),
            allow_local_files: true,
            catalog: Some(Arc::new(LocalCatalog::open(dir.join("warehouse")).unwrap())),
            ..Default::default()
        })
        .unwrap();
        let columns = "(s string, i int, d date, b boolean, s2 string)";
        let location = |table: &str| format!("LOCATION '{}/'", dir.join(table).display());
        for sql in [
            "CREATE DATABASE IF NOT EXISTS default".to_string(),
            format!(
                "CREATE EXTERNAL TABLE hive {columns} PARTITIONED BY (p int) ROW FORMAT DELIMITED FIELDS TERMINATED BY '\\t' {}",
                location("hive")
            ),
            format!(
                "CREATE EXTERNAL TABLE hive_empty_null {columns} PARTITIONED BY (p int) ROW FORMAT DELIMITED FIELDS TERMINATED BY '\\t' NULL DEFINED AS '' {}",
                location("hive_empty_null")
            ),
            format!(
                "CREATE EXTERNAL TABLE bad (s string, i int) ROW FORMAT DELIMITED FIELDS TERMINATED BY '\\t' {}",
                location("bad")
            ),
            format!(
                "CREATE EXTERNAL TABLE open_csv (a string, b string, c string) ROW FORMAT SERDE 'org.apache.hadoop.hive.serde2.OpenCSVSerde' {}",
                location("open_csv")
            ),
            "MSCK REPAIR TABLE hive".to_string(),
            "MSCK REPAIR TABLE hive_empty_null".to_string(),
        ] {
            rows(&engine, &sql).await.unwrap();
        }
        let query = |table: &str| format!("SELECT s, i, d, b, s2, p FROM {table} ORDER BY i NULLS LAST, s NULLS LAST");
        assert_eq!(
            rows(&engine, &query("hive")).await.unwrap(),
            ["a|1|2024-01-02|true|x|7", "''|NULL|NULL|NULL|''|7", "NULL|NULL|NULL|NULL|NULL|7"]
        );
        assert_eq!(
            rows(&engine, &query("hive_empty_null")).await.unwrap(),
            ["a|1|2024-01-02|true|x|7", "\\N|2|NULL|NULL|NULL|7", "NULL|NULL|NULL|NULL|NULL|7"]
        );
        // the columns a query does not read, and rows with no columns at all
        assert_eq!(rows(&engine, "SELECT count(*), count(s), count(i) FROM hive").await.unwrap(), ["3|2|1"]);
        assert_eq!(rows(&engine, "SELECT i + 1 FROM hive WHERE s = ''").await.unwrap(), ["NULL"]);
        assert_eq!(rows(&engine, "SELECT a, b, c FROM open_csv ORDER BY a").await.unwrap(), ["''|b|''", "a|''|1"]);
        let error = rows(&engine, "SELECT sum(i) FROM bad").await.unwrap_err();
        for part in ["column 'i'", "'abc'", "line 3", "bad/part-0.tsv"] {
            assert!(error.contains(part), "{part} not in: {error}");
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
