//! The statements that write data: CTAS, INSERT INTO a catalog table, UNLOAD. Each plans its
//! query, writes through `crate::write` (staged, moved, removed on failure), changes the catalog
//! only after every file is in place, and leaves a data manifest beside the query's results.

use std::sync::Arc;

use datafusion::arrow::compute::can_cast_types;
use datafusion::arrow::datatypes::{DataType, Schema};
use datafusion::common::ScalarValue;
use datafusion::logical_expr::{Expr, LogicalPlan, LogicalPlanBuilder, cast, col, lit};
use datafusion::sql::parser::Statement as DfStatement;
use datafusion::sql::sqlparser::ast::Statement as SqlStatement;
use glaux_catalog::{Column, Partition, SerDeInfo, StorageDescriptor, Table};
use object_store::ObjectStoreExt;

use super::cursor::Property;
use super::parse::{TableName, stored_as};
use super::run::{Outcome, Runner, catalog_error};
use crate::catalog::{StorageFormat, arrow_to_hive, hive_to_arrow, with_catalog_tables};
use crate::error::{Error, Result};
use crate::model::StatementType;
use crate::write::{self, WriteFormat, WriteSpec, Written, folder};

/// What a writing statement reports besides its rows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteStats {
    /// The manifest listing every file written (`<output location>/<query id>-manifest.csv`).
    pub manifest: Option<String>,
    pub rows: u64,
    pub bytes: u64,
}

/// A statement's `WITH (…)` properties, checked against the keys it knows.
struct Properties {
    statement: &'static str,
    entries: Vec<(String, Property)>,
}

impl Properties {
    fn new(statement: &'static str, entries: Vec<(String, Property)>, known: &[&str]) -> Result<Self> {
        for (key, _) in &entries {
            if !known.contains(&key.as_str()) {
                return Err(Error::InvalidInput(format!(
                    "{statement}: unknown property '{key}' (known: {})",
                    known.join(", ")
                )));
            }
        }
        Ok(Self { statement, entries })
    }

    fn text(&self, key: &str) -> Result<Option<&str>> {
        match self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v) {
            None => Ok(None),
            Some(Property::Text(t)) => Ok(Some(t)),
            Some(Property::List(_)) => {
                Err(Error::InvalidInput(format!("{}: {key} takes a value, not an ARRAY", self.statement)))
            }
        }
    }

    fn list(&self, key: &str) -> Result<Vec<String>> {
        match self.entries.iter().find(|(k, _)| k == key).map(|(_, v)| v) {
            None => Ok(vec![]),
            Some(Property::List(items)) => Ok(items.iter().map(|i| i.to_ascii_lowercase()).collect()),
            Some(Property::Text(_)) => {
                Err(Error::InvalidInput(format!("{}: {key} takes ARRAY['column', …]", self.statement)))
            }
        }
    }
}

const CTAS_KEYS: [&str; 11] = [
    "format",
    "bucketed_by",
    "bucket_count",
    "external_location",
    "partitioned_by",
    "write_compression",
    "parquet_compression",
    "field_delimiter",
    "table_type",
    "is_external",
    "compression",
];
const UNLOAD_KEYS: [&str; 4] = ["format", "compression", "field_delimiter", "partitioned_by"];

