//! A catalog table as DataFusion sees it: partitions pruned from the WHERE clause before
//! anything is listed, only surviving partitions' objects listed and read, each file carrying
//! its partition values.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use datafusion::arrow::array::RecordBatch;
use datafusion::arrow::compute::SortColumn;
use datafusion::arrow::datatypes::{DataType, Field, FieldRef, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::stats::Precision;
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::datasource::MemTable;
use datafusion::datasource::TableType;
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::parquet::{ParquetFormat, transform_schema_to_view};
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder};
use datafusion::datasource::table_schema::TableSchema;
use datafusion::error::{DataFusionError, Result as DfResult};
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::functions::regex::expr_fn::regexp_match;
use datafusion::functions_nested::expr_fn::array_element;
use datafusion::logical_expr::TryCast;
use datafusion::logical_expr::expr_rewriter::unnormalize_col;
use datafusion::logical_expr::utils::conjunction;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_expr::PhysicalExpr;
use datafusion::physical_optimizer::pruning::{PruningPredicate, PruningPredicateBuilder};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::projection::ProjectionExec;
use datafusion::physical_plan::union::UnionExec;
use datafusion::prelude::{col, lit};
use datafusion_datasource::compute_all_files_statistics;
use futures::{StreamExt, TryStreamExt};
use glaux_catalog::{Catalog, Partition, StorageDescriptor, Table};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use url::Url;

use super::column_stats;
use super::footers::{self, PageIndex, RowGroups};
use super::projection::Projection;
use super::pruning;
use super::scan_log::{ScanLog, TableScan};
use super::serde::StorageFormat;
use super::types::hive_to_arrow;
use crate::compression;
use crate::error::{Error, Result};

/// One catalog table, resolved for one query.
#[derive(Debug)]
pub struct CatalogTable {
    catalog: Arc<dyn Catalog>,
    table: Table,
    database: String,
    format: StorageFormat,
    file_schema: SchemaRef,
    partition_fields: Vec<FieldRef>,
    schema: SchemaRef,
    log: Arc<ScanLog>,
    /// Each location's data objects as this statement first listed them (see `data_objects`).
    listed: Mutex<HashMap<String, Vec<ObjectMeta>>>,
}

/// The locations a scan reads, with how many partitions were considered and where they came from.
struct Located {
    locations: Vec<(String, Vec<ScalarValue>)>,
    total: usize,
    source: &'static str,
}

impl CatalogTable {
    pub fn try_new(catalog: Arc<dyn Catalog>, database: &str, table: Table) -> Result<Self> {
        let name = format!("{database}.{}", table.name);
        let sd = table.storage_descriptor.clone().unwrap_or_default();
        let field = |c: &glaux_catalog::Column| -> Result<Field> {
            let t = hive_to_arrow(&c.type_name)
                .map_err(|e| Error::InvalidInput(format!("table {name}, column {}: {e}", c.name)))?;
            Ok(Field::new(c.name.to_ascii_lowercase(), t, true))
        };
        let format = StorageFormat::of(&table)?;
        let mut file_schema = Schema::new(sd.columns.iter().map(field).collect::<Result<Vec<_>>>()?);
        if format == StorageFormat::Parquet {
            // Parquet strings are read as string views, as DataFusion's own tables read them:
            // no copy into one buffer per batch, and cheaper to hash, compare and group by.
            file_schema = transform_schema_to_view(&file_schema);
        }
        let partition_fields: Vec<FieldRef> =
            table.partition_keys.iter().map(|c| field(c).map(Arc::new)).collect::<Result<_>>()?;
        let mut all: Vec<Field> = file_schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        all.extend(partition_fields.iter().map(|f| f.as_ref().clone()));
        table.location().map_err(Error::Catalog)?;
        Ok(Self {
            catalog,
            database: database.to_string(),
            format,
            file_schema: Arc::new(file_schema),
            partition_fields,
            schema: Arc::new(Schema::new(all)),
            table,
            log: Arc::default(),
            listed: Mutex::default(),
        })
    }

