//! Runs Athena's DDL and utility statements against the catalog; results are small string tables.

use std::collections::BTreeSet;
use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::execution::context::SessionState;
use futures::TryStreamExt;
use glaux_catalog::{Catalog, Column, Database, Partition, StorageDescriptor, Table};
use object_store::ObjectMeta;

use super::parse::{AthenaStatement, Spec, TableChange, TableName, ordered_values, partition_name};
use super::writes::WriteStats;
use crate::catalog::{CatalogTable, PrestoView, StorageFormat, arrow_to_hive};
use crate::error::{Error, Result};
use crate::gate::StatementPolicy;
use crate::model::StatementType;

/// What running a statement produced.
pub struct Outcome {
    pub statement_type: StatementType,
    pub batch: RecordBatch,
    /// Set by `USE`: the database later statements resolve in.
    pub use_database: Option<String>,
    /// Set by the statements that write data.
    pub written: Option<WriteStats>,
}

pub(super) fn catalog_error(e: glaux_catalog::Error) -> Error {
    Error::Catalog(e)
}

fn table_of(batch_columns: &[&str], rows: Vec<Vec<String>>) -> Result<RecordBatch> {
    let schema =
        Arc::new(Schema::new(batch_columns.iter().map(|c| Field::new(*c, DataType::Utf8, true)).collect::<Vec<_>>()));
    let columns: Vec<ArrayRef> = (0..batch_columns.len())
        .map(|i| Arc::new(rows.iter().map(|r| Some(r[i].as_str())).collect::<StringArray>()) as ArrayRef)
        .collect();
    Ok(RecordBatch::try_new(schema, columns).map_err(datafusion::error::DataFusionError::from)?)
}

/// A table's columns after a change: names unique, none a partition key's.
fn check_columns(what: &str, columns: &[Column], partition_keys: &[Column]) -> Result<()> {
    let mut seen = BTreeSet::new();
    for c in columns {
        let name = c.name.to_ascii_lowercase();
        if partition_keys.iter().any(|k| k.name.eq_ignore_ascii_case(&name)) {
            return Err(Error::InvalidInput(format!("{what}: column {name} is a partition key")));
        }
        if !seen.insert(name.clone()) {
            return Err(Error::InvalidInput(format!("{what}: column {name} already exists")));
        }
    }
    Ok(())
}

pub(super) fn done(statement_type: StatementType) -> Outcome {
    Outcome {
        statement_type,
        batch: RecordBatch::new_empty(Arc::new(Schema::empty())),
        use_database: None,
        written: None,
    }
}

pub(super) fn rows(statement_type: StatementType, columns: &[&str], rows: Vec<Vec<String>>) -> Result<Outcome> {
    Ok(Outcome { statement_type, batch: table_of(columns, rows)?, use_database: None, written: None })
}

/// Athena's LIKE for SHOW: `*` is any text and `|` separates alternatives; case-insensitive.
fn matches_pattern(pattern: &str, name: &str) -> bool {
    pattern.split('|').any(|alt| {
        let alt = alt.trim().to_ascii_lowercase();
        let parts: Vec<&str> = alt.split('*').collect();
        let name = name.to_ascii_lowercase();
        let mut rest = name.as_str();
        for (i, part) in parts.iter().enumerate() {
            if i == 0 {
                if !rest.starts_with(part) {
                    return false;
                }
                rest = &rest[part.len()..];
            } else if i == parts.len() - 1 {
                return rest.ends_with(part);
            } else if let Some(at) = rest.find(part) {
                rest = &rest[at + part.len()..];
            } else {
                return false;
            }
        }
        rest.is_empty()
    })
}

pub struct Runner<'a> {
    pub catalog: &'a Arc<dyn Catalog>,
    pub state: &'a SessionState,
    pub database: &'a str,
    /// The query's id: it names the files a statement writes.
    pub query_id: &'a str,
    /// Where the query's results go: CTAS tables without a location and data manifests too.
    pub output_location: Option<&'a str>,
    /// Where statements may write.
    pub policy: &'a StatementPolicy,
}