impl Runner<'_> {
    /// `CREATE TABLE … AS query`: the files first, then the table and its partitions.
    pub(super) async fn create_table_as(
        &self,
        name: TableName,
        if_not_exists: bool,
        properties: Vec<(String, Property)>,
        query: String,
        with_data: bool,
    ) -> Result<Outcome> {
        let (db, table_name) = (self.db(&name).to_ascii_lowercase(), name.1.to_ascii_lowercase());
        if self.catalog.get_table(&db, &table_name).await.map_err(catalog_error)?.is_some() {
            if if_not_exists {
                return Ok(super::run::done(StatementType::Dml));
            }
            return Err(Error::AlreadyExists(format!("table {db}.{table_name} already exists")));
        }
        let props = Properties::new("CREATE TABLE AS", properties, &CTAS_KEYS)?;
        if let Some(kind) = props.text("table_type")?
            && !kind.eq_ignore_ascii_case("HIVE")
        {
            return Err(Error::InvalidInput(format!(
                "CREATE TABLE AS: table_type '{kind}' is not supported; glaux makes HIVE tables"
            )));
        }
        let format = WriteFormat::named(props.text("format")?.unwrap_or("PARQUET"), props.text("field_delimiter")?)?;
        let location = match props.text("external_location")? {
            Some(l) => folder(l),
            None => folder(&format!("{}/tables/{}", self.output_location()?.trim_end_matches('/'), self.query_id)),
        };
        self.policy.check_write(&location)?;
        if write::holds_objects(self.state, &location).await? {
            return Err(Error::InvalidInput(format!(
                "CREATE TABLE AS: {location} already holds objects; the location of a new table must be empty"
            )));
        }
        let partitioned_by = props.list("partitioned_by")?;
        let plan = self.plan_query(&db, &query).await?;
        let schema = plan.schema().as_arrow().clone();
        check_partition_columns(&schema, &partitioned_by)?;
        let plan = if with_data { plan } else { LogicalPlanBuilder::from(plan).limit(0, Some(0))?.build()? };
        let compression =
            props.text("write_compression")?.or(props.text("parquet_compression")?).or(props.text("compression")?);
        let buckets = buckets(&props, &schema, &partitioned_by)?;
        let spec = WriteSpec {
            location,
            format,
            compression: compression.map(str::to_string),
            partitioned_by,
            buckets,
            insert: false,
        };
        let pending = write::write(self.state, plan, &spec, self.query_id).await?;
        let table = new_table(&db, &table_name, &schema, &spec)?;
        self.catalog.create_table(&db, table.clone(), false).await.map_err(catalog_error)?;
        if let Err(e) = self.add_partitions(&db, &table, &pending.written).await {
            // the files go (the guard), and the table that would have none of its partitions
            let _ = self.catalog.drop_table(&db, &table.name, true).await;
            return Err(e);
        }
        let written = pending.written.clone();
        pending.commit().await;
        self.finish(written, None).await
    }

    /// `INSERT INTO t [(columns)] query`: new files beside the table's, new partitions added.
    pub(super) async fn insert_into(&self, name: TableName, columns: Vec<String>, query: String) -> Result<Outcome> {
        let table = self.table(&name).await?;
        let db = self.db(&name).to_ascii_lowercase();
        let what = format!("INSERT INTO {db}.{}", table.name);
        if table.is_view() {
            return Err(Error::InvalidInput(format!("{what}: {db}.{} is a view", table.name)));
        }
        let format = match StorageFormat::of(&table)? {
            StorageFormat::Parquet => WriteFormat::Parquet,
            StorageFormat::Orc => WriteFormat::Orc,
            StorageFormat::Json => WriteFormat::Json,
            StorageFormat::Text { delimiter, quote: None, header_lines: 0, .. } => WriteFormat::Text { delimiter },
            _ => {
                return Err(Error::InvalidInput(format!(
                    "{what}: glaux inserts into Parquet, ORC, JSON and plain delimited-text tables only"
                )));
            }
        };
        let location = folder(table.location().map_err(catalog_error)?);
        self.policy.check_write(&location)?;
        let sd = table.storage_descriptor.clone().unwrap_or_default();
        if !sd.bucket_columns.is_empty() {
            // a new file per bucket would break "one file per bucket": Athena refuses it too
            return Err(Error::InvalidInput(format!(
                "{what}: the table is bucketed, and bucketed tables take no INSERT"
            )));
        }
        let all: Vec<&Column> = sd.columns.iter().chain(&table.partition_keys).collect();
        let targets: Vec<String> =
            if columns.is_empty() { all.iter().map(|c| c.name.to_ascii_lowercase()).collect() } else { columns };
        for t in &targets {
            if !all.iter().any(|c| c.name.eq_ignore_ascii_case(t)) {
                return Err(Error::InvalidInput(format!("{what}: the table has no column {t}")));
            }
        }
        let plan = self.plan_query(&db, &query).await?;
        let fields = plan.schema().fields().clone();
        if fields.len() != targets.len() {
            return Err(Error::InvalidInput(format!(
                "{what}: the query gives {} columns for the {} named ({})",
                fields.len(),
                targets.len(),
                targets.join(", ")
            )));
        }
        // the table's columns in its order: each from its query column, cast, or NULL
        let mut exprs: Vec<Expr> = vec![];
        for c in &all {
            let to = hive_to_arrow(&c.type_name)?;
            let expr = match targets.iter().position(|t| c.name.eq_ignore_ascii_case(t)) {
                Some(i) => {
                    let from = fields[i].data_type();
                    if !insertable(from, &to) {
                        return Err(Error::InvalidInput(format!(
                            "{what}: column {} is {}, and the query gives {from}",
                            c.name, c.type_name
                        )));
                    }
                    cast(col(datafusion::common::Column::from_name(fields[i].name())), to)
                }
                None => cast(lit(ScalarValue::Null), to),
            };
            exprs.push(expr.alias(c.name.to_ascii_lowercase()));
        }
        let plan = LogicalPlanBuilder::from(plan).project(exprs)?.build()?;
        let partitioned_by = table.partition_keys.iter().map(|k| k.name.to_ascii_lowercase()).collect();
        let compression =
            ["write.compression", "parquet.compression", "orc.compress"].iter().find_map(|k| table.parameters.get(*k));
        let spec = WriteSpec {
            location,
            format,
            compression: compression.cloned(),
            partitioned_by,
            buckets: None,
            insert: true,
        };
        let pending = write::write(self.state, plan, &spec, self.query_id).await?;
        self.add_partitions(&db, &table, &pending.written).await?;
        // the commit point for readers: until the markers are there, scans leave the files out
        write::mark_committed(self.state, &pending.written, self.query_id).await?;
        let written = pending.written.clone();
        pending.commit().await;
        self.finish(written, None).await
    }

    /// `UNLOAD (query) TO 'location' WITH (…)`: files only, into an empty location.
    pub(super) async fn unload(
        &self,
        query: String,
        location: String,
        properties: Vec<(String, Property)>,
    ) -> Result<Outcome> {
        let props = Properties::new("UNLOAD", properties, &UNLOAD_KEYS)?;
        let format = WriteFormat::named(props.text("format")?.unwrap_or("PARQUET"), props.text("field_delimiter")?)?;
        let location = folder(&location);
        self.policy.check_write(&location)?;
        if write::holds_objects(self.state, &location).await? {
            return Err(Error::InvalidInput(format!(
                "UNLOAD: {location} already holds objects; UNLOAD writes only into an empty location"
            )));
        }
        let partitioned_by = props.list("partitioned_by")?;
        let plan = self.plan_query(self.database, &query).await?;
        check_partition_columns(plan.schema().as_arrow(), &partitioned_by)?;
        let spec = WriteSpec {
            location,
            format,
            compression: props.text("compression")?.map(str::to_string),
            partitioned_by,
            buckets: None,
            insert: false,
        };
        let target = spec.location.clone();
        let pending = write::write(self.state, plan, &spec, self.query_id).await?;
        let written = pending.written.clone();
        pending.commit().await;
        // UNLOAD answers no rows, as Athena's does; its files are the result
        let mut outcome = self.finish(written, Some(&target)).await?;
        outcome.batch = super::run::done(StatementType::Dml).batch;
        Ok(outcome)
    }

    /// The query of a writing statement or a view, planned in `db` with the catalog's tables;
    /// anything but a query is refused.
    pub(super) async fn plan_query(&self, db: &str, query: &str) -> Result<LogicalPlan> {
        let statement = crate::script::single(query)?;
        let is_query = matches!(&statement, DfStatement::Statement(s) if matches!(**s, SqlStatement::Query(_)));
        if !is_query {
            return Err(Error::InvalidInput(format!("expected a query (SELECT, WITH or VALUES), not: {query}")));
        }
        let mut state = self.state.clone();
        state.config_mut().options_mut().catalog.default_schema = db.to_string();
        let state = with_catalog_tables(state, &statement, self.catalog, &Arc::default()).await?;
        Ok(state.statement_to_plan(statement).await?)
    }

    /// The new partitions of `table` that `written` holds, added (existing ones are kept).
    async fn add_partitions(&self, db: &str, table: &Table, written: &Written) -> Result<()> {
        if table.partition_keys.is_empty() {
            return Ok(());
        }
        // each partition's location is the folder its files went to
        let sd = table.storage_descriptor.clone().unwrap_or_default();
        let partitions: Vec<Partition> = written
            .partitions()
            .into_iter()
            .map(|(values, folder)| {
                let storage_descriptor = Some(StorageDescriptor { location: Some(folder), ..sd.clone() });
                Partition { values, storage_descriptor, ..Default::default() }
            })
            .collect();
        self.catalog.add_partitions(db, &table.name, partitions, true).await.map_err(catalog_error)?;
        Ok(())
    }

    /// The statement's answer (Athena's one `rows` row) and its manifest. No manifest is
    /// written among the files of `data` (an UNLOAD whose target is its results location, as
    /// awswrangler runs it): readers of the folder would take it for data.
    async fn finish(&self, written: Written, data: Option<&str>) -> Result<Outcome> {
        let output = self.output_location.map(|o| o.trim_end_matches('/'));
        let inside = |folder: &str| data.is_some_and(|d| crate::gate::is_under(&format!("{folder}/"), d));
        let manifest = match output.filter(|o| !inside(o)) {
            Some(folder) => {
                let location = format!("{folder}/{}-manifest.csv", self.query_id);
                let (store_url, path) = crate::catalog::split_location(&location)?;
                let store = self.state.runtime_env().object_store(&store_url)?;
                store.put(&path, written.manifest().into()).await.map_err(Error::Storage)?;
                Some(location)
            }
            None => None,
        };
        let mut outcome = super::run::rows(StatementType::Dml, &["rows"], vec![vec![written.rows.to_string()]])?;
        outcome.written = Some(WriteStats { manifest, rows: written.rows, bytes: written.bytes() });
        Ok(outcome)
    }

    fn output_location(&self) -> Result<&str> {
        self.output_location.ok_or_else(|| {
            Error::InvalidInput(
                "CREATE TABLE AS needs external_location, or an output location (the workgroup's, --output-location, or the request's)"
                    .into(),
            )
        })
    }
}