    /// `"t$partitions"`: the table's partitions as rows, one typed column per key, sorted.
    pub async fn partitions_table(&self) -> Result<Arc<dyn TableProvider>> {
        if self.partition_fields.is_empty() {
            return Err(Error::InvalidInput(format!("table {} is not partitioned", self.name())));
        }
        let partitions =
            self.catalog.get_partitions(&self.database, &self.table.name, None).await.map_err(Error::Catalog)?;
        let columns = pruning::typed_columns(&self.name(), &self.partition_fields, &[])?;
        let schema = Arc::new(Schema::new(self.partition_fields.clone()));
        let empty = RecordBatch::try_new(Arc::clone(&schema), columns).map_err(DataFusionError::from)?;
        let values: Vec<Vec<String>> = partitions.into_iter().map(|p| p.values).collect();
        let columns = pruning::typed_columns(&self.name(), &self.partition_fields, &values)?;
        let batch = RecordBatch::try_new(Arc::clone(&schema), columns).map_err(DataFusionError::from)?;
        let sorted = datafusion::arrow::compute::lexsort_to_indices(
            &batch.columns().iter().map(|c| SortColumn { values: Arc::clone(c), options: None }).collect::<Vec<_>>(),
            None,
        )
        .map_err(DataFusionError::from)?;
        let batch = datafusion::arrow::compute::take_record_batch(&batch, &sorted).map_err(DataFusionError::from)?;
        let batches = if batch.num_rows() == 0 { vec![empty] } else { vec![batch] };
        Ok(Arc::new(MemTable::try_new(schema, vec![batches])?))
    }

    /// Reports this table's scans to `log`.
    pub fn with_log(mut self, log: Arc<ScanLog>) -> Self {
        self.log = log;
        self
    }

    /// Checks that partition values parse as their keys' types.
    pub fn check_values(&self, values: &[Vec<String>]) -> Result<()> {
        pruning::typed_columns(&self.name(), &self.partition_fields, values).map(|_| ())
    }

    fn name(&self) -> String {
        format!("{}.{}", self.database, self.table.name)
    }

    fn partition_columns(&self) -> HashSet<String> {
        self.partition_fields.iter().map(|f| f.name().clone()).collect()
    }

    /// The locations to read and the partition values their files carry.
    async fn locations(&self, state: &dyn Session, filters: &[Expr]) -> Result<Located> {
        let table_location = self.table.location().map_err(Error::Catalog)?.to_string();
        if self.partition_fields.is_empty() {
            return Ok(Located { locations: vec![(table_location, vec![])], total: 0, source: "none" });
        }
        let columns = self.partition_columns();
        let partition_filters: Vec<Expr> =
            filters.iter().filter(|f| pruning::only_partition_columns(f, &columns)).cloned().collect();
        if let Some(projection) = Projection::of(&self.database, &self.table)? {
            // projected partitions: computed, never asked of the catalog
            let (projected, total) =
                projection.partitions(state, &self.partition_fields, &partition_filters, &table_location)?;
            let partitions = projected
                .into_iter()
                .map(|(values, location)| Partition {
                    values,
                    storage_descriptor: Some(StorageDescriptor { location: Some(location), ..Default::default() }),
                    ..Default::default()
                })
                .collect();
            let locations = self.select(state, &table_location, partitions, &partition_filters)?;
            return Ok(Located { locations, total, source: "projection" });
        }
        let expression = pruning::glue_expression(&partition_filters, &self.partition_fields);
        let partitions = self
            .catalog
            .get_partitions(&self.database, &self.table.name, expression.as_deref())
            .await
            .map_err(Error::Catalog)?;
        let total = partitions.len();
        let locations = self.select(state, &table_location, partitions, &partition_filters)?;
        let source = if expression.is_some() { "catalog with expression" } else { "catalog" };
        Ok(Located { locations, total, source })
    }