impl Runner<'_> {
    pub(super) fn db<'b>(&'b self, name: &'b TableName) -> &'b str {
        name.0.as_deref().unwrap_or(self.database)
    }

    pub(super) async fn table(&self, name: &TableName) -> Result<Table> {
        let db = self.db(name);
        self.catalog
            .get_table(db, &name.1)
            .await
            .map_err(catalog_error)?
            .ok_or_else(|| Error::NotFound(format!("table {db}.{} does not exist", name.1)))
    }

    pub async fn run(&self, statement: AthenaStatement) -> Result<Outcome> {
        use AthenaStatement as S;
        match statement {
            S::CreateDatabase { name, if_not_exists, comment, location } => {
                let db = Database { name, description: comment, location_uri: location, ..Default::default() };
                self.catalog.create_database(db, if_not_exists).await.map_err(catalog_error)?;
                Ok(done(StatementType::Ddl))
            }
            S::DropDatabase { name, if_exists, cascade } => {
                self.catalog.drop_database(&name, if_exists, cascade).await.map_err(catalog_error)?;
                Ok(done(StatementType::Ddl))
            }
            S::CreateTable { database, table, if_not_exists } => {
                let db = database.as_deref().unwrap_or(self.database).to_ascii_lowercase();
                if self.catalog.get_table(&db, &table.name).await.map_err(catalog_error)?.is_some() {
                    if if_not_exists {
                        return Ok(done(StatementType::Ddl));
                    }
                    return Err(Error::AlreadyExists(format!("table {db}.{} already exists", table.name)));
                }
                let table = self.complete_table(&db, *table).await?;
                self.catalog.create_table(&db, table, if_not_exists).await.map_err(catalog_error)?;
                Ok(done(StatementType::Ddl))
            }
            S::DropTable { table, if_exists } => {
                self.catalog.drop_table(self.db(&table), &table.1, if_exists).await.map_err(catalog_error)?;
                Ok(done(StatementType::Ddl))
            }
            S::ShowDatabases { like } => {
                let names = self.catalog.list_databases().await.map_err(catalog_error)?;
                let names =
                    names.into_iter().map(|d| d.name).filter(|n| like.as_deref().is_none_or(|p| matches_pattern(p, n)));
                rows(StatementType::Utility, &["database_name"], names.map(|n| vec![n]).collect())
            }
            S::ShowTables { database, like } => {
                let names = self.names(database.as_deref(), like.as_deref(), |_| true).await?;
                rows(StatementType::Utility, &["tab_name"], names)
            }
            S::ShowPartitions { table: name } => {
                let table = self.table(&name).await?;
                if table.partition_keys.is_empty() {
                    return Err(Error::InvalidInput(format!(
                        "table {}.{} is not partitioned",
                        self.db(&name),
                        table.name
                    )));
                }
                let partitions =
                    self.catalog.get_partitions(self.db(&name), &table.name, None).await.map_err(catalog_error)?;
                let mut names: Vec<String> =
                    partitions.iter().map(|p| partition_name(&table.partition_keys, &p.values)).collect();
                names.sort();
                rows(StatementType::Utility, &["partition"], names.into_iter().map(|n| vec![n]).collect())
            }
            S::ShowTblProperties { table: name } => {
                let table = self.table(&name).await?;
                let props = table.parameters.iter().map(|(k, v)| vec![k.clone(), v.clone()]).collect();
                rows(StatementType::Utility, &["prpt_name", "prpt_value"], props)
            }
            S::ShowCreateTable { table: name } => {
                let table = self.table(&name).await?;
                let text = show_create(self.db(&name), &table);
                rows(StatementType::Utility, &["createtab_stmt"], text.lines().map(|l| vec![l.to_string()]).collect())
            }
            S::ShowColumns { table: name } => {
                // Athena lists the data columns and then the partition keys, names only
                let table = self.table(&name).await?;
                let sd = table.storage_descriptor.clone().unwrap_or_default();
                let names = sd.columns.iter().chain(&table.partition_keys).map(|c| vec![c.name.clone()]).collect();
                rows(StatementType::Utility, &["field"], names)
            }
            S::Describe { table: name } => {
                let table = self.table(&name).await?;
                let sd = table.storage_descriptor.clone().unwrap_or_default();
                let mut out: Vec<Vec<String>> = sd
                    .columns
                    .iter()
                    .map(|c| vec![c.name.clone(), c.type_name.clone(), c.comment.clone().unwrap_or_default()])
                    .collect();
                if !table.partition_keys.is_empty() {
                    out.push(vec!["".into(), "".into(), "".into()]);
                    out.push(vec!["# Partition Information".into(), "".into(), "".into()]);
                    out.push(vec!["# col_name".into(), "data_type".into(), "comment".into()]);
                    out.extend(
                        table
                            .partition_keys
                            .iter()
                            .map(|c| vec![c.name.clone(), c.type_name.clone(), c.comment.clone().unwrap_or_default()]),
                    );
                }
                rows(StatementType::Utility, &["col_name", "data_type", "comment"], out)
            }
            S::AddPartitions { table: name, partitions, if_not_exists } => {
                let table = self.table(&name).await?;
                let parts = partitions
                    .iter()
                    .map(|(spec, location)| self.partition(&table, spec, location.clone()))
                    .collect::<Result<Vec<_>>>()?;
                self.check_partition_values(&name, &table, &parts)?;
                self.catalog
                    .add_partitions(self.db(&name), &table.name, parts, if_not_exists)
                    .await
                    .map_err(catalog_error)?;
                Ok(done(StatementType::Ddl))
            }
            S::DropPartitions { table: name, partitions, if_exists } => {
                let table = self.table(&name).await?;
                let values = partitions.iter().map(|s| ordered_values(&table, s)).collect::<Result<Vec<_>>>()?;
                self.catalog
                    .drop_partitions(self.db(&name), &table.name, values, if_exists)
                    .await
                    .map_err(catalog_error)?;
                Ok(done(StatementType::Ddl))
            }
            S::MsckRepair { table: name } => self.repair(&name).await,
            S::Use { database } => {
                if self.catalog.get_database(&database).await.map_err(catalog_error)?.is_none() {
                    return Err(Error::NotFound(format!("database {database} does not exist")));
                }
                let mut outcome = done(StatementType::Utility);
                outcome.use_database = Some(database.to_ascii_lowercase());
                Ok(outcome)
            }
            S::AlterTable { table: name, change } => {
                let table = self.table(&name).await?;
                let db = self.db(&name).to_ascii_lowercase();
                if table.is_view() {
                    return Err(Error::InvalidInput(format!(
                        "{db}.{} is a view; CREATE OR REPLACE VIEW changes it",
                        table.name
                    )));
                }
                self.alter(&db, table, change).await?;
                Ok(done(StatementType::Ddl))
            }
            S::CreateTableAs { table, if_not_exists, properties, query, with_data } => {
                self.create_table_as(table, if_not_exists, properties, query, with_data).await
            }
            S::InsertInto { table, columns, query } => self.insert_into(table, columns, query).await,
            S::Analyze { table, columns } => self.analyze(table, columns).await,
            S::Unload { query, location, properties } => self.unload(query, location, properties).await,
            S::CreateView { view, or_replace, query } => {
                let (db, name) = (self.db(&view).to_ascii_lowercase(), view.1.to_ascii_lowercase());
                let existing = self.catalog.get_table(&db, &name).await.map_err(catalog_error)?;
                match &existing {
                    Some(t) if !t.is_view() => {
                        return Err(Error::AlreadyExists(format!(
                            "{db}.{name} already exists and is a table, not a view"
                        )));
                    }
                    Some(_) if !or_replace => {
                        return Err(Error::AlreadyExists(format!("view {db}.{name} already exists")));
                    }
                    _ => {}
                }
                let table = PrestoView::table(&db, &name, &query, &self.view_schema(&db, &query).await?)?;
                match existing {
                    Some(_) => self.catalog.update_table(&db, table).await,
                    None => self.catalog.create_table(&db, table, false).await,
                }
                .map_err(catalog_error)?;
                Ok(done(StatementType::Ddl))
            }
            S::DropView { view, if_exists } => {
                let db = self.db(&view);
                match self.catalog.get_table(db, &view.1).await.map_err(catalog_error)? {
                    None if if_exists => return Ok(done(StatementType::Ddl)),
                    None => return Err(Error::NotFound(format!("view {db}.{} does not exist", view.1))),
                    Some(t) if !t.is_view() => {
                        return Err(Error::InvalidInput(format!(
                            "{db}.{} is a table, not a view (DROP TABLE drops it)",
                            view.1
                        )));
                    }
                    Some(_) => {}
                }
                self.catalog.drop_table(db, &view.1, false).await.map_err(catalog_error)?;
                Ok(done(StatementType::Ddl))
            }
            S::ShowViews { database, like } => {
                let names = self.names(database.as_deref(), like.as_deref(), Table::is_view).await?;
                rows(StatementType::Utility, &["views"], names)
            }
            S::ShowCreateView { view } => {
                let table = self.table(&view).await?;
                let db = self.db(&view);
                if !table.is_view() {
                    return Err(Error::InvalidInput(format!(
                        "{db}.{} is a table, not a view (SHOW CREATE TABLE shows it)",
                        table.name
                    )));
                }
                let definition = PrestoView::of(db, &table)?;
                let text = format!("CREATE VIEW {db}.{} AS\n{}", table.name, definition.original_sql);
                rows(StatementType::Utility, &["createview_stmt"], text.lines().map(|l| vec![l.to_string()]).collect())
            }
            // a session's own statements: the engine keeps them in the session
            S::Prepare { .. } | S::Execute { .. } | S::Deallocate { .. } => {
                Err(Error::Internal("prepared statements are kept by the session, not the catalog".into()))
            }
        }
    }

    /// Applies an ALTER TABLE change to `table` in `db`; names what is wrong before anything changes.
    async fn alter(&self, db: &str, mut table: Table, change: TableChange) -> Result<()> {
        let what = format!("table {db}.{}", table.name);
        let sd = table.storage_descriptor.get_or_insert_with(StorageDescriptor::default);
        match change {
            TableChange::AddColumns(columns) => {
                let mut all = sd.columns.clone();
                all.extend(columns);
                check_columns(&what, &all, &table.partition_keys)?;
                sd.columns = all;
            }
            TableChange::ReplaceColumns(columns) => {
                check_columns(&what, &columns, &table.partition_keys)?;
                sd.columns = columns;
            }
            TableChange::SetProperties(properties) => table.parameters.extend(properties),
            TableChange::SetLocation(location) => {
                crate::catalog::split_location(&location)?;
                // partitions keep their own locations, as in Hive and Athena
                sd.location = Some(location);
            }
            TableChange::RenameTo((new_db, new_name)) => {
                let new_db = new_db.unwrap_or_else(|| db.to_string()).to_ascii_lowercase();
                let partitions = self.catalog.get_partitions(db, &table.name, None).await.map_err(catalog_error)?;
                let old_name = std::mem::replace(&mut table.name, new_name.to_ascii_lowercase());
                // the new name first, with every partition; the old one goes last, so a failure
                // in between leaves both rather than neither
                self.catalog.create_table(&new_db, table.clone(), false).await.map_err(catalog_error)?;
                let partitions = partitions
                    .into_iter()
                    .map(|mut p| {
                        p.table_name = Some(table.name.clone());
                        p.database_name = Some(new_db.clone());
                        p
                    })
                    .collect();
                self.catalog.add_partitions(&new_db, &table.name, partitions, false).await.map_err(catalog_error)?;
                return self.catalog.drop_table(db, &old_name, false).await.map_err(catalog_error);
            }
        }
        self.catalog.update_table(db, table).await.map_err(catalog_error)
    }

    /// The names of `database`'s tables that `keep` keeps and match `like`, one per row.
    async fn names(
        &self,
        database: Option<&str>,
        like: Option<&str>,
        keep: fn(&Table) -> bool,
    ) -> Result<Vec<Vec<String>>> {
        let tables = self.catalog.list_tables(database.unwrap_or(self.database)).await.map_err(catalog_error)?;
        Ok(tables
            .into_iter()
            .filter(|t| keep(t) && like.is_none_or(|p| matches_pattern(p, &t.name)))
            .map(|t| vec![t.name])
            .collect())
    }

    /// The columns a view's query yields, planned in `db` with the catalog's tables.
    async fn view_schema(&self, db: &str, query: &str) -> Result<Schema> {
        Ok(self.plan_query(db, query).await?.schema().as_arrow().clone())
    }

    fn partition(&self, table: &Table, spec: &Spec, location: Option<String>) -> Result<Partition> {
        let values = ordered_values(table, spec)?;
        let base = table.location().map_err(catalog_error)?.trim_end_matches('/').to_string();
        let location =
            location.unwrap_or_else(|| format!("{base}/{}/", partition_name(&table.partition_keys, &values)));
        let mut sd = table.storage_descriptor.clone().unwrap_or_default();
        sd.location = Some(location);
        Ok(Partition { values, storage_descriptor: Some(sd), ..Default::default() })
    }

    /// Values must parse as their keys' types before anything is written.
    fn check_partition_values(&self, name: &TableName, table: &Table, parts: &[Partition]) -> Result<()> {
        let provider = CatalogTable::try_new(Arc::clone(self.catalog), self.db(name), table.clone())?;
        provider.check_values(&parts.iter().map(|p| p.values.clone()).collect::<Vec<_>>())
    }

    /// Fills in what a CREATE TABLE left to glaux (Parquet/ORC columns from a file's footer) and
    /// checks the rest: the SerDe is known, the types parse, the location can be listed.
    async fn complete_table(&self, db: &str, mut table: Table) -> Result<Table> {
        StorageFormat::of(&table)?;
        let location = table.location().map_err(catalog_error)?.to_string();
        let first = first_object(self.state, &location).await?;
        let sd = table.storage_descriptor.get_or_insert_with(StorageDescriptor::default);
        if sd.columns.is_empty() {
            let format = StorageFormat::of(&table)?;
            let (Some(meta), StorageFormat::Parquet | StorageFormat::Orc | StorageFormat::Json) = (first, &format)
            else {
                return Err(Error::InvalidInput(format!(
                    "table {db}.{}: no columns given; glaux infers them only for Parquet, ORC and JSON tables with data at {location}",
                    table.name
                )));
            };
            let (store_url, _) = crate::catalog::split_location(&location)?;
            let store = self.state.runtime_env().object_store(&store_url)?;
            let codec = crate::compression::from_extension(meta.location.as_ref());
            let schema = format.file_format(self.state, codec)?.infer_schema(self.state, &store, &[meta]).await?;
            let keys: BTreeSet<String> = table.partition_keys.iter().map(|k| k.name.clone()).collect();
            let sd = table.storage_descriptor.get_or_insert_with(StorageDescriptor::default);
            sd.columns = schema
                .fields()
                .iter()
                .filter(|f| !keys.contains(&f.name().to_ascii_lowercase()))
                .map(|f| Column {
                    name: f.name().to_ascii_lowercase(),
                    type_name: arrow_to_hive(f.data_type()),
                    comment: None,
                })
                .collect();
        }
        CatalogTable::try_new(Arc::clone(self.catalog), db, table.clone())?;
        // partition projection is checked whole now, not at the first query
        if let Some(projection) = crate::catalog::Projection::of(db, &table)? {
            projection.validate()?;
        }
        Ok(table)
    }

    /// MSCK REPAIR TABLE: adds the `key=value/…` directories under the table's location that the
    /// catalog does not have yet, and says what it added.
    async fn repair(&self, name: &TableName) -> Result<Outcome> {
        let table = self.table(name).await?;
        let db = self.db(name);
        if table.partition_keys.is_empty() {
            return Err(Error::InvalidInput(format!("table {db}.{} is not partitioned", table.name)));
        }
        let location = table.location().map_err(catalog_error)?.to_string();
        let (store_url, prefix) = crate::catalog::split_location(&location)?;
        let store = self.state.runtime_env().object_store(&store_url)?;
        let prefix = if prefix.as_ref().is_empty() { None } else { Some(prefix) };
        let objects: Vec<ObjectMeta> = store.list(prefix.as_ref()).try_collect().await.map_err(Error::Storage)?;
        let depth = prefix.as_ref().map(|p| p.parts().count()).unwrap_or(0);
        let mut found: BTreeSet<Vec<String>> = BTreeSet::new();
        for meta in objects {
            let parts: Vec<String> = meta.location.parts().skip(depth).map(|p| p.as_ref().to_string()).collect();
            let mut values = vec![];
            for (key, part) in table.partition_keys.iter().zip(&parts) {
                match part.split_once('=') {
                    Some((k, v)) if k.eq_ignore_ascii_case(&key.name) => values.push(percent_decode(v)),
                    _ => break,
                }
            }
            if values.len() == table.partition_keys.len() && parts.len() > values.len() {
                found.insert(values);
            }
        }
        let existing: BTreeSet<Vec<String>> = self
            .catalog
            .get_partitions(db, &table.name, None)
            .await
            .map_err(catalog_error)?
            .into_iter()
            .map(|p| p.values)
            .collect();
        let missing: Vec<Vec<String>> = found.difference(&existing).cloned().collect();
        let spec_of = |values: &Vec<String>| -> Spec {
            table.partition_keys.iter().map(|k| k.name.clone()).zip(values.iter().cloned()).collect()
        };
        let parts = missing.iter().map(|v| self.partition(&table, &spec_of(v), None)).collect::<Result<Vec<_>>>()?;
        self.check_partition_values(name, &table, &parts)?;
        let added = self.catalog.add_partitions(db, &table.name, parts, true).await.map_err(catalog_error)?;
        let mut out = vec![];
        if !added.is_empty() {
            let names: Vec<String> = added
                .iter()
                .map(|p| format!("{}:{}", table.name, partition_name(&table.partition_keys, &p.values)))
                .collect();
            out.push(vec![format!("Partitions not in metastore:\t{}", names.join("\t"))]);
            out.extend(names.iter().map(|n| vec![format!("Repair: Added partition to metastore {n}")]));
        }
        rows(StatementType::Ddl, &["result"], out)
    }
}