/// Whether a query column of type `from` may fill a table column of type `to` without a CAST:
/// NULL anywhere, and otherwise within one family (numbers, text, dates and times, …), as Trino
/// coerces on INSERT.
fn insertable(from: &DataType, to: &DataType) -> bool {
    use DataType as T;
    let family = |t: &DataType| match t {
        T::Null => 0,
        t if t.is_numeric() => 1,
        T::Utf8 | T::LargeUtf8 | T::Utf8View => 2,
        T::Date32 | T::Date64 | T::Timestamp(..) => 3,
        T::Boolean => 4,
        T::Binary | T::LargeBinary | T::BinaryView => 5,
        _ => 6,
    };
    match (family(from), family(to)) {
        (0, _) => true,
        (6, 6) => can_cast_types(from, to),
        (a, b) => a == b,
    }
}

/// A CTAS's bucketing: `bucketed_by` and `bucket_count` together, on columns of the query that are
/// not partition columns and have a Hive hash.
fn buckets(props: &Properties, schema: &Schema, partitioned_by: &[String]) -> Result<Option<(Vec<String>, i32)>> {
    let by = props.list("bucketed_by")?;
    let count = match (by.is_empty(), props.text("bucket_count")?) {
        (true, None) => return Ok(None),
        (false, Some(n)) => n.parse::<i32>().ok().filter(|n| *n > 0).ok_or_else(|| {
            Error::InvalidInput(format!("CREATE TABLE AS: bucket_count must be a positive number, not '{n}'"))
        })?,
        _ => return Err(Error::InvalidInput("CREATE TABLE AS: bucketed_by and bucket_count go together".into())),
    };
    for name in &by {
        let field = schema.fields().iter().find(|f| f.name().eq_ignore_ascii_case(name)).ok_or_else(|| {
            Error::InvalidInput(format!("CREATE TABLE AS: bucketed_by names {name}, which the query does not give"))
        })?;
        if partitioned_by.contains(name) {
            return Err(Error::InvalidInput(format!(
                "CREATE TABLE AS: {name} is a partition column and cannot be a bucket column"
            )));
        }
        if !crate::bucketing::hashable(field.data_type()) {
            return Err(Error::InvalidInput(format!(
                "CREATE TABLE AS: bucket column {name} is {}; glaux buckets integers, strings, booleans and dates",
                field.data_type()
            )));
        }
    }
    Ok(Some((by, count)))
}