    /// The data objects at a location, listed once per statement: a table read twice in one
    /// statement (a self-join, a subquery, a CTE used twice) reads one listing of its files,
    /// as DataFusion's own tables do, and one request pays for it. Another statement lists
    /// again and sees what writers have added since.
    async fn data_objects(&self, store: &dyn ObjectStore, location: &str, prefix: Path) -> Result<Vec<ObjectMeta>> {
        let memo = || self.listed.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(objects) = memo().get(location) {
            return Ok(objects.clone());
        }
        let objects = objects_at(store, prefix.clone(), location.ends_with('/')).await?;
        // an INSERT's files count once its commit marker is listed beside them
        let committed: HashSet<String> = objects
            .iter()
            .filter(|m| m.location.parts().any(|p| p.as_ref() == crate::write::COMMITS))
            .filter_map(|m| m.location.filename().map(str::to_string))
            .collect();
        let objects: Vec<ObjectMeta> = objects
            .into_iter()
            .filter(|m| is_data(&prefix, m))
            .filter(|m| {
                m.location.filename().and_then(crate::write::inserted_by).is_none_or(|id| committed.contains(id))
            })
            .collect();
        memo().insert(location.to_string(), objects.clone());
        Ok(objects)
    }

    fn select(
        &self,
        state: &dyn Session,
        table_location: &str,
        partitions: Vec<Partition>,
        filters: &[Expr],
    ) -> Result<Vec<(String, Vec<ScalarValue>)>> {
        for p in &partitions {
            self.table.check_partition(p).map_err(Error::Catalog)?;
        }
        let values: Vec<Vec<String>> = partitions.iter().map(|p| p.values.clone()).collect();
        let columns = pruning::typed_columns(&self.name(), &self.partition_fields, &values)?;
        let keep = pruning::surviving(state, &self.partition_fields, columns.clone(), values.len(), filters)?;
        keep.into_iter()
            .map(|i| {
                let p = &partitions[i];
                let location = p
                    .storage_descriptor
                    .as_ref()
                    .and_then(|sd| sd.location.clone())
                    .unwrap_or_else(|| default_location(table_location, &self.partition_fields, &p.values));
                let typed = columns.iter().map(|c| ScalarValue::try_from_array(c, i)).collect::<DfResult<Vec<_>>>()?;
                Ok((location, typed))
            })
            .collect()
    }
}

/// `<table>/<key>=<value>/…`, where Hive puts a partition that names no location.
fn default_location(table: &str, keys: &[FieldRef], values: &[String]) -> String {
    let mut out = table.trim_end_matches('/').to_string();
    for (k, v) in keys.iter().zip(values) {
        out.push_str(&format!("/{}={}", k.name(), v));
    }
    out.push('/');
    out
}

/// Splits `s3://bucket/prefix/` into the store URL and the prefix to list.
pub(crate) fn split_location(location: &str) -> Result<(ObjectStoreUrl, Path)> {
    let url = if location.contains("://") {
        Url::parse(location).map_err(|e| Error::Location { location: location.into(), reason: e.to_string() })?
    } else {
        let path = std::path::absolute(location)
            .map_err(|e| Error::Location { location: location.into(), reason: e.to_string() })?;
        // a location ending in `/` names a folder, which needs no trip to the disk to tell
        let file = !location.ends_with('/') && path.is_file();
        let url = if file { Url::from_file_path(&path) } else { Url::from_directory_path(&path) };
        url.map_err(|_| Error::Location { location: location.into(), reason: "not an absolute path".into() })?
    };
    let store = ObjectStoreUrl::parse(format!("{}://{}", url.scheme(), url.authority()))?;
    let prefix = Path::from_url_path(url.path())
        .map_err(|e| Error::Location { location: location.into(), reason: e.to_string() })?;
    Ok((store, prefix))
}