/// Undoes `%XX` escapes (Hive's in partition directory names, RFC 3986's in URIs); a `%` not
/// followed by two hex digits stays as it is.
pub fn percent_decode(text: &str) -> String {
    // invalid escapes stay as written; '+' stays '+' (paths, not forms)
    percent_encoding::percent_decode_str(text).decode_utf8_lossy().into_owned()
}

/// The first data object under a location, or none; a location that cannot be listed (no such
/// bucket, no such directory) is an error naming it.
async fn first_object(state: &SessionState, location: &str) -> Result<Option<ObjectMeta>> {
    let (store_url, prefix) = crate::catalog::split_location(location)?;
    if store_url.as_str().starts_with("file://") && !std::path::Path::new("/").join(prefix.as_ref()).exists() {
        return Err(Error::Location { location: location.into(), reason: "no such file or directory".into() });
    }
    let store = state.runtime_env().object_store(&store_url)?;
    let objects = crate::catalog::objects_at(store.as_ref(), prefix.clone(), location.ends_with('/'))
        .await
        .map_err(|e| Error::Location { location: location.into(), reason: crate::error::tidy(&e.to_string()) })?;
    Ok(objects.into_iter().filter(|m| crate::catalog::is_data(&prefix, m)).min_by(|a, b| a.location.cmp(&b.location)))
}