/// Athena's rule: the partition columns are the last columns of the query, in `partitioned_by` order.
fn check_partition_columns(schema: &Schema, partitioned_by: &[String]) -> Result<()> {
    if partitioned_by.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = schema.fields().iter().map(|f| f.name().to_ascii_lowercase()).collect();
    if partitioned_by.len() >= names.len() {
        return Err(Error::InvalidInput(format!(
            "partitioned_by names {} columns; the query must give at least one more column than that",
            partitioned_by.len()
        )));
    }
    let last = &names[names.len() - partitioned_by.len()..];
    if last != partitioned_by {
        return Err(Error::InvalidInput(format!(
            "partition columns must be the last columns of the query, in the order of partitioned_by: expected ({}), found ({})",
            partitioned_by.join(", "),
            last.join(", ")
        )));
    }
    Ok(())
}

/// The catalog entry of a CTAS table, as Athena makes one.
fn new_table(db: &str, name: &str, schema: &Schema, spec: &WriteSpec) -> Result<Table> {
    let column = |f: &datafusion::arrow::datatypes::Field| {
        let t = match f.data_type() {
            DataType::Null => DataType::Utf8,
            other => other.clone(),
        };
        Column { name: f.name().to_ascii_lowercase(), type_name: arrow_to_hive(&t), comment: None }
    };
    let (data, keys): (Vec<_>, Vec<_>) =
        schema.fields().iter().partition(|f| !spec.partitioned_by.contains(&f.name().to_ascii_lowercase()));
    let (input, output, serde) = stored_as(spec.format.stored_as())
        .ok_or_else(|| Error::Internal(format!("no SerDe for {}", spec.format.stored_as())))?;
    let mut parameters = std::collections::BTreeMap::new();
    if let WriteFormat::Text { delimiter } = spec.format {
        let d = (delimiter as char).to_string();
        parameters.insert("field.delim".to_string(), d.clone());
        parameters.insert("serialization.format".to_string(), d);
    }
    // the parameters Athena gives a CTAS table, the codec under the key each format reads
    let mut table_parameters = std::collections::BTreeMap::from([
        ("EXTERNAL".to_string(), "TRUE".to_string()),
        ("has_encrypted_data".to_string(), "false".to_string()),
        ("classification".to_string(), spec.format.stored_as().to_ascii_lowercase()),
    ]);
    if let Some(codec) = &spec.compression {
        let key = match spec.format {
            WriteFormat::Parquet => "parquet.compression",
            WriteFormat::Orc => "orc.compress",
            _ => "write.compression",
        };
        table_parameters.insert(key.to_string(), codec.to_ascii_uppercase());
    }
    Ok(Table {
        name: name.to_string(),
        database_name: Some(db.to_string()),
        table_type: Some("EXTERNAL_TABLE".into()),
        storage_descriptor: Some(StorageDescriptor {
            columns: data.into_iter().map(|f| column(f)).collect(),
            location: Some(spec.location.clone()),
            input_format: Some(input.into()),
            output_format: Some(output.into()),
            compressed: Some(!spec.compression.as_deref().is_some_and(|c| c.eq_ignore_ascii_case("NONE"))),
            serde_info: Some(SerDeInfo { serialization_library: Some(serde.into()), parameters, ..Default::default() }),
            bucket_columns: spec.buckets.as_ref().map(|(by, _)| by.clone()).unwrap_or_default(),
            number_of_buckets: spec.buckets.as_ref().map(|(_, n)| *n),
            ..Default::default()
        }),
        partition_keys: keys.into_iter().map(|f| column(f)).collect(),
        parameters: table_parameters,
        ..Default::default()
    })
}