/// The objects a location names: everything under a prefix, or one object when the location
/// is the key of an object rather than a folder (Athena wants folders; DuckDB users pass files).
pub(crate) async fn objects_at(store: &dyn ObjectStore, prefix: Path, is_folder: bool) -> Result<Vec<ObjectMeta>> {
    if !is_folder && !prefix.as_ref().is_empty() {
        match store.head(&prefix).await {
            Ok(meta) => return Ok(vec![meta]),
            Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => return Err(Error::Storage(e)),
        }
    }
    let prefix = if prefix.as_ref().is_empty() { None } else { Some(prefix) };
    store.list(prefix.as_ref()).try_collect().await.map_err(Error::Storage)
}

/// Hive skips files and folders whose names start with `_` or `.` (`_SUCCESS`, `.crc`,
/// `_temporary/`, glaux's `_glaux_staging/`) below a table's location, and so does glaux.
pub(crate) fn is_data(listed: &Path, meta: &ObjectMeta) -> bool {
    let hidden = |name: &str| name.starts_with('_') || name.starts_with('.');
    let name = meta.location.filename().unwrap_or_default();
    let in_hidden_folder =
        meta.location.prefix_match(listed).is_some_and(|mut parts| parts.any(|p| hidden(p.as_ref())));
    meta.size > 0 && !hidden(name) && !in_hidden_folder
}