/// The statement that would create `table` again, as Athena prints it.
pub fn show_create(db: &str, table: &Table) -> String {
    let sd = table.storage_descriptor.clone().unwrap_or_default();
    let column = |c: &Column| {
        let comment = c.comment.as_ref().map(|t| format!(" COMMENT '{}'", t.replace('\'', "''"))).unwrap_or_default();
        format!("  `{}` {}{comment}", c.name, c.type_name)
    };
    let mut out = format!("CREATE EXTERNAL TABLE `{db}`.`{}`(\n", table.name);
    out += &sd.columns.iter().map(column).collect::<Vec<_>>().join(",\n");
    out += ")\n";
    if !table.partition_keys.is_empty() {
        out += "PARTITIONED BY (\n";
        out += &table.partition_keys.iter().map(column).collect::<Vec<_>>().join(",\n");
        out += ")\n";
    }
    let serde = sd.serde_info.clone().unwrap_or_default();
    if let Some(lib) = &serde.serialization_library {
        out += &format!("ROW FORMAT SERDE\n  '{lib}'\n");
        if !serde.parameters.is_empty() {
            let props: Vec<String> = serde.parameters.iter().map(|(k, v)| format!("  '{k}'='{v}'")).collect();
            out += &format!("WITH SERDEPROPERTIES (\n{})\n", props.join(",\n"));
        }
    }
    if let (Some(i), Some(o)) = (&sd.input_format, &sd.output_format) {
        out += &format!("STORED AS INPUTFORMAT\n  '{i}'\nOUTPUTFORMAT\n  '{o}'\n");
    }
    if let Some(l) = &sd.location {
        out += &format!("LOCATION\n  '{l}'\n");
    }
    if !table.parameters.is_empty() {
        let props: Vec<String> = table.parameters.iter().map(|(k, v)| format!("  '{k}'='{v}'")).collect();
        out += &format!("TBLPROPERTIES (\n{})", props.join(",\n"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn show_patterns() {
        assert!(matches_pattern("web*", "weblogs"));
        assert!(matches_pattern("*logs|events", "events"));
        assert!(!matches_pattern("web*", "logs"));
        assert!(matches_pattern("a*c*e", "abcde"));
        assert_eq!(percent_decode("a%3Ab"), "a:b");
        assert_eq!(percent_decode("a%é1"), "a%é1", "a multi-byte character after % is kept");
    }
}

#[cfg(test)]
mod fuzz {
    use super::*;
    use crate::fuzz::config;
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(config())]

        /// Decoding never fails, and what Hive escapes comes back as it was.
        #[test]
        fn percent_decoding_undoes_escaping_and_takes_anything(text in "\\PC{0,40}", raw in "%?[0-9a-fA-FgG%]{0,6}\\PC{0,6}") {
            let escaped: String = text
                .chars()
                .map(|c| if "%/=#?:\\'\"".contains(c) || c.is_control() { c.to_string().bytes().map(|b| format!("%{b:02X}")).collect() } else { c.to_string() })
                .collect();
            prop_assert_eq!(percent_decode(&escaped), text);
            let _ = percent_decode(&raw);
        }
    }
}
