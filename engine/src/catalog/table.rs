//! A catalog table as DataFusion sees it: partitions pruned from the WHERE clause before
//! anything is listed, only surviving partitions' objects listed and read, each file carrying
//! its partition values.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{Field, FieldRef, Schema, SchemaRef};
use datafusion::catalog::{Session, TableProvider};
use datafusion::common::ScalarValue;
use datafusion::datasource::TableType;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{FileGroup, FileScanConfigBuilder};
use datafusion::datasource::table_schema::TableSchema;
use datafusion::error::Result as DfResult;
use datafusion::execution::object_store::ObjectStoreUrl;
use datafusion::logical_expr::{Expr, TableProviderFilterPushDown};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::empty::EmptyExec;
use datafusion::physical_plan::union::UnionExec;
use futures::{StreamExt, TryStreamExt};
use glaux_catalog::{Catalog, Partition, StorageDescriptor, Table};
use object_store::path::Path;
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};
use url::Url;

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
                .map_err(|e| Error::Config(format!("table {name}, column {}: {e}", c.name)))?;
            Ok(Field::new(c.name.to_ascii_lowercase(), t, true))
        };
        let columns = sd.columns.iter().map(field).collect::<Result<Vec<_>>>()?;
        let partition_fields: Vec<FieldRef> =
            table.partition_keys.iter().map(|c| field(c).map(Arc::new)).collect::<Result<_>>()?;
        let mut all = columns.clone();
        all.extend(partition_fields.iter().map(|f| f.as_ref().clone()));
        let format = StorageFormat::of(&table)?;
        table.location().map_err(|e| Error::Config(e.to_string()))?;
        Ok(Self {
            catalog,
            database: database.to_string(),
            format,
            file_schema: Arc::new(Schema::new(columns)),
            partition_fields,
            schema: Arc::new(Schema::new(all)),
            table,
            log: Arc::default(),
        })
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
        let table_location = self.table.location().map_err(|e| Error::Config(e.to_string()))?.to_string();
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
            .map_err(|e| Error::Config(e.to_string()))?;
        let total = partitions.len();
        let locations = self.select(state, &table_location, partitions, &partition_filters)?;
        let source = if expression.is_some() { "catalog with expression" } else { "catalog" };
        Ok(Located { locations, total, source })
    }

    fn select(
        &self,
        state: &dyn Session,
        table_location: &str,
        partitions: Vec<Partition>,
        filters: &[Expr],
    ) -> Result<Vec<(String, Vec<ScalarValue>)>> {
        for p in &partitions {
            self.table.check_partition(p).map_err(|e| Error::Config(e.to_string()))?;
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
        let url = if path.is_file() { Url::from_file_path(&path) } else { Url::from_directory_path(&path) };
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

/// Hive skips files whose names start with `_` or `.` (`_SUCCESS`, `.crc`), and so does glaux.
pub(crate) fn is_data(meta: &ObjectMeta) -> bool {
    let name = meta.location.filename().unwrap_or_default();
    meta.size > 0 && !name.starts_with('_') && !name.starts_with('.')
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
        // Partition filters are applied exactly while pruning; the rest stays with DataFusion.
        Ok(filters
            .iter()
            .map(|f| {
                if pruning::only_partition_columns(f, &columns) {
                    TableProviderFilterPushDown::Exact
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
                let objects = objects_at(store.as_ref(), prefix, location.ends_with('/')).await?;
                Ok::<_, Error>((store_url, objects, values))
            })
            .buffer_unordered(16)
            .try_collect::<Vec<_>>()
            .await?;
        let mut by_store: BTreeMap<String, (ObjectStoreUrl, Vec<PartitionedFile>)> = BTreeMap::new();
        for (store_url, objects, values) in listed {
            let entry = by_store.entry(store_url.as_str().to_string()).or_insert_with(|| (store_url, vec![]));
            for meta in objects.into_iter().filter(is_data) {
                entry.1.push(PartitionedFile::new_from_meta(meta).with_partition_values(values.clone()));
            }
        }
        let files: Vec<&PartitionedFile> = by_store.values().flat_map(|(_, f)| f).collect();
        self.log.record(TableScan {
            table: self.name(),
            partitioned: !self.partition_fields.is_empty(),
            partitions_total: total,
            partitions_scanned,
            source,
            files: files.len(),
            file_bytes: files.iter().map(|f| f.object_meta.size).sum(),
        });
        let codec = if self.format.is_text() { self.text_codec(&by_store)? } else { None };
        let file_format = self.format.file_format(codec)?;
        let table_schema = TableSchema::builder(Arc::clone(&self.file_schema))
            .with_table_partition_cols(self.partition_fields.clone())
            .build();
        let target = state.config_options().execution.target_partitions.max(1);
        let mut plans = vec![];
        for (_, (store_url, mut files)) in by_store {
            if files.is_empty() {
                continue;
            }
            files.sort_by(|a, b| a.object_meta.location.cmp(&b.object_meta.location));
            let mut groups: Vec<Vec<PartitionedFile>> = vec![vec![]; target.min(files.len())];
            let count = groups.len();
            for (i, f) in files.into_iter().enumerate() {
                groups[i % count].push(f);
            }
            let source = file_format.file_source(table_schema.clone());
            let config = FileScanConfigBuilder::new(store_url, source)
                .with_file_groups(groups.into_iter().map(FileGroup::new).collect())
                .with_projection_indices(projection.cloned())?
                .with_limit(limit)
                .build();
            plans.push(file_format.create_physical_plan(state, config).await?);
        }
        match plans.len() {
            0 => {
                let projected = match projection {
                    Some(p) => Arc::new(self.schema.project(p)?),
                    None => Arc::clone(&self.schema),
                };
                Ok(Arc::new(EmptyExec::new(projected)))
            }
            1 => Ok(plans.pop().expect("one plan")),
            _ => UnionExec::try_new(plans),
        }
    }
}

impl CatalogTable {
    /// The one codec the table's text objects agree on, from their extensions.
    fn text_codec(
        &self,
        by_store: &BTreeMap<String, (ObjectStoreUrl, Vec<PartitionedFile>)>,
    ) -> Result<Option<&'static str>> {
        let mut seen: Option<(Option<&'static str>, String)> = None;
        for (_, files) in by_store.values() {
            for f in files {
                let key = f.object_meta.location.to_string();
                let codec = compression::from_extension(&key);
                match &seen {
                    None => seen = Some((codec, key)),
                    Some((c, first)) if *c != codec => {
                        return Err(Error::Location {
                            location: self.name(),
                            reason: format!("objects use different compression ('{first}' and '{key}')"),
                        });
                    }
                    _ => {}
                }
            }
        }
        Ok(seen.and_then(|(c, _)| c))
    }
}