#[async_trait]
impl TableProvider for CatalogTable {
    fn schema(&self) -> SchemaRef {
        Arc::clone(&self.schema)
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    fn supports_filters_pushdown(&self, filters: &[&Expr]) -> DfResult<Vec<TableProviderFilterPushDown>> {
        let columns = self.partition_columns();
        // Partition filters are applied exactly while pruning; the rest stays with DataFusion,
        // which filters the rows. A Parquet scan sees them too (Inexact), to read the page
        // index of the files they may keep with their footers (see `file_statistics`).
        let parquet = matches!(self.format, StorageFormat::Parquet);
        Ok(filters
            .iter()
            .map(|f| {
                if pruning::only_partition_columns(f, &columns) {
                    TableProviderFilterPushDown::Exact
                } else if parquet {
                    TableProviderFilterPushDown::Inexact
                } else {
                    TableProviderFilterPushDown::Unsupported
                }
            })
            .collect())
    }

    async fn scan(
        &self,
        state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let Located { locations, total, source } = self.locations(state, filters).await?;
        let partitions_scanned = locations.len();
        // List the surviving partitions' objects, grouped by store (a table may span buckets).
        let listed = futures::stream::iter(locations)
            .map(|(location, values)| async move {
                let (store_url, prefix) = split_location(&location)?;
                let store = state.runtime_env().object_store(&store_url)?;
                let objects = self.data_objects(store.as_ref(), &location, prefix).await?;
                Ok::<_, Error>((store_url, objects, values))
            })
            .buffer_unordered(16)
            .try_collect::<Vec<_>>()
            .await?;
        // Grouped by store (a table may span buckets) and, for text, by the compression each
        // object's extension names: a partition of .gz files beside one of plain text is fine.
        let text = self.format.is_text();
        let mut groups: BTreeMap<GroupKey, (ObjectStoreUrl, Vec<PartitionedFile>)> = BTreeMap::new();
        for (store_url, objects, values) in listed {
            for meta in objects {
                let codec = if text { compression::from_extension(meta.location.as_ref()) } else { None };
                let entry = groups
                    .entry((store_url.as_str().to_string(), codec))
                    .or_insert_with(|| (store_url.clone(), vec![]));
                entry.1.push(PartitionedFile::new_from_meta(meta).with_partition_values(values.clone()));
            }
        }
        // logged before statistics are read, so a scan stopped while reading them (the scan
        // limit) is still in the query's history
        let files: Vec<&PartitionedFile> = groups.values().flat_map(|(_, f)| f).collect();
        self.log.record(TableScan {
            table: self.name(),
            partitioned: !self.partition_fields.is_empty(),
            partitions_total: total,
            partitions_scanned,
            source,
            files: files.len(),
            file_bytes: files.iter().map(|f| f.object_meta.size).sum(),
        });
        let groups = self.with_statistics(state, groups, filters, limit).await?;
        // RegexSerDe tables read whole lines, then split them with the regex (below)
        let regex = match &self.format {
            StorageFormat::Regex { regex, .. } => Some(regex.clone()),
            _ => None,
        };
        let read_schema = match regex {
            Some(_) => Arc::new(Schema::new(vec![Field::new(LINE, DataType::Utf8, true)])),
            None => Arc::clone(&self.file_schema),
        };
        let scan_projection = if regex.is_some() { None } else { projection.cloned() };
        let table_schema =
            TableSchema::builder(read_schema).with_table_partition_cols(self.partition_fields.clone()).build();
        let target = state.config_options().execution.target_partitions.max(1);
        let mut plans = vec![];
        for (store_url, files, file_format) in groups.into_values() {
            let mut groups: Vec<Vec<PartitionedFile>> = vec![vec![]; target.min(files.len())];
            let count = groups.len();
            for (i, f) in files.into_iter().enumerate() {
                groups[i % count].push(f);
            }
            // the scan's statistics (row counts, column ranges) are what lets the optimizer put
            // a join's small side on the build side and broadcast it, as it does for its own tables
            let (groups, mut statistics) = compute_all_files_statistics(
                groups.into_iter().map(FileGroup::new).collect(),
                Arc::clone(table_schema.table_schema()),
                state.config().collect_statistics(),
                false,
            )?;
            // (a RegexSerDe scan reads one column, the line, which no count describes)
            if regex.is_none() {
                column_stats::apply(&self.table.parameters, table_schema.table_schema(), &mut statistics);
            }
            let source = file_format.file_source(table_schema.clone());
            let config = FileScanConfigBuilder::new(store_url, source)
                .with_file_groups(groups)
                .with_statistics(statistics)
                .with_projection_indices(scan_projection.clone())?
                .with_limit(limit)
                .build();
            let plan = file_format.create_physical_plan(state, config).await?;
            let cache = state.runtime_env().cache_manager.get_file_metadata_cache();
            plans.push(crate::formats::parquet_chunks::fill_chunk_gaps(plan, cache));
        }
        match plans.len() {
            0 => {
                let projected = match projection {
                    Some(p) => Arc::new(self.schema.project(p)?),
                    None => Arc::clone(&self.schema),
                };
                Ok(Arc::new(EmptyExec::new(projected)))
            }
            1 => self.split_lines(state, regex, projection, plans.pop().expect("one plan")),
            _ => self.split_lines(state, regex, projection, UnionExec::try_new(plans)?),
        }
    }
}

/// A group of a scan's files: one store, one compression (`None` for binary formats).
type GroupKey = (String, Option<&'static str>);

/// The files of one scan, grouped by store and compression, each group with the format that reads it.
type FileGroups = BTreeMap<GroupKey, (ObjectStoreUrl, Vec<PartitionedFile>, Arc<dyn FileFormat>)>;

impl CatalogTable {
    /// Each file's statistics from its own metadata (a Parquet footer, kept in the session's
    /// metadata cache so the scan does not fetch it again; nothing for formats that carry none),
    /// as DataFusion's own tables collect them. With a LIMIT and row counts known, files past
    /// the limit are not read at all.
    async fn with_statistics(
        &self,
        state: &dyn Session,
        groups: BTreeMap<GroupKey, (ObjectStoreUrl, Vec<PartitionedFile>)>,
        filters: &[Expr],
        limit: Option<usize>,
    ) -> Result<FileGroups> {
        let collect = state.config().collect_statistics();
        let on_files = self.file_filter(filters);
        let pruning = footers::LazyPruning::new(on_files.as_ref().map(Expr::to_string), || {
            self.file_pruning(state, on_files.clone()?)
        });
        let concurrency = state.config_options().execution.meta_fetch_concurrency.get();
        let scope = footers::StatisticsScope::new(&self.name(), &self.file_schema);
        let mut out = BTreeMap::new();
        let mut rows = Some(0usize);
        for ((store_key, codec), (store_url, mut files)) in groups {
            let mut file_format = self.format.file_format(state, codec)?;
            files.sort_by(|a, b| a.object_meta.location.cmp(&b.object_meta.location));
            if collect {
                let store = state.runtime_env().object_store(&store_url)?;
                let schema = Arc::clone(&self.file_schema);
                let format = Arc::clone(&file_format);
                let read: Vec<(PartitionedFile, RowGroups)> = futures::stream::iter(files)
                    .map(|file| {
                        let (store, schema, format) = (Arc::clone(&store), Arc::clone(&schema), Arc::clone(&format));
                        let (pruning, scope) = (&pruning, &scope);
                        async move {
                            let (stats, index) = footers::read(
                                state,
                                scope,
                                format.as_ref(),
                                &store,
                                schema,
                                &file.object_meta,
                                pruning,
                            )
                            .await?;
                            Ok::<_, DataFusionError>((file.with_statistics(stats), index))
                        }
                    })
                    .buffered(concurrency)
                    .try_collect()
                    .await?;
                let row_groups: Vec<RowGroups>;
                (files, row_groups) = read.into_iter().unzip();
                let worth_reading = footers::worth_reading(&row_groups, store.as_ref(), &self.file_schema, &pruning);
                let indexes: Vec<PageIndex> = row_groups.into_iter().filter_map(RowGroups::into_page_index).collect();
                if worth_reading {
                    // read once here, into the cache: the scan would otherwise read a file's
                    // page index once for each byte range it cuts the file into
                    futures::stream::iter(indexes)
                        .map(|index| index.load(state, &store))
                        .buffered(concurrency)
                        .try_collect::<Vec<()>>()
                        .await?;
                } else if !indexes.is_empty() {
                    file_format = without_page_index(file_format);
                }
                if let Some(limit) = limit {
                    let mut kept = vec![];
                    for file in files {
                        if rows.is_some_and(|r| r > limit) {
                            break;
                        }
                        rows = match (rows, file.statistics.as_ref().map(|s| s.num_rows)) {
                            (Some(r), Some(Precision::Exact(n))) => Some(r + n),
                            _ => None,
                        };
                        kept.push(file);
                    }
                    files = kept;
                }
            }
            if !files.is_empty() {
                out.insert((store_key, codec), (store_url, files, file_format));
            }
        }
        Ok(out)
    }

    /// The scan's filters on the files' own columns, joined by AND, when there are any.
    fn file_filter(&self, filters: &[Expr]) -> Option<Expr> {
        let on_file_columns = filters
            .iter()
            .filter(|f| f.column_refs().iter().all(|c| self.file_schema.field_with_name(&c.name).is_ok()));
        // the filters name the table's columns (`keyed.id`), the schema the files' (`id`)
        Some(unnormalize_col(conjunction(on_file_columns.cloned())?))
    }

    /// `predicate` (on the files' own columns) as a test of a file's statistics.
    fn file_pruning(&self, state: &dyn Session, predicate: Expr) -> Option<Arc<PruningPredicate>> {
        let schema = DFSchema::try_from(self.file_schema.as_ref().clone()).ok()?;
        let physical = state.create_physical_expr(predicate, &schema).ok()?;
        PruningPredicateBuilder::new().with_file_schema(Arc::clone(&self.file_schema)).build(physical)
    }
}

/// `format` reading no page index, when it is Parquet.
fn without_page_index(format: Arc<dyn FileFormat>) -> Arc<dyn FileFormat> {
    let Some(parquet) = format.downcast_ref::<ParquetFormat>() else { return format };
    let mut options = parquet.options().clone();
    options.global.enable_page_index = false;
    Arc::new(ParquetFormat::default().with_options(options))
}

/// The one column a RegexSerDe table's objects are read into.
const LINE: &str = "__glaux_line";

impl CatalogTable {
    /// For RegexSerDe: each requested column is its group of the anchored regex over the line
    /// (Hive matches whole lines), cast to the column's type; a line that does not match gives
    /// NULLs, as in Hive and Athena. Partition columns pass through.
    fn split_lines(
        &self,
        state: &dyn Session,
        regex: Option<String>,
        projection: Option<&Vec<usize>>,
        input: Arc<dyn ExecutionPlan>,
    ) -> DfResult<Arc<dyn ExecutionPlan>> {
        let Some(regex) = regex else { return Ok(input) };
        let anchored = format!("^(?:{regex})$");
        let input_schema = input.schema();
        let df_schema = DFSchema::try_from(Arc::clone(&input_schema))?;
        let columns = self.file_schema.fields().len();
        let wanted: Vec<usize> = match projection {
            Some(p) => p.clone(),
            None => (0..self.schema.fields().len()).collect(),
        };
        let mut exprs: Vec<(Arc<dyn PhysicalExpr>, String)> = vec![];
        for i in wanted {
            let field = self.schema.field(i);
            let logical = if i < columns {
                let groups = regexp_match(col(LINE), lit(anchored.clone()), None);
                let group = array_element(groups, lit(i as i64 + 1));
                Expr::TryCast(TryCast::new(Box::new(group), field.data_type().clone()))
            } else {
                Expr::Column(datafusion::common::Column::new_unqualified(field.name()))
            };
            exprs.push((state.create_physical_expr(logical, &df_schema)?, field.name().clone()));
        }
        Ok(Arc::new(ProjectionExec::try_new(exprs, input)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::parquet::arrow::ArrowWriter;
    use datafusion::prelude::SessionContext;
    use glaux_catalog::{Column, LocalCatalog, SerDeInfo};

    /// A Parquet table of `files` files of `rows` rows each (`id` bigint, `name` string), in a
    /// local catalog under a fresh folder, which goes when the test's [`Folder`] does.
    fn parquet_table(tag: &str, files: usize, rows: i64) -> (Arc<dyn Catalog>, Table, Folder) {
        let dir = std::env::temp_dir().join(format!("glaux-table-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let data = dir.join("data");
        std::fs::create_dir_all(&data).unwrap();
        for f in 0..files {
            let ids: Vec<i64> = (0..rows).map(|i| f as i64 * 1000 + i).collect();
            let names: Vec<String> = ids.iter().map(|i| format!("n{i}")).collect();
            let batch = RecordBatch::try_from_iter([
                ("id", Arc::new(Int64Array::from(ids)) as _),
                ("name", Arc::new(StringArray::from(names)) as _),
            ])
            .unwrap();
            let file = std::fs::File::create(data.join(format!("part-{f}.parquet"))).unwrap();
            let mut writer = ArrowWriter::try_new(file, batch.schema(), None).unwrap();
            writer.write(&batch).unwrap();
            writer.close().unwrap();
        }
        let column = |name: &str, t: &str| Column { name: name.into(), type_name: t.into(), comment: None };
        let table = Table {
            name: "t".into(),
            storage_descriptor: Some(StorageDescriptor {
                columns: vec![column("id", "bigint"), column("name", "string")],
                location: Some(format!("{}/", data.display())),
                serde_info: Some(SerDeInfo {
                    serialization_library: Some("org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe".into()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        (Arc::new(LocalCatalog::open(dir.join("warehouse")).unwrap()), table, Folder(dir))
    }

    /// A test's folder, removed when the test ends (passed or not).
    struct Folder(std::path::PathBuf);

    impl Drop for Folder {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn scan_config(plan: &Arc<dyn ExecutionPlan>) -> &datafusion::datasource::physical_plan::FileScanConfig {
        let exec = plan.downcast_ref::<datafusion::datasource::source::DataSourceExec>().expect("a file scan");
        exec.data_source().downcast_ref().expect("a file scan")
    }

    #[tokio::test]
    async fn scans_carry_the_files_row_counts_and_column_ranges() {
        let (catalog, table, _folder) = parquet_table("stats", 3, 100);
        let t = CatalogTable::try_new(catalog, "default", table).unwrap();
        // Parquet strings are read as views, as DataFusion's own tables read them
        assert_eq!(t.schema().field(1).data_type(), &DataType::Utf8View);
        let ctx = SessionContext::new();
        let plan = t.scan(&ctx.state(), None, &[], None).await.unwrap();
        let stats = scan_config(&plan).statistics();
        assert_eq!(stats.num_rows, Precision::Exact(300));
        let id = &stats.column_statistics[0];
        assert_eq!(id.min_value, Precision::Exact(ScalarValue::Int64(Some(0))));
        assert_eq!(id.max_value, Precision::Exact(ScalarValue::Int64(Some(2099))));
        // without statistics collection, nothing is known (and no footer is read)
        let mut state = ctx.state();
        state.config_mut().options_mut().execution.collect_statistics = false;
        let plan = t.scan(&state, None, &[], None).await.unwrap();
        assert_eq!(scan_config(&plan).statistics().num_rows, Precision::Absent);
    }

    #[tokio::test]
    async fn scans_carry_the_distinct_counts_analyze_kept() {
        let (catalog, mut table, _folder) = parquet_table("distinct", 2, 100);
        table.parameters.insert(column_stats::key("name", column_stats::DISTINCT), "7".into());
        // more than the 200 rows: a count from before rows were removed is bounded by the rows
        table.parameters.insert(column_stats::key("id", column_stats::DISTINCT), "5000".into());
        let t = CatalogTable::try_new(catalog, "default", table).unwrap();
        let plan = t.scan(&SessionContext::new().state(), None, &[], None).await.unwrap();
        let stats = scan_config(&plan).statistics();
        let counts: Vec<_> = stats.column_statistics.iter().map(|c| c.distinct_count).collect();
        assert_eq!(counts, vec![Precision::Inexact(200), Precision::Inexact(7)]);
    }

    #[tokio::test]
    async fn a_limit_the_first_files_satisfy_reads_no_more_files() {
        let (catalog, table, _folder) = parquet_table("limit", 4, 100);
        let t = CatalogTable::try_new(catalog, "default", table).unwrap();
        let ctx = SessionContext::new();
        let files =
            |plan: &Arc<dyn ExecutionPlan>| scan_config(plan).file_groups.iter().map(|g| g.len()).sum::<usize>();
        // 150 rows: the first two files (100 rows each) hold them
        let plan = t.scan(&ctx.state(), None, &[], Some(150)).await.unwrap();
        assert_eq!(files(&plan), 2);
        let rows: usize =
            datafusion::physical_plan::collect(plan, ctx.task_ctx()).await.unwrap().iter().map(|b| b.num_rows()).sum();
        assert!(rows >= 150, "{rows}");
        // no limit: every file
        assert_eq!(files(&t.scan(&ctx.state(), None, &[], None).await.unwrap()), 4);
    }

    #[tokio::test]
    async fn a_statement_lists_a_table_once_and_the_next_statement_lists_it_again() {
        let (catalog, table, folder) = parquet_table("listed-once", 2, 10);
        let files =
            |plan: &Arc<dyn ExecutionPlan>| scan_config(plan).file_groups.iter().map(|g| g.len()).sum::<usize>();
        let statement = CatalogTable::try_new(Arc::clone(&catalog), "default", table.clone()).unwrap();
        let ctx = SessionContext::new();
        assert_eq!(files(&statement.scan(&ctx.state(), None, &[], None).await.unwrap()), 2);
        // a writer adds a file while the statement is planned: the statement's second read of
        // the table (a self-join) sees the files its first read saw
        let data = folder.0.join("data");
        std::fs::copy(data.join("part-0.parquet"), data.join("part-9.parquet")).unwrap();
        assert_eq!(files(&statement.scan(&ctx.state(), None, &[], None).await.unwrap()), 2);
        // the next statement resolves the table again and sees the new file
        let next = CatalogTable::try_new(catalog, "default", table).unwrap();
        assert_eq!(files(&next.scan(&ctx.state(), None, &[], None).await.unwrap()), 3);
    }
}
